"""`--output-format json`: a JSON array, one object per diagnostic, with exactly the contract fields
code, severity, message, path, tensor, expected, actual, fix. Other tools parse this: keep it
stable."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from sdlint.diagnostic import Diagnostic
from sdlint.emit import EmitContext


def to_json(d: Diagnostic) -> dict[str, Any]:
    return {
        "code": d.code,
        "severity": d.severity.value,
        "message": d.message,
        "path": d.path,
        "tensor": d.tensor,
        "expected": list(d.expected) if d.expected is not None else None,
        "actual": list(d.actual) if d.actual is not None else None,
        "fix": (
            {"applicability": d.fix.applicability.value, "description": d.fix.description}
            if d.fix
            else None
        ),
    }


def emit(diagnostics: Sequence[Diagnostic], context: EmitContext, stream: TextIO) -> None:
    json.dump([to_json(d) for d in diagnostics], stream, indent=2)
    stream.write("\n")
