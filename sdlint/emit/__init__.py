"""Output formats. Each emitter is a pure function `(diagnostics, context, stream) -> None`."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

from sdlint.diagnostic import Diagnostic
from sdlint.errors import UsageError
from sdlint.record import record

TYPE_CHECKING = False  # typing is not imported at run time (a check has no use for it)
if TYPE_CHECKING:
    from typing import TextIO


@record
class EmitContext:
    files_checked: int = 0
    color: bool = False
    quiet: bool = False
    verbose: bool = False
    unsafe_fixes: bool = False  # fixes marked [*] are those --fix would apply at this level
    fixed: int = 0  # findings --fix has fixed in this run
    notes: tuple[str, ...] = ()  # lines for the user besides the findings (Report.notes)


Emitter = Callable[[Sequence[Diagnostic], EmitContext, "TextIO"], None]


# Format name -> module: each is imported only when chosen (a CLI start pays for one).
_MODULES = {
    "text": "text",
    "json": "json_format",
    "sarif": "sarif",
    "github": "github",
    "gitlab": "gitlab",
    "junit": "junit",
}
FORMATS = tuple(_MODULES)


def emitter(name: str) -> Emitter:
    module = importlib.import_module(f"sdlint.emit.{_MODULES[name]}")
    found: Emitter = module.emit
    return found


def report_emitter(
    output_format: str, *, statistics: bool = False, show_fixes: bool = False
) -> Emitter:
    """The emitter for a `check` run. `--statistics` replaces the findings with counts per rule
    (a table, or with `json` an array, as ruff does); `--show-fixes` appends the available fixes
    to text output and is ignored by the machine formats, which carry each fix already."""
    if statistics:
        from sdlint.emit import statistics as statistics_format

        if output_format == "json":
            return statistics_format.emit_json
        if output_format != "text":
            raise UsageError(
                f"--statistics prints a text table or, with --output-format json, a JSON array; "
                f"it has no {output_format} form"
            )
        main: Emitter = statistics_format.emit
    else:
        main = emitter(output_format)
    if not show_fixes or output_format != "text":
        return main

    from sdlint.emit import fixes

    def with_fixes(diagnostics: Sequence[Diagnostic], context: EmitContext, stream: TextIO) -> None:
        main(diagnostics, context, stream)
        fixes.emit(diagnostics, context, stream)

    return with_fixes
