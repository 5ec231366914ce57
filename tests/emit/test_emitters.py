"""Every output format, snapshot-tested on one fixed list of diagnostics (tests/emit/cases.py), plus
the properties each consumer relies on: SARIF validates against the official 2.1.0 schema, GitHub
workflow commands are escaped as actions/toolkit does, GitLab fingerprints are stable and unique,
JUnit parses.

tests/data/sarif-schema-2.1.0.json is the OASIS schema, copied unchanged from
oasis-tcs/sarif-spec `Schemata/sarif-schema-2.1.0.json` (commit 0a8091f7, the errata01 version:
`"id": "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"`),
vendored because tests have no network.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from sdlint import __version__
from sdlint.diagnostic import Applicability, Diagnostic, Fix, Location, Severity
from sdlint.emit import FORMATS, EmitContext, Emitter, emitter, report_emitter
from sdlint.emit.github import escape_data, escape_property
from sdlint.emit.gitlab import fingerprints
from sdlint.emit.sarif import artifact_location
from sdlint.emit.statistics import Statistic, statistics
from sdlint.errors import UsageError
from sdlint.record import replace
from sdlint.registry import get_rule
from tests.emit.cases import DIAGNOSTICS, INDEX, ODD_PATH

SCHEMA_PATH = Path(__file__).parent.parent / "data" / "sarif-schema-2.1.0.json"
CONTEXT = EmitContext(files_checked=5)


def emitters() -> dict[str, Emitter]:
    return {name: emitter(name) for name in FORMATS}


def render(name: str, diagnostics: tuple[Diagnostic, ...] = DIAGNOSTICS, **context: Any) -> str:
    stream = io.StringIO()
    emitters()[name](diagnostics, replace(CONTEXT, **context), stream)
    return stream.getvalue()


def as_json(value: object) -> str:
    """The exact bytes the JSON-based emitters write for `value`."""
    return json.dumps(value, indent=2) + "\n"


def test_every_format_is_registered() -> None:
    assert sorted(emitters()) == ["github", "gitlab", "json", "junit", "sarif", "text"]


# --- text and json: unchanged contracts ---------------------------------------------------------

TEXT = """\
ckpt/config.json:3:12: SD105 tensors are stored in F32, the config's dtype is bfloat16
ckpt/model.safetensors:1:1: SD101 `classifier.weight` has shape [2, 768], the config builds [5, 768]
ckpt/model.safetensors:1:1: SD104 `extra.bias` is unused:\\n100% of its bytes are ignored
ckpt/model.safetensors:1:1: SD106 [*] every key carries the prefix `module.`
ckpt/model.safetensors.index.json:4:5: SD004 index maps `a.weight` to a missing shard
ckpt/model.safetensors.index.json:9:5: SD004 index maps `a.weight` to a missing shard
model.safetensors:1:1: SD003 data section ends at byte 40 but the file holds only 34 bytes of data
runs/a,b:c/model.safetensors:1:1: SD001 header starts with whitespace
Found 8 problems (5 errors, 2 warnings, 1 info) in 5 files.
[*] 1 fixable with `--fix` (1 hidden fix can be enabled with `--unsafe-fixes`).
"""


def test_text_snapshot() -> None:
    assert render("text") == TEXT


def test_text_one_line_per_finding_whatever_the_name() -> None:
    d = Diagnostic(
        "SD002",
        Severity.ERROR,
        "`a\nckpt/x.safetensors:1:1: SD001 forged` \x1b[2Jis bad\u2028",
        "a\rb.safetensors",
        fix=Fix(Applicability.SAFE, "Drop `a\nb`"),
    )
    out = render("text", (d,), quiet=True)
    assert out == (
        "a\\rb.safetensors:1:1: SD002 [*] `a\\nckpt/x.safetensors:1:1: SD001 forged` "
        "\\x1b[2Jis bad\\u2028\n"
    )
    assert _report((d,), output_format="text", show_fixes=True, quiet=True).splitlines()[1] == (
        "a\\rb.safetensors: SD002 Drop `a\\nb` (safe)"
    )
    assert "\u00e9t\u00e9 \u4e2d" in render("text", (replace(d, message="\u00e9t\u00e9 \u4e2d"),))


def test_text_marks_unsafe_fixes_only_with_unsafe_fixes() -> None:
    text = render("text", unsafe_fixes=True)
    assert "SD104 [*] `extra.bias`" in text
    assert text.endswith("[*] 2 fixable with `--fix --unsafe-fixes`.\n")


def _contract(
    code: str,
    severity: str,
    message: str,
    path: str,
    tensor: str | None = None,
    expected: list[int] | None = None,
    actual: list[int] | None = None,
    fix: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "code": code,
        "severity": severity,
        "message": message,
        "path": path,
        "tensor": tensor,
        "expected": expected,
        "actual": actual,
        "fix": fix,
    }


JSON = [
    _contract(
        "SD105",
        "info",
        "tensors are stored in F32, the config's dtype is bfloat16",
        "ckpt/config.json",
    ),
    _contract(
        "SD101",
        "error",
        "`classifier.weight` has shape [2, 768], the config builds [5, 768]",
        "ckpt/model.safetensors",
        "classifier.weight",
        [5, 768],
        [2, 768],
    ),
    _contract(
        "SD104",
        "warning",
        "`extra.bias` is unused:\n100% of its bytes are ignored",
        "ckpt/model.safetensors",
        "extra.bias",
        actual=[4],
        fix={"applicability": "unsafe", "description": "Drop the tensor `extra.bias`"},
    ),
    _contract(
        "SD106",
        "error",
        "every key carries the prefix `module.`",
        "ckpt/model.safetensors",
        fix={"applicability": "safe", "description": "Strip the prefix `module.` from 39 keys"},
    ),
    _contract("SD004", "error", "index maps `a.weight` to a missing shard", INDEX, "a.weight"),
    _contract("SD004", "error", "index maps `a.weight` to a missing shard", INDEX, "a.weight"),
    _contract(
        "SD003",
        "error",
        "data section ends at byte 40 but the file holds only 34 bytes of data",
        "model.safetensors",
    ),
    _contract("SD001", "warning", "header starts with whitespace", ODD_PATH),
]


def test_json_snapshot_keeps_the_contract() -> None:
    assert render("json") == as_json(JSON)
    assert render("json", ()) == "[]\n"


# --- sarif --------------------------------------------------------------------------------------


def _rule(code: str, level: str) -> dict[str, Any]:
    rule = get_rule(code)
    assert rule is not None
    doc = {"text": rule.doc, "markdown": rule.doc}
    return {
        "id": code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": doc,
        "help": doc,
        "defaultConfiguration": {"level": level},
    }


def _result(
    code: str,
    index: int,
    level: str,
    message: str,
    uri: str,
    line: int = 1,
    column: int = 1,
    **properties: Any,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": code,
        "ruleIndex": index,
        "level": level,
        "message": {"text": message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": line, "startColumn": column},
                }
            }
        ],
    }
    if properties:
        result["properties"] = properties
    return result


SARIF_RULES = [
    _rule("SD001", "error"),
    _rule("SD003", "error"),
    _rule("SD004", "error"),
    _rule("SD101", "error"),
    _rule("SD104", "error"),
    _rule("SD105", "note"),
    _rule("SD106", "error"),
]
SARIF_RESULTS = [
    _result(
        "SD105",
        5,
        "note",
        "tensors are stored in F32, the config's dtype is bfloat16",
        "ckpt/config.json",
        3,
        12,
    ),
    _result(
        "SD101",
        3,
        "error",
        "`classifier.weight` has shape [2, 768], the config builds [5, 768]",
        "ckpt/model.safetensors",
        tensor="classifier.weight",
        expected=[5, 768],
        actual=[2, 768],
    ),
    _result(
        "SD104",
        4,
        "warning",
        "`extra.bias` is unused:\n100% of its bytes are ignored",
        "ckpt/model.safetensors",
        tensor="extra.bias",
        actual=[4],
        fix={"applicability": "unsafe", "description": "Drop the tensor `extra.bias`"},
    ),
    _result(
        "SD106",
        6,
        "error",
        "every key carries the prefix `module.`",
        "ckpt/model.safetensors",
        fix={"applicability": "safe", "description": "Strip the prefix `module.` from 39 keys"},
    ),
    _result(
        "SD004",
        2,
        "error",
        "index maps `a.weight` to a missing shard",
        INDEX,
        4,
        5,
        tensor="a.weight",
    ),
    _result(
        "SD004",
        2,
        "error",
        "index maps `a.weight` to a missing shard",
        INDEX,
        9,
        5,
        tensor="a.weight",
    ),
    _result(
        "SD003",
        1,
        "error",
        "data section ends at byte 40 but the file holds only 34 bytes of data",
        "model.safetensors",
    ),
    # `,` and `:` percent-encoded: `runs/a,b:c/...` would not be a valid relative reference
    _result(
        "SD001", 0, "warning", "header starts with whitespace", "runs/a%2Cb%3Ac/model.safetensors"
    ),
]


def _sarif_log(rules: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "sdlint",
                        "version": __version__,
                        "informationUri": "https://github.com/sdlint/sdlint",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }


@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    assert schema["id"].endswith("/sarif-schema-2.1.0.json")
    return jsonschema.Draft4Validator(schema)


def test_sarif_notes_are_invocation_notifications(
    sarif_validator: jsonschema.Draft4Validator,
) -> None:
    log = json.loads(render("sarif", notes=("m/config.json: checked against RobertaModel",)))
    sarif_validator.validate(log)
    (run,) = log["runs"]
    assert run["results"] == SARIF_RESULTS  # the findings are untouched
    assert run["invocations"] == [
        {
            "executionSuccessful": True,
            "toolExecutionNotifications": [
                {
                    "level": "note",
                    "message": {"text": "m/config.json: checked against RobertaModel"},
                }
            ],
        }
    ]


def test_text_notes_come_before_the_summary_and_not_with_quiet() -> None:
    notes = ("m/config.json: checked against\nRobertaModel",)
    lines = TEXT.splitlines(keepends=True)
    assert render("text", notes=notes) == "".join(
        [*lines[:-2], "note: m/config.json: checked against\\nRobertaModel\n", *lines[-2:]]
    )
    assert render("text", notes=notes, quiet=True) == render("text", quiet=True)
    assert render("json", notes=notes) == render("json")


def test_sarif_snapshot() -> None:
    assert render("sarif") == as_json(_sarif_log(SARIF_RULES, SARIF_RESULTS))
    assert render("sarif", ()) == as_json(_sarif_log([], []))


@pytest.mark.parametrize("diagnostics", [DIAGNOSTICS, ()], ids=["findings", "clean"])
def test_sarif_validates_against_the_official_schema(
    diagnostics: tuple[Diagnostic, ...], sarif_validator: jsonschema.Draft4Validator
) -> None:
    sarif_validator.validate(json.loads(render("sarif", diagnostics)))


def test_sarif_schema_is_strict(sarif_validator: jsonschema.Draft4Validator) -> None:
    """The vendored schema rejects what it should, so passing validation means something. In
    particular a `fix` with only a description is invalid (`artifactChanges` is required): that is
    why sdlint's fixes travel in the result's `properties`."""
    log = json.loads(render("sarif"))
    result = log["runs"][0]["results"][2]
    assert result["properties"]["fix"]["applicability"] == "unsafe"
    result["fixes"] = [{"description": {"text": "Drop the tensor `extra.bias`"}}]
    with pytest.raises(jsonschema.ValidationError, match="artifactChanges"):
        sarif_validator.validate(log)
    del result["fixes"]
    result["level"] = "info"  # SARIF's levels are none/note/warning/error
    with pytest.raises(jsonschema.ValidationError):
        sarif_validator.validate(log)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("model.safetensors", {"uri": "model.safetensors", "uriBaseId": "%SRCROOT%"}),
        ("a b/#1?.json", {"uri": "a%20b/%231%3F.json", "uriBaseId": "%SRCROOT%"}),
        ("../up/model.safetensors", {"uri": "../up/model.safetensors", "uriBaseId": "%SRCROOT%"}),
        ("/abs/a b/model.safetensors", {"uri": "file:///abs/a%20b/model.safetensors"}),
    ],
)
def test_sarif_artifact_location(path: str, expected: dict[str, str]) -> None:
    assert artifact_location(path) == expected


def test_sarif_unknown_code_still_validates(sarif_validator: jsonschema.Draft4Validator) -> None:
    d = Diagnostic("SD999", Severity.ERROR, "from a plugin", "m.safetensors")
    log = json.loads(render("sarif", (d,)))
    assert log["runs"][0]["tool"]["driver"]["rules"] == [{"id": "SD999"}]
    sarif_validator.validate(log)


# --- github -------------------------------------------------------------------------------------

GITHUB = """\
::notice title=sdlint (SD105),file=ckpt/config.json,line=3,col=12::tensors are stored in F32, the config's dtype is bfloat16
::error title=sdlint (SD101),file=ckpt/model.safetensors,line=1,col=1::`classifier.weight` has shape [2, 768], the config builds [5, 768]
::warning title=sdlint (SD104),file=ckpt/model.safetensors,line=1,col=1::`extra.bias` is unused:%0A100%25 of its bytes are ignored
::error title=sdlint (SD106),file=ckpt/model.safetensors,line=1,col=1::every key carries the prefix `module.`
::error title=sdlint (SD004),file=ckpt/model.safetensors.index.json,line=4,col=5::index maps `a.weight` to a missing shard
::error title=sdlint (SD004),file=ckpt/model.safetensors.index.json,line=9,col=5::index maps `a.weight` to a missing shard
::error title=sdlint (SD003),file=model.safetensors,line=1,col=1::data section ends at byte 40 but the file holds only 34 bytes of data
::warning title=sdlint (SD001),file=runs/a%2Cb%3Ac/model.safetensors,line=1,col=1::header starts with whitespace
"""


def test_github_snapshot() -> None:
    assert render("github") == GITHUB
    assert render("github", ()) == ""


@pytest.mark.parametrize(
    ("raw", "data", "prop"),
    [
        ("plain", "plain", "plain"),
        ("100%", "100%25", "100%25"),
        ("%0A", "%250A", "%250A"),  # an escape in the input is not decoded by the runner
        ("a\r\nb", "a%0D%0Ab", "a%0D%0Ab"),
        ("a:b,c", "a:b,c", "a%3Ab%2Cc"),
        ("::error::x", "::error::x", "%3A%3Aerror%3A%3Ax"),
    ],
)
def test_github_escaping(raw: str, data: str, prop: str) -> None:
    assert (escape_data(raw), escape_property(raw)) == (data, prop)


def test_github_one_command_per_finding_whatever_the_message() -> None:
    d = Diagnostic("SD002", Severity.ERROR, "x\n::error::injected", "a\nb.safetensors")
    out = render("github", (d,))
    assert out.count("\n") == 1 and out.count("::error ") == 1
    assert "file=a%0Ab.safetensors," in out and out.endswith("::x%0A::error::injected\n")


def test_github_folds_large_groups_like_text() -> None:
    group = tuple(
        Diagnostic(
            "SD103",
            Severity.ERROR,
            f"missing `enc.{i}.w`",
            "m.safetensors",
            tensor=f"enc.{i}.w",
            group="enc.",
        )
        for i in range(4)
    )
    assert render("github", group) == (
        "::error title=sdlint (SD103),file=m.safetensors,line=1,col=1::4 findings under `enc.` "
        "(--verbose lists them), the first: missing `enc.0.w`\n"
    )
    assert render("github", group, verbose=True).count("::error ") == 4


# --- gitlab -------------------------------------------------------------------------------------


def _issue(
    code: str, severity: str, message: str, path: str, line: int, fingerprint: str
) -> dict[str, Any]:
    return {
        "description": f"{code}: {message}",
        "check_name": code,
        "fingerprint": fingerprint,
        "severity": severity,
        "location": {"path": path, "lines": {"begin": line}},
    }


GITLAB = [
    _issue(
        "SD105",
        "info",
        "tensors are stored in F32, the config's dtype is bfloat16",
        "ckpt/config.json",
        3,
        "cf3b4fb29f38320d72593b0254dcce51",
    ),
    _issue(
        "SD101",
        "critical",
        "`classifier.weight` has shape [2, 768], the config builds [5, 768]",
        "ckpt/model.safetensors",
        1,
        "6251440c19e45e4d45954663f4327415",
    ),
    _issue(
        "SD104",
        "minor",
        "`extra.bias` is unused:\n100% of its bytes are ignored",
        "ckpt/model.safetensors",
        1,
        "6e33c5acfd9848aed7972f9fa02392e0",
    ),
    _issue(
        "SD106",
        "critical",
        "every key carries the prefix `module.`",
        "ckpt/model.safetensors",
        1,
        "12e4f1ca6f7d9942f1747430b6f61578",
    ),
    _issue(
        "SD004",
        "critical",
        "index maps `a.weight` to a missing shard",
        INDEX,
        4,
        "4552364ae7b64501369ad757b624eaee",
    ),
    _issue(
        "SD004",
        "critical",
        "index maps `a.weight` to a missing shard",
        INDEX,
        9,
        "95f35e5d07d5146f40c1502665744242",
    ),
    _issue(
        "SD003",
        "critical",
        "data section ends at byte 40 but the file holds only 34 bytes of data",
        "model.safetensors",
        1,
        "a81f42e13a924d328820282780765b16",
    ),
    _issue(
        "SD001",
        "minor",
        "header starts with whitespace",
        ODD_PATH,
        1,
        "3cdc2c9116e75b3c0c74d4ab4970a875",
    ),
]


def test_gitlab_snapshot() -> None:
    assert render("gitlab") == as_json(GITLAB)
    assert render("gitlab", ()) == "[]\n"


def test_gitlab_fingerprints_are_unique_and_stable() -> None:
    prints = fingerprints(DIAGNOSTICS)
    assert len(set(prints)) == len(DIAGNOSTICS)
    assert fingerprints(DIAGNOSTICS) == prints
    # a finding keeps its fingerprint when its line moves or other findings come and go
    moved = tuple(replace(d, location=Location(d.location.line + 7, 1)) for d in DIAGNOSTICS)
    assert fingerprints(moved) == prints
    assert fingerprints(DIAGNOSTICS[1:3]) == prints[1:3]
    # identical findings get distinct fingerprints, the first one the same as when alone
    twins = (DIAGNOSTICS[0],) * 3
    assert len(set(fingerprints(twins))) == 3 and fingerprints(twins)[0] == prints[0]
    # every field of the identity matters
    base = DIAGNOSTICS[1]
    variants = [
        base,
        replace(base, code="SD102"),
        replace(base, path="other.safetensors"),
        replace(base, tensor=None),
        replace(base, message="another"),
    ]
    assert len(set(fingerprints(variants))) == len(variants)


# --- junit --------------------------------------------------------------------------------------

JUNIT = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="sdlint" tests="8" failures="8" errors="0">
  <testsuite name="ckpt/config.json" tests="1" failures="1" errors="0">
    <testcase name="SD105" classname="ckpt/config.json" file="ckpt/config.json" line="3" column="12">
      <failure message="tensors are stored in F32, the config's dtype is bfloat16" type="SD105">ckpt/config.json:3:12: SD105 tensors are stored in F32, the config's dtype is bfloat16</failure>
    </testcase>
  </testsuite>
  <testsuite name="ckpt/model.safetensors" tests="3" failures="3" errors="0">
    <testcase name="SD101 classifier.weight" classname="ckpt/model.safetensors" file="ckpt/model.safetensors" line="1" column="1">
      <failure message="`classifier.weight` has shape [2, 768], the config builds [5, 768]" type="SD101">ckpt/model.safetensors:1:1: SD101 `classifier.weight` has shape [2, 768], the config builds [5, 768]</failure>
    </testcase>
    <testcase name="SD104 extra.bias" classname="ckpt/model.safetensors" file="ckpt/model.safetensors" line="1" column="1">
      <failure message="`extra.bias` is unused:&#10;100% of its bytes are ignored" type="SD104">ckpt/model.safetensors:1:1: SD104 `extra.bias` is unused:
100% of its bytes are ignored</failure>
    </testcase>
    <testcase name="SD106" classname="ckpt/model.safetensors" file="ckpt/model.safetensors" line="1" column="1">
      <failure message="every key carries the prefix `module.`" type="SD106">ckpt/model.safetensors:1:1: SD106 every key carries the prefix `module.`</failure>
    </testcase>
  </testsuite>
  <testsuite name="ckpt/model.safetensors.index.json" tests="2" failures="2" errors="0">
    <testcase name="SD004 a.weight" classname="ckpt/model.safetensors.index.json" file="ckpt/model.safetensors.index.json" line="4" column="5">
      <failure message="index maps `a.weight` to a missing shard" type="SD004">ckpt/model.safetensors.index.json:4:5: SD004 index maps `a.weight` to a missing shard</failure>
    </testcase>
    <testcase name="SD004 a.weight" classname="ckpt/model.safetensors.index.json" file="ckpt/model.safetensors.index.json" line="9" column="5">
      <failure message="index maps `a.weight` to a missing shard" type="SD004">ckpt/model.safetensors.index.json:9:5: SD004 index maps `a.weight` to a missing shard</failure>
    </testcase>
  </testsuite>
  <testsuite name="model.safetensors" tests="1" failures="1" errors="0">
    <testcase name="SD003" classname="model.safetensors" file="model.safetensors" line="1" column="1">
      <failure message="data section ends at byte 40 but the file holds only 34 bytes of data" type="SD003">model.safetensors:1:1: SD003 data section ends at byte 40 but the file holds only 34 bytes of data</failure>
    </testcase>
  </testsuite>
  <testsuite name="runs/a,b:c/model.safetensors" tests="1" failures="1" errors="0">
    <testcase name="SD001" classname="runs/a,b:c/model.safetensors" file="runs/a,b:c/model.safetensors" line="1" column="1">
      <failure message="header starts with whitespace" type="SD001">runs/a,b:c/model.safetensors:1:1: SD001 header starts with whitespace</failure>
    </testcase>
  </testsuite>
</testsuites>
"""

