"""`--output-format text`: `path:line:col: CODE message`, the form editors' problem matchers read,
then a summary line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sdlint.diagnostic import Diagnostic, Severity
from sdlint.emit import EmitContext
from sdlint.record import replace

TYPE_CHECKING = False  # typing is not imported at run time (a check has no use for it)
if TYPE_CHECKING:
    from typing import TextIO

_BOLD, _RED, _YELLOW, _CYAN, _RESET = "\x1b[1m", "\x1b[31m", "\x1b[33m", "\x1b[36m", "\x1b[0m"
_SEVERITY_COLOR = {Severity.ERROR: _RED, Severity.WARNING: _YELLOW, Severity.INFO: _CYAN}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """`text` on one line, with nothing a terminal acts on: control characters (newlines, escape
    sequences) and line separators become escapes such as `\\n` and `\\x1b`. A tensor name is
    arbitrary JSON, so a message quoting one could otherwise forge diagnostic lines (the github and
    junit formats escape for the same reason)."""
    if text.isprintable():
        return text
    import unicodedata  # only for a text that needs escaping: a plain one never does

    return "".join(
        _ESCAPES.get(c) or (repr(c)[1:-1] if unicodedata.category(c) in _UNSAFE else c)
        for c in text
    )


_UNSAFE = frozenset({"Cc", "Zl", "Zp"})  # control characters, line and paragraph separators


def format_line(d: Diagnostic, color: bool = False, unsafe_fixes: bool = False) -> str:
    where = f"{printable(d.path)}:{d.location.line}:{d.location.column}:"
    marker = " [*]" if d.fix and d.fix.applies(unsafe_fixes) else ""
    if color:
        where = f"{_BOLD}{where}{_RESET}"
        code = f"{_BOLD}{_SEVERITY_COLOR[d.severity]}{d.code}{_RESET}"
    else:
        code = d.code
    return f"{where} {code}{marker} {printable(d.message)}"


def summary(diagnostics: Sequence[Diagnostic], context: EmitContext) -> str:
    fixed = f"Fixed {_plural(context.fixed, 'problem')}. " if context.fixed else ""
    if not diagnostics:
        return f"{fixed}All checks passed ({_plural(context.files_checked, 'file')} checked)."
    by_severity = Counter(d.severity for d in diagnostics)
    parts = [
        _plural(by_severity[s], s.value)
        for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)
        if by_severity[s]
    ]
    files = len({d.path for d in diagnostics})
    found = (
        f"{fixed}Found {_plural(len(diagnostics), 'problem')} ({', '.join(parts)}) in "
        f"{_plural(files, 'file')}."
    )
    return found + _fixable(diagnostics, context.unsafe_fixes)


def _fixable(diagnostics: Sequence[Diagnostic], unsafe: bool) -> str:
    """ruff's hint: how many findings --fix would fix, and how many more --unsafe-fixes would."""
    fixable = sum(1 for d in diagnostics if d.fix and d.fix.applies(unsafe))
    hidden = sum(1 for d in diagnostics if d.fix and not d.fix.applies(unsafe))
    if not fixable and not hidden:
        return ""
    flag = "`--fix --unsafe-fixes`" if unsafe else "`--fix`"
    line = f"\n[*] {fixable} fixable with {flag}" if fixable else "\nNo fixes available"
    if hidden:
        fixes = "1 hidden fix can" if hidden == 1 else f"{hidden} hidden fixes can"
        line += f" ({fixes} be enabled with `--unsafe-fixes`)"
    return line + "."


# A group of findings is folded into one line from this many on (a whole missing module).
FOLD_AT = 3


def folded(diagnostics: Sequence[Diagnostic]) -> list[tuple[Diagnostic, int]]:
    """Each diagnostic with how many of its group it stands for (1 when not folded)."""
    sizes: Counter[tuple[str, str, str | None]] = Counter(
        (d.path, d.code, d.group) for d in diagnostics if d.group is not None
    )
    out: list[tuple[Diagnostic, int]] = []
    shown: set[tuple[str, str, str | None]] = set()
    for d in diagnostics:
        key = (d.path, d.code, d.group)
        if d.group is None or sizes[key] < FOLD_AT:
            out.append((d, 1))
        elif key not in shown:
            shown.add(key)
            out.append((d, sizes[key]))
    return out


def shown(diagnostics: Sequence[Diagnostic], verbose: bool) -> list[Diagnostic]:
    """What a human-facing format shows: every finding with --verbose, else each large group
    folded into its first finding (also used by `github`, whose annotations are capped per job)."""
    rows = [(d, 1) for d in diagnostics] if verbose else folded(diagnostics)
    return [
        replace(
            d,
            message=f"{count} findings under `{d.group}` (--verbose lists them), "
            f"the first: {d.message}",
        )
        if count > 1
        else d
        for d, count in rows
    ]


def emit(diagnostics: Sequence[Diagnostic], context: EmitContext, stream: TextIO) -> None:
    for d in shown(diagnostics, context.verbose):
        stream.write(format_line(d, context.color, context.unsafe_fixes) + "\n")
    if not context.quiet:
        for note in context.notes:
            stream.write(f"note: {printable(note)}\n")
        stream.write(summary(diagnostics, context) + "\n")
