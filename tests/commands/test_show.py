"""`sdlint show`: end to end in process, on built files and the bundled example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run
from tests.safetensors_files import write_raw, write_sharded, write_tensors

ROOT = Path(__file__).parent.parent.parent
EXAMPLE = ROOT / "examples" / "roberta-2-labels"


def test_show_prints_totals_metadata_modules_and_tensors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_tensors(
        tmp_path / "model.safetensors",
        {
            "classifier.out_proj.weight": ("F32", (2, 768)),
            "classifier.out_proj.bias": ("F32", (2,)),
        },
        {"format": "pt"},
    )
    code, out, err = run(capsys, "show", str(path))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"{path.as_posix()}: 2 tensors, 1,538 parameters, 6.2 kB"
    assert lines[1] == '__metadata__: {"format": "pt"}'
    assert "classifier.out_proj        2       1,538  6,152" in out
    assert "classifier.out_proj.weight  F32    [2, 768]  6,144" in out


def test_show_summary_leaves_the_tensors_out(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_tensors(tmp_path / "model.safetensors", {"a.b.weight": ("F16", (3,))})
    code, out, _ = run(capsys, "show", "--summary", str(path))
    assert code == 0 and "a.b " in out and "a.b.weight" not in out


def test_show_json_of_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "--output-format", "json", str(EXAMPLE))
    assert code == 0
    (document,) = json.loads(out)
    assert document["path"] == (EXAMPLE / "model.safetensors").as_posix()
    rows = {r["name"]: r for r in document["tensor_list"]}
    assert rows["classifier.out_proj.weight"] == {
        "name": "classifier.out_proj.weight",
        "dtype": "F32",
        "shape": [2, 32],
        "parameters": 64,
        "bytes": 256,
    }
    assert document["tensors"] == len(rows) == sum(m["tensors"] for m in document["modules"])
    assert document["bytes"] == sum(r["bytes"] for r in rows.values())
    # header-only: the sizes add up to the file's data section
    size = (EXAMPLE / "model.safetensors").stat().st_size
    assert size - document["bytes"] < 10_000


def test_show_an_index_names_each_tensors_shard(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    index = write_sharded(
        tmp_path,
        {
            "model-00001-of-00002.safetensors": {"a.weight": ("BF16", (4, 4))},
            "model-00002-of-00002.safetensors": {"b.weight": ("BF16", (4,))},
        },
    )
    code, out, _ = run(capsys, "show", str(index))
    assert code == 0
    assert "in 2 files" in out.splitlines()[0]
    assert 'index metadata: {"total_parameters": 20, "total_size": 40}' in out
    assert "a.weight  BF16   [4, 4]     32  model-00001-of-00002.safetensors" in out
    code, out, _ = run(capsys, "show", "--output-format", "json", str(index))
    (document,) = json.loads(out)
    assert [r["shard"] for r in document["tensor_list"]] == [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]


def test_show_names_an_unreadable_file_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_raw(tmp_path / "model.safetensors", b"[]")
    code, out, _ = run(capsys, "show", str(path))
    assert code == 1
    assert "problem: " in out and "cannot be read" in out


def test_show_of_nothing_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "show", str(tmp_path / "absent"))
    assert code == 2 and "no such file" in err
