"""`--output-format sarif`: a SARIF 2.1.0 log, for GitHub code scanning and other SARIF viewers.

Shape (ruff's): one run whose `tool.driver.rules` describes only the rules present in the results,
each result pointing at its rule by `ruleId` and `ruleIndex`.

- Levels: error -> `error`, warning -> `warning`, info -> `note` (SARIF has no "info").
- Artifact URIs: a relative path (as the user typed it, so relative to the working directory) is a
  percent-encoded relative URI with `uriBaseId` `%SRCROOT%`, which GitHub code scanning resolves
  against the repository root: run sdlint from the repository root. An absolute path becomes a
  `file://` URI with no base. Relative URIs keep the output byte-identical across machines.
- Fixes: SARIF's `fix` object requires `artifactChanges` (the replaced byte regions and the new
  content), which sdlint's fixes do not describe; an empty or made-up change would not validate
  or would lie. So the fix travels in the result's property bag instead:
  `properties.fix = {"applicability", "description"}`, with `tensor`, `expected` and `actual`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any, TextIO
from urllib.parse import quote

from sdlint import __version__
from sdlint.diagnostic import Diagnostic, Severity
from sdlint.emit import EmitContext
from sdlint.registry import all_rules
from sdlint.rule import Rule

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/sdlint/sdlint"
SRCROOT = "%SRCROOT%"

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def artifact_location(path: str) -> dict[str, str]:
    pure = PurePath(path)
    if pure.is_absolute():
        return {"uri": pure.as_uri()}
    # Percent-encode everything but `/`: a `:` in a first segment would otherwise read as a
    # URI scheme (`a:b.safetensors`), and spaces, `#` or `?` would end the path.
    return {"uri": quote(pure.as_posix(), safe="/"), "uriBaseId": SRCROOT}


def _rule_descriptor(code: str, rule: Rule | None) -> dict[str, Any]:
    if rule is None:  # a code the registry does not know (a diagnostic built outside the engine)
        return {"id": code}
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.doc, "markdown": rule.doc},
        "help": {"text": rule.doc, "markdown": rule.doc},
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
    }


def _properties(d: Diagnostic) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if d.tensor is not None:
        out["tensor"] = d.tensor
    if d.expected is not None:
        out["expected"] = list(d.expected)
    if d.actual is not None:
        out["actual"] = list(d.actual)
    if d.fix is not None:
        out["fix"] = {"applicability": d.fix.applicability.value, "description": d.fix.description}
    return out


def _result(d: Diagnostic, rule_index: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": d.code,
        "ruleIndex": rule_index,
        "level": LEVELS[d.severity],
        "message": {"text": d.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": artifact_location(d.path),
                    "region": {"startLine": d.location.line, "startColumn": d.location.column},
                }
            }
        ],
    }
    properties = _properties(d)
    if properties:
        result["properties"] = properties
    return result


def to_sarif(diagnostics: Sequence[Diagnostic], notes: Sequence[str] = ()) -> dict[str, Any]:
    """The log; `notes` (what the run tells the user besides the findings) become notifications
    of the run's invocation, so the results stay the findings only."""
    known = {r.code: r for r in all_rules()}
    codes = sorted({d.code for d in diagnostics})
    index = {code: i for i, code in enumerate(codes)}
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "sdlint",
                "version": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_rule_descriptor(code, known.get(code)) for code in codes],
            }
        },
        "results": [_result(d, index[d.code]) for d in diagnostics],
    }
    if notes:
        run["invocations"] = [
            {
                "executionSuccessful": True,
                "toolExecutionNotifications": [
                    {"level": "note", "message": {"text": note}} for note in notes
                ],
            }
        ]
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def emit(diagnostics: Sequence[Diagnostic], context: EmitContext, stream: TextIO) -> None:
    json.dump(to_sarif(diagnostics, context.notes), stream, indent=2)
    stream.write("\n")
