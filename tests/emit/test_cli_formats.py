"""The output formats and reporting flags through `sdlint check`, in-process, on real tiny files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from sdlint.engine import Report
from tests.cli_helpers import TENSORS, run, truncated
from tests.emit.cases import DIAGNOSTICS
from tests.emit.test_emitters import SCHEMA_PATH
from tests.safetensors_files import header_for, write_raw, write_tensors

SD003 = (
    "data section ends at byte 40 but the file holds only 34 bytes of data: 6 bytes are missing "
    "(truncated download?); 1 tensor affected: `classifier.bias`"
)
SD001 = (
    "header starts with whitespace; the format says it must begin with `{` "
    "(safetensors accepts it, some other readers do not)"
)


pytestmark = pytest.mark.usefixtures("in_tmp")


def leading_whitespace(path: Path) -> None:
    header, size = header_for(TENSORS)
    write_raw(path, "  " + json.dumps(header), b"\0" * size)


def test_sarif(capsys: pytest.CaptureFixture[str]) -> None:
    truncated(Path("model.safetensors"))
    code, out, err = run(capsys, "check", "--output-format", "sarif", "model.safetensors")
    assert (code, err) == (1, "")
    log = json.loads(out)
    jsonschema.Draft4Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))).validate(log)
    (run_,) = log["runs"]
    assert [r["id"] for r in run_["tool"]["driver"]["rules"]] == ["SD003"]
    assert run_["results"] == [
        {
            "ruleId": "SD003",
            "ruleIndex": 0,
            "level": "error",
            "message": {"text": SD003},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": "model.safetensors", "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": 1, "startColumn": 1},
                    }
                }
            ],
        }
    ]


def test_github(capsys: pytest.CaptureFixture[str]) -> None:
    truncated(Path("b.safetensors"))
    leading_whitespace(Path("a.safetensors"))
    assert run(capsys, "check", "--output-format=github", ".") == (
        1,
        f"::warning title=sdlint (SD001),file=a.safetensors,line=1,col=1::{SD001}\n"
        f"::error title=sdlint (SD003),file=b.safetensors,line=1,col=1::{SD003}\n",
        "",
    )


def test_gitlab(capsys: pytest.CaptureFixture[str]) -> None:
    truncated(Path("b.safetensors"))
    leading_whitespace(Path("a.safetensors"))
    code, out, err = run(capsys, "check", "--output-format", "gitlab", ".")
    assert (code, err) == (1, "")
    issues = json.loads(out)
    assert [(i["check_name"], i["severity"], i["location"]) for i in issues] == [
        ("SD001", "minor", {"path": "a.safetensors", "lines": {"begin": 1}}),
        ("SD003", "critical", {"path": "b.safetensors", "lines": {"begin": 1}}),
    ]
    assert issues[1]["description"] == f"SD003: {SD003}"
    # the same findings in another run get the same fingerprints
    assert json.loads(run(capsys, "check", "--output-format", "gitlab", ".")[1]) == issues


def test_junit(capsys: pytest.CaptureFixture[str]) -> None:
    truncated(Path("model.safetensors"))
    code, out, err = run(capsys, "check", "--output-format", "junit", "model.safetensors")
    assert (code, err) == (1, "")
    root = ET.fromstring(out)
    assert (root.get("tests"), root.get("failures")) == ("1", "1")
    (failure,) = root.findall("./testsuite/testcase/failure")
    assert (failure.get("type"), failure.get("message")) == ("SD003", SD003)


@pytest.mark.parametrize(
    ("output_format", "expected"),
    [
        ("github", ""),
        ("gitlab", "[]\n"),
        ("sarif", None),
        ("junit", None),
    ],
)
def test_clean_run_in_each_format(
    output_format: str, expected: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tensors(Path("model.safetensors"), TENSORS)
    code, out, err = run(capsys, "check", "--output-format", output_format, "model.safetensors")
    assert (code, err) == (0, "")
    if expected is not None:
        assert out == expected
    elif output_format == "sarif":
        assert json.loads(out)["runs"][0]["results"] == []
    else:
        assert ET.fromstring(out).get("failures") == "0"


def test_statistics(capsys: pytest.CaptureFixture[str]) -> None:
    truncated(Path("b.safetensors"))
    truncated(Path("c.safetensors"))
    leading_whitespace(Path("a.safetensors"))
    assert run(capsys, "check", "--statistics", ".") == (
        1,
        "2\tSD003\tinvalid-data-layout\n"
        "1\tSD001\tunreadable-header\n"
        "Found 3 problems (2 errors, 1 warning) in 3 files.\n",
        "",
    )
    assert run(capsys, "check", "--statistics", "-q", ".")[1] == (
        "2\tSD003\tinvalid-data-layout\n1\tSD001\tunreadable-header\n"
    )
    code, out, _ = run(capsys, "check", "--statistics", "--output-format", "json", ".")
    assert code == 1 and [(s["code"], s["count"]) for s in json.loads(out)] == [
        ("SD003", 2),
        ("SD001", 1),
    ]


def test_statistics_clean(capsys: pytest.CaptureFixture[str]) -> None:
    write_tensors(Path("model.safetensors"), TENSORS)
    assert run(capsys, "check", "--statistics", ".") == (
        0,
        "All checks passed (1 file checked).\n",
        "",
    )


def test_statistics_with_a_machine_format_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    truncated(Path("model.safetensors"))
    code, out, err = run(capsys, "check", "--statistics", "--output-format", "sarif", ".")
    assert (code, out) == (2, "")
    assert (
        err.startswith("sdlint: error: --statistics prints a text table") and err.count("\n") == 1
    )


def test_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    truncated(Path("model.safetensors"))
    code, out, _ = run(capsys, "check", "--exit-zero", "model.safetensors")
    assert code == 0 and out.endswith("Found 1 problem (1 error) in 1 file.\n")
    assert run(capsys, "check", "--exit-zero", "--statistics", ".")[0] == 0
    assert run(capsys, "check", "--exit-zero", "--output-format", "sarif", ".")[0] == 0
    # errors are still errors
    assert run(capsys, "check", "--exit-zero", "absent.safetensors")[0] == 2
    assert run(capsys, "check", "--exit-zero", "--select", "XYZ", ".")[0] == 2


def test_show_fixes_without_fixes(capsys: pytest.CaptureFixture[str]) -> None:
    truncated(Path("model.safetensors"))
    assert run(capsys, "check", "--show-fixes", "model.safetensors") == (
        1,
        f"model.safetensors:1:1: SD003 {SD003}\n"
        "note: model checks skipped for 1 checkpoint: no config.json beside the weights; pass "
        "--model-config to check against one (model.safetensors)\n"
        "Found 1 problem (1 error) in 1 file.\n"
        "No fixes available.\n",
        "",
    )


def test_show_fixes_lists_each_fix(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No rule builds fixes yet (the fix engine is separate work): render a fixed report instead.
    monkeypatch.setattr(
        "sdlint.commands.check.check_paths", lambda *args, **kwargs: Report(DIAGNOSTICS, ())
    )
    code, out, _ = run(capsys, "check", "--show-fixes", "-q", ".")
    assert code == 1
    assert out.splitlines()[-2:] == [
        "ckpt/model.safetensors: SD104 Drop the tensor `extra.bias` (unsafe)",
        "ckpt/model.safetensors: SD106 Strip the prefix `module.` from 39 keys (safe)",
    ]
    code, out, _ = run(capsys, "check", "--statistics", "--show-fixes", "--exit-zero", ".")
    assert code == 0
    assert "1\tSD106\t[*] key-prefix-mismatch\n" in out
    assert out.endswith(
        "Available fixes:\n"
        "ckpt/model.safetensors: SD104 Drop the tensor `extra.bias` (unsafe)\n"
        "ckpt/model.safetensors: SD106 Strip the prefix `module.` from 39 keys (safe)\n"
    )
    # machine formats carry the fixes themselves and stay parseable
    code, out, _ = run(capsys, "check", "--show-fixes", "--output-format", "json", ".")
    assert [d["fix"] for d in json.loads(out) if d["fix"]] == [
        {"applicability": "unsafe", "description": "Drop the tensor `extra.bias`"},
        {"applicability": "safe", "description": "Strip the prefix `module.` from 39 keys"},
    ]


def test_new_flags_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--help")
    assert code == 0
    for flag in ("--statistics", "--exit-zero", "--show-fixes", "sarif", "github", "gitlab"):
        assert flag in out
