"""The `sdlint` command, in-process: exact output for each rule, exit codes, selection, formats."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sdlint import __version__
from tests.cli_helpers import TENSORS, run, truncated
from tests.safetensors_files import TensorSpecs, header_for, write_raw, write_sharded, write_tensors

SHARDS: dict[str, TensorSpecs] = {
    "model-00001-of-00002.safetensors": {"a.weight": ("F32", (2, 2))},
    "model-00002-of-00002.safetensors": {"b.weight": ("F32", (3,))},
}
LFS = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 498001234\n"
)


pytestmark = pytest.mark.usefixtures("in_tmp")


def bad_size(path: Path) -> None:
    header, size = header_for(TENSORS)
    header["classifier.weight"]["shape"] = [2, 3]
    write_raw(path, header, b"\0" * size)


def wrong_shard(folder: Path) -> None:
    write_sharded(
        folder,
        SHARDS,
        weight_map={
            "a.weight": "model-00002-of-00002.safetensors",
            "b.weight": "model-00001-of-00002.safetensors",
        },
    )


SNAPSHOTS: list[tuple[str, Callable[[Path], object], str, str]] = [
    (
        "SD001",
        lambda p: p.write_bytes(b"\x10\x00"),
        "model.safetensors",
        "model.safetensors:1:1: SD001 file is 2 bytes, shorter than the 8-byte header length\n"
        "Found 1 problem (1 error) in 1 file.\n",
    ),
    (
        "SD002",
        bad_size,
        "model.safetensors",
        "model.safetensors:1:1: SD002 tensor `classifier.weight`: shape [2, 3] of F32 needs 24 bytes, "
        "but its data_offsets [0, 32] span 32\n"
        "note: model checks skipped for 1 checkpoint: no config.json beside the weights; pass "
        "--model-config to check against one (model.safetensors)\n"
        "Found 1 problem (1 error) in 1 file.\n",
    ),
    (
        "SD003",
        truncated,
        "model.safetensors",
        "model.safetensors:1:1: SD003 data section ends at byte 40 but the file holds only 34 bytes "
        "of data: 6 bytes are missing (truncated download?); 1 tensor affected: `classifier.bias`\n"
        "note: model checks skipped for 1 checkpoint: no config.json beside the weights; pass "
        "--model-config to check against one (model.safetensors)\n"
        "Found 1 problem (1 error) in 1 file.\n",
    ),
    (
        "SD004",
        wrong_shard,
        "model-00001-of-00002.safetensors",
        "model.safetensors.index.json:1:1: SD004 index maps `a.weight` to "
        "model-00002-of-00002.safetensors, but that shard has no such tensor "
        "(it is in model-00001-of-00002.safetensors)\n"
        "model.safetensors.index.json:1:1: SD004 index maps `b.weight` to "
        "model-00001-of-00002.safetensors, but that shard has no such tensor "
        "(it is in model-00002-of-00002.safetensors)\n"
        "note: model checks skipped for 1 checkpoint: no config.json beside the weights; pass "
        "--model-config to check against one (model.safetensors.index.json)\n"
        "Found 2 problems (2 errors) in 1 file.\n",
    ),
    (
        "SD005",
        lambda p: p.write_text(LFS),
        "model.safetensors",
        "model.safetensors:1:1: SD005 file is a Git LFS pointer, not the weights (object "
        "sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393, 498,001,234 bytes): "
        'fetch them with `git lfs pull --include="model.safetensors"`\n'
        "Found 1 problem (1 error) in 1 file.\n",
    ),
]


@pytest.mark.parametrize(
    ("code", "build", "arg", "expected"), SNAPSHOTS, ids=[s[0] for s in SNAPSHOTS]
)
def test_rule_snapshot(
    code: str,
    build: Callable[[Path], object],
    arg: str,
    expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    build(Path("model.safetensors") if code != "SD004" else Path())
    assert run(capsys, "check", arg) == (1, expected, "")
    # the same finding is selected and ignored by its code and by its prefix
    assert run(capsys, "check", arg, "--ignore", code)[0] == 0
    assert run(capsys, "check", arg, "--ignore", "SD", "--select", code)[0] == 1
    assert run(capsys, "check", arg, "--ignore", "SD0")[0] == 0


def test_clean_file(capsys: pytest.CaptureFixture[str]) -> None:
    write_tensors(Path("model.safetensors"), TENSORS)
    assert run(capsys, "check", "model.safetensors") == (
        0,
        "note: model checks skipped for 1 checkpoint: no config.json beside the weights; pass "
        "--model-config to check against one (model.safetensors)\n"
        "All checks passed (1 file checked).\n",
        "",
    )
    assert run(capsys, "check", "-q", "model.safetensors") == (0, "", "")


def test_json_output_contract(capsys: pytest.CaptureFixture[str]) -> None:
    truncated(Path("model.safetensors"))
    code, out, _ = run(capsys, "check", "--output-format", "json", "model.safetensors")
    assert code == 1
    assert json.loads(out) == [
        {
            "code": "SD003",
            "severity": "error",
            "message": "data section ends at byte 40 but the file holds only 34 bytes of data: "
            "6 bytes are missing (truncated download?); 1 tensor affected: `classifier.bias`",
            "path": "model.safetensors",
            "tensor": None,
            "expected": None,
            "actual": None,
            "fix": None,
        }
    ]


def test_json_clean_is_an_empty_array(capsys: pytest.CaptureFixture[str]) -> None:
    write_tensors(Path("model.safetensors"), TENSORS)
    assert run(capsys, "check", "--output-format=json", "model.safetensors") == (0, "[]\n", "")


def test_warning_and_error_summary(capsys: pytest.CaptureFixture[str]) -> None:
    header, size = header_for(TENSORS)
    write_raw(Path("a.safetensors"), "  " + json.dumps(header), b"\0" * size)
    truncated(Path("b.safetensors"))
    code, out, _ = run(capsys, "check", ".")
    assert code == 1
    assert out.splitlines()[0].startswith("a.safetensors:1:1: SD001 header starts with whitespace")
    assert out.splitlines()[-1] == "Found 2 problems (1 error, 1 warning) in 2 files."


def test_color_only_on_a_tty(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    truncated(Path("model.safetensors"))
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    _, colored, _ = run(capsys, "check", "model.safetensors")
    assert "\x1b[" in colored
    monkeypatch.setenv("NO_COLOR", "1")
    _, plain, _ = run(capsys, "check", "model.safetensors")
    assert "\x1b[" not in plain


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["check", "absent.safetensors"],
            "sdlint: error: absent.safetensors: no such file or directory\n",
        ),
        (
            ["check", "--select", "XYZ", "."],
            "sdlint: error: unknown rule selector 'XYZ': expected a code or "
            "prefix such as SD1 or SD101 (see `sdlint rule --all`)\n",
        ),
        (["rule", "SD999"], "sdlint: error: unknown rule 'SD999' (see `sdlint rule --all`)\n"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tensors(Path("model.safetensors"), TENSORS)
    assert run(capsys, *argv) == (2, "", message)


def test_argparse_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "check")[0] == 2
    assert run(capsys, "check", "--output-format", "yaml", ".")[0] == 2
    assert run(capsys)[0] == 2


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--version") == (0, f"sdlint {__version__}\n", "")


def test_internal_error_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tensors(Path("model.safetensors"), TENSORS)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("sdlint.commands.check.check_paths", boom)
    code, out, err = run(capsys, "check", "model.safetensors")
    assert (code, out) == (2, "")
    assert err.startswith("sdlint: internal error: RuntimeError: simulated bug. This is a bug")
    assert err.count("\n") == 1


def test_rule_docs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rule", "sd003")
    assert code == 0
    assert out.startswith("# invalid-data-layout (SD003)\n")
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Fix safety"):
        assert section in out
    code, out, _ = run(capsys, "rule", "--all")
    assert code == 0 and [line.split()[0] for line in out.splitlines()][:5] == [
        "SD001",
        "SD002",
        "SD003",
        "SD004",
        "SD005",
    ]


def test_check_never_opens_a_file_for_writing(tmp_path: Path) -> None:
    """In a fresh interpreter (audit hooks cannot be removed), every open during a check is read-only."""
    write_sharded(tmp_path / "sharded", SHARDS)
    truncated(tmp_path / "bad.safetensors")
    script = (
        "import sys\n"
        "def hook(event, args):\n"
        "    if event == 'open' and isinstance(args[0], str) and args[0].startswith(sys.argv[1]):\n"
        "        mode, flags = args[1], args[2]\n"
        "        assert (mode is None or set(mode) <= set('rb')) and not flags & 0o3, (args,)\n"
        "sys.addaudithook(hook)\n"
        "from sdlint.cli import main\n"
        "raise SystemExit(main(['check', sys.argv[1]]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1, result.stderr
    assert "SD003" in result.stdout and "AssertionError" not in result.stderr


def test_python_dash_m(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sdlint", "--version"], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout) == (0, f"sdlint {__version__}\n")
