"""Wording shared by the oracle and its backends: how a transformers exception is described."""

from __future__ import annotations

import re

_MAX_LINE = 300


def describe_exception(e: BaseException) -> str:
    """`Type: first line of the message`, the part of a transformers exception a user can act on."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    # huggingface_hub's strict-dataclass errors put the cause on the next line:
    # "Validation error for field 'x':\n    TypeError: Field 'x' expected int, got str".
    if first.endswith(":") and len(lines) > 1:
        first = f"{first} {lines[1]}"
    if len(first) > _MAX_LINE:
        first = first[: _MAX_LINE - 3] + "..."
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def missing_package(e: ImportError) -> str | None:
    """The package an ImportError is about: its `name`, or from "requires the X library"."""
    if e.name:
        return e.name.split(".", 1)[0]
    found = re.search(r"requires the (\S+) librar", str(e))
    return found.group(1).strip("`'\"") if found else None
