"""`--output-format text`: `path:line:col: CODE message`, the form editors' problem matchers read,
then a summary line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TextIO

from sdlint.diagnostic import Diagnostic, Severity
from sdlint.emit import EmitContext

_BOLD, _RED, _YELLOW, _CYAN, _RESET = "\x1b[1m", "\x1b[31m", "\x1b[33m", "\x1b[36m", "\x1b[0m"
_SEVERITY_COLOR = {Severity.ERROR: _RED, Severity.WARNING: _YELLOW, Severity.INFO: _CYAN}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def format_line(d: Diagnostic, color: bool = False) -> str:
    where = f"{d.path}:{d.location.line}:{d.location.column}:"
    marker = " [*]" if d.fix else ""
    if color:
        where = f"{_BOLD}{where}{_RESET}"
        code = f"{_BOLD}{_SEVERITY_COLOR[d.severity]}{d.code}{_RESET}"
    else:
        code = d.code
    return f"{where} {code}{marker} {d.message}"


def summary(diagnostics: Sequence[Diagnostic], files_checked: int) -> str:
    if not diagnostics:
        return f"All checks passed ({_plural(files_checked, 'file')} checked)."
    by_severity = Counter(d.severity for d in diagnostics)
    parts = [
        _plural(by_severity[s], s.value)
        for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)
        if by_severity[s]
    ]
    files = len({d.path for d in diagnostics})
    return (
        f"Found {_plural(len(diagnostics), 'problem')} ({', '.join(parts)}) in "
        f"{_plural(files, 'file')}."
    )


def emit(diagnostics: Sequence[Diagnostic], context: EmitContext, stream: TextIO) -> None:
    for d in diagnostics:
        stream.write(format_line(d, context.color) + "\n")
    if not context.quiet:
        stream.write(summary(diagnostics, context.files_checked) + "\n")
