"""`--output-format github`: GitHub Actions workflow commands, which the runner turns into
annotations on the pull request's files:

    ::error title=sdlint (SD101),file=PATH,line=L,col=C::MESSAGE

Levels: error -> `::error`, warning -> `::warning`, info -> `::notice`. Escaping follows
actions/toolkit (`escapeData`, `escapeProperty`): in the message `%`, CR and LF; in properties
also `:` and `,`, which would otherwise end a property. Paths are as typed, so run sdlint from the
repository root for the annotations to land on the files.

GitHub shows only a handful of annotations per step, so a large group of findings (a whole
missing module) is folded into one annotation as in text output; --verbose lists each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from sdlint.diagnostic import Diagnostic, Severity
from sdlint.emit import EmitContext
from sdlint.emit.text import shown

COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(value: str) -> str:
    # `%` first: the escapes introduced below must not be escaped again.
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def format_command(d: Diagnostic) -> str:
    properties = {
        "title": f"sdlint ({d.code})",
        "file": d.path,
        "line": str(d.location.line),
        "col": str(d.location.column),
    }
    joined = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::{COMMANDS[d.severity]} {joined}::{escape_data(d.message)}"


def emit(diagnostics: Sequence[Diagnostic], context: EmitContext, stream: TextIO) -> None:
    for d in shown(diagnostics, context.verbose):
        stream.write(format_command(d) + "\n")
