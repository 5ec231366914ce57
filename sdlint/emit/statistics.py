"""`--statistics`: how many findings of each rule, instead of the findings (ruff's format).

    3\tSD103\t[ ] missing-key
    1\tSD106\t[*] key-prefix-mismatch
    Found 4 problems (4 errors) in 1 file.

Counts are right-aligned and codes left-aligned so the columns line up; `[*]` marks a rule with
at least one fixable finding, and the markers are left out when nothing is fixable. Sorted by count
(most first), then code. Every finding counts, folded or not. With `--output-format json` the
same rows are a JSON array.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TextIO

from sdlint.diagnostic import Diagnostic
from sdlint.emit import EmitContext
from sdlint.emit.text import summary
from sdlint.record import fields, record
from sdlint.registry import all_rules


@record
class Statistic:
    code: str
    name: str
    count: int
    fixable: bool


def statistics(diagnostics: Sequence[Diagnostic]) -> list[Statistic]:
    names = {r.code: r.name for r in all_rules()}
    counts: dict[str, int] = {}
    fixable: set[str] = set()
    for d in diagnostics:
        counts[d.code] = counts.get(d.code, 0) + 1
        if d.fix is not None:
            fixable.add(d.code)
    rows = [
        Statistic(code, names.get(code, code), n, code in fixable) for code, n in counts.items()
    ]
    return sorted(rows, key=lambda s: (-s.count, s.code))


def emit(diagnostics: Sequence[Diagnostic], context: EmitContext, stream: TextIO) -> None:
    rows = statistics(diagnostics)
    count_width = max((len(str(s.count)) for s in rows), default=0)
    code_width = max((len(s.code) for s in rows), default=0)
    any_fixable = any(s.fixable for s in rows)
    for s in rows:
        marker = ("[*] " if s.fixable else "[ ] ") if any_fixable else ""
        stream.write(f"{s.count:>{count_width}}\t{s.code:<{code_width}}\t{marker}{s.name}\n")
    if not context.quiet:
        stream.write(summary(diagnostics, context) + "\n")


def emit_json(diagnostics: Sequence[Diagnostic], context: EmitContext, stream: TextIO) -> None:
    """`--statistics --output-format json`: `[{"code", "name", "count", "fixable"}]`, same order."""
    rows = [{f.name: getattr(s, f.name) for f in fields(s)} for s in statistics(diagnostics)]
    json.dump(rows, stream, indent=2)
    stream.write("\n")
