"""Output formats. Each emitter is a pure function `(diagnostics, context, stream) -> None`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from sdlint.diagnostic import Diagnostic


@dataclass(frozen=True)
class EmitContext:
    files_checked: int = 0
    color: bool = False
    quiet: bool = False
    verbose: bool = False


Emitter = Callable[[Sequence[Diagnostic], EmitContext, TextIO], None]


def emitters() -> dict[str, Emitter]:
    from sdlint.emit import json_format, text

    return {"text": text.emit, "json": json_format.emit}
