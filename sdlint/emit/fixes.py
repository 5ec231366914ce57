"""`--show-fixes`: after text output, the fixes available, one line per fixable finding:

    Available fixes:
    model.safetensors: SD106 Strip the prefix `module.` from 39 keys (safe)

Only the fix's description and applicability are shown: this lists what a fix would do, it does
not apply or preview it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from sdlint.diagnostic import Diagnostic
from sdlint.emit import EmitContext
from sdlint.emit.text import printable


def format_fix(d: Diagnostic) -> str:
    assert d.fix is not None
    description = printable(d.fix.description)
    return f"{printable(d.path)}: {d.code} {description} ({d.fix.applicability.value})"


def emit(diagnostics: Sequence[Diagnostic], context: EmitContext, stream: TextIO) -> None:
    fixable = [d for d in diagnostics if d.fix is not None]
    if not fixable:
        if diagnostics and not context.quiet:
            stream.write("No fixes available.\n")
        return
    if not context.quiet:
        stream.write("Available fixes:\n")
    for d in fixable:
        stream.write(format_fix(d) + "\n")