JUNIT_CLEAN = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="sdlint" tests="1" failures="0" errors="0">
  <testsuite name="sdlint" tests="1" failures="0" errors="0">
    <testcase name="All checks passed" classname="sdlint" />
  </testsuite>
</testsuites>
"""


def test_junit_snapshot() -> None:
    assert render("junit") == JUNIT
    assert render("junit", ()) == JUNIT_CLEAN


def test_junit_parses_and_counts_failures() -> None:
    root = ET.fromstring(render("junit"))
    failures = root.findall("./testsuite/testcase/failure")
    assert root.get("failures") == str(len(failures)) == str(len(DIAGNOSTICS))
    assert sum(int(s.get("failures", "")) for s in root.iter("testsuite")) == len(DIAGNOSTICS)
    assert [f.get("type") for f in failures] == [d.code for d in DIAGNOSTICS]
    assert [f.get("message") for f in failures] == [d.message for d in DIAGNOSTICS]
    clean = ET.fromstring(render("junit", ()))
    assert clean.get("failures") == "0" and len(clean.findall("./testsuite/testcase")) == 1
    assert clean.find(".//failure") is None


def test_junit_survives_characters_xml_cannot_hold() -> None:
    """A tensor name is arbitrary JSON in the header: control characters must not break the report."""
    d = Diagnostic(
        "SD002",
        Severity.ERROR,
        'tensor `a\x01b` <&"> has a bad shape',
        "m.safetensors",
        tensor="a\x01b",
    )
    root = ET.fromstring(render("junit", (d,)))
    case = root.find("./testsuite/testcase")
    assert case is not None and case.get("name") == "SD002 a\\u0001b"
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == 'tensor `a\\u0001b` <&"> has a bad shape'


# --- statistics, fixes and the combined report emitter ------------------------------------------


def test_statistics_rows() -> None:
    assert statistics(DIAGNOSTICS) == [
        Statistic("SD004", "inconsistent-shard-index", 2, False),
        Statistic("SD001", "unreadable-header", 1, False),
        Statistic("SD003", "invalid-data-layout", 1, False),
        Statistic("SD101", "head-size-mismatch", 1, False),
        Statistic("SD104", "unexpected-key", 1, True),
        Statistic("SD105", "dtype-differs-from-config", 1, False),
        Statistic("SD106", "key-prefix-mismatch", 1, True),
    ]


def _report(diagnostics: tuple[Diagnostic, ...], **kwargs: Any) -> str:
    stream = io.StringIO()
    context = replace(CONTEXT, quiet=kwargs.pop("quiet", False))
    report_emitter(**kwargs)(diagnostics, context, stream)
    return stream.getvalue()


STATISTICS = """\
2\tSD004\t[ ] inconsistent-shard-index
1\tSD001\t[ ] unreadable-header
1\tSD003\t[ ] invalid-data-layout
1\tSD101\t[ ] head-size-mismatch
1\tSD104\t[*] unexpected-key
1\tSD105\t[ ] dtype-differs-from-config
1\tSD106\t[*] key-prefix-mismatch
Found 8 problems (5 errors, 2 warnings, 1 info) in 5 files.
[*] 1 fixable with `--fix` (1 hidden fix can be enabled with `--unsafe-fixes`).
"""


def test_statistics_snapshot() -> None:
    assert _report(DIAGNOSTICS, output_format="text", statistics=True) == STATISTICS
    many = (DIAGNOSTICS[0],) * 12 + (DIAGNOSTICS[6],)
    assert _report(many, output_format="text", statistics=True, quiet=True) == (
        "12\tSD105\tdtype-differs-from-config\n 1\tSD003\tinvalid-data-layout\n"
    )
    assert _report((), output_format="text", statistics=True) == (
        "All checks passed (5 files checked).\n"
    )


def test_statistics_as_json() -> None:
    out = _report(DIAGNOSTICS[:3], output_format="json", statistics=True)
    assert json.loads(out) == [
        {"code": "SD101", "name": "head-size-mismatch", "count": 1, "fixable": False},
        {"code": "SD104", "name": "unexpected-key", "count": 1, "fixable": True},
        {"code": "SD105", "name": "dtype-differs-from-config", "count": 1, "fixable": False},
    ]


@pytest.mark.parametrize("output_format", ["sarif", "github", "gitlab", "junit"])
def test_statistics_has_no_machine_form_but_json(output_format: str) -> None:
    with pytest.raises(UsageError, match="--statistics"):
        report_emitter(output_format, statistics=True)


SHOW_FIXES = """\
Available fixes:
ckpt/model.safetensors: SD104 Drop the tensor `extra.bias` (unsafe)
ckpt/model.safetensors: SD106 Strip the prefix `module.` from 39 keys (safe)
"""


def test_show_fixes_follows_the_text_output() -> None:
    assert _report(DIAGNOSTICS, output_format="text", show_fixes=True) == TEXT + SHOW_FIXES
    assert _report(DIAGNOSTICS, output_format="text", statistics=True, show_fixes=True) == (
        STATISTICS + SHOW_FIXES
    )
    unfixable = DIAGNOSTICS[:2]
    assert _report(unfixable, output_format="text", show_fixes=True).endswith(
        "in 2 files.\nNo fixes available.\n"
    )
    assert _report((), output_format="text", show_fixes=True) == (
        "All checks passed (5 files checked).\n"
    )
    # -q: the findings and the fixes, without the summary and the heading
    without_summary = "".join(TEXT.splitlines(True)[:-2])  # the found and fixable lines
    without_heading = "".join(SHOW_FIXES.splitlines(True)[1:])
    assert _report(DIAGNOSTICS, output_format="text", show_fixes=True, quiet=True) == (
        without_summary + without_heading
    )


@pytest.mark.parametrize("output_format", ["json", "sarif", "github", "gitlab", "junit"])
def test_show_fixes_leaves_machine_formats_parseable(output_format: str) -> None:
    assert _report(DIAGNOSTICS, output_format=output_format, show_fixes=True) == render(
        output_format
    )


def test_fix_applicability_is_rendered_from_the_diagnostic() -> None:
    d = replace(DIAGNOSTICS[0], fix=Fix(Applicability.SAFE, "Cast to bfloat16"))
    assert _report((d,), output_format="text", show_fixes=True, quiet=True).splitlines() == [
        "ckpt/config.json:3:12: SD105 [*] tensors are stored in F32, the config's dtype is bfloat16",
        "ckpt/config.json: SD105 Cast to bfloat16 (safe)",
    ]
