"""`--output-format gitlab`: a GitLab Code Quality report (a JSON array), for the merge request
widget: `artifacts: reports: codequality: <file>`.

Severities: error -> `critical` (the checkpoint is rejected by the reader or loads wrong: not a
style issue, but `blocker` is left for what would stop a pipeline), warning -> `minor` (the reader
accepts it; the written format or the model says otherwise), info -> `info`.

`fingerprint` is how GitLab tells a new finding from one already on the target branch, so it must
be stable across runs and unique in a report: the hash of code, path, tensor and message (not the
line, which can move), rehashed with a counter when two findings are identical.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, TextIO

from sdlint.diagnostic import Diagnostic, Severity
from sdlint.emit import EmitContext

SEVERITIES = {Severity.ERROR: "critical", Severity.WARNING: "minor", Severity.INFO: "info"}


def _hash(*parts: str) -> str:
    # NUL cannot occur in a path, and joins the parts without ambiguity.
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def fingerprints(diagnostics: Sequence[Diagnostic]) -> list[str]:
    seen: set[str] = set()
    out = []
    for d in diagnostics:
        parts = (d.code, d.path, d.tensor or "", d.message)
        fingerprint = _hash(*parts)
        counter = 0
        while fingerprint in seen:
            counter += 1
            fingerprint = _hash(*parts, str(counter))
        seen.add(fingerprint)
        out.append(fingerprint)
    return out


def to_gitlab(diagnostics: Sequence[Diagnostic]) -> list[dict[str, Any]]:
    return [
        {
            "description": f"{d.code}: {d.message}",
            "check_name": d.code,
            "fingerprint": fingerprint,
            "severity": SEVERITIES[d.severity],
            "location": {"path": d.path, "lines": {"begin": d.location.line}},
        }
        for d, fingerprint in zip(diagnostics, fingerprints(diagnostics), strict=True)
    ]


def emit(diagnostics: Sequence[Diagnostic], context: EmitContext, stream: TextIO) -> None:
    json.dump(to_gitlab(diagnostics), stream, indent=2)
    stream.write("\n")
