"""`sdlint diff`: end to end in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run
from tests.safetensors_files import write_raw, write_sharded, write_tensors

ROOT = Path(__file__).parent.parent.parent
TWO = ROOT / "examples" / "roberta-2-labels"
FIVE = ROOT / "examples" / "roberta-5-labels"


def head(labels: int) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {
        "roberta.embeddings.word_embeddings.weight": ("F32", (50, 768)),
        "classifier.dense.weight": ("F32", (768, 768)),
        "classifier.out_proj.weight": ("F32", (labels, 768)),
        "classifier.out_proj.bias": ("F32", (labels,)),
    }


def test_a_5_label_head_against_a_2_label_head_is_one_line_per_tensor(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a = write_tensors(tmp_path / "two" / "model.safetensors", head(2))
    b = write_tensors(tmp_path / "five" / "model.safetensors", head(5))
    code, out, err = run(capsys, "diff", str(a.parent), str(b.parent))
    assert (code, err) == (1, "")
    assert out.splitlines() == [
        f"--- {a.as_posix()}",
        f"+++ {b.as_posix()}",
        "classifier.out_proj: 2 changed",
        "  classifier.out_proj.bias [2] -> [5]",
        "  classifier.out_proj.weight [2, 768] -> [5, 768]",
        "2 changed, 0 only in A, 0 only in B, 2 same",
    ]


def test_the_bundled_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "diff", str(TWO), str(FIVE))
    assert code == 1
    assert "  classifier.out_proj.weight [2, 32] -> [5, 32]\n" in out


def test_keys_only_on_one_side_and_dtype_changes_grouped_by_module(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    before = head(2)
    after = {
        **head(2),
        "classifier.dense.weight": ("BF16", (768, 768)),
        "lm_head.bias": ("F32", (2,)),
    }
    del after["roberta.embeddings.word_embeddings.weight"]
    a = write_tensors(tmp_path / "a.safetensors", before)
    b = write_tensors(tmp_path / "b.safetensors", after)
    code, out, _ = run(capsys, "diff", str(a), str(b))
    assert code == 1
    assert out.splitlines()[2:] == [
        "classifier.dense: 1 changed",
        "  classifier.dense.weight F32 [768, 768] -> BF16 [768, 768]",
        "lm_head: 1 only in B",
        "  + lm_head.bias F32 [2]",
        "roberta.embeddings: 1 only in A",
        "  - roberta.embeddings.word_embeddings.weight F32 [50, 768]",
        "1 changed, 1 only in A, 1 only in B, 2 same",
    ]
    code, out, _ = run(capsys, "diff", "--output-format", "json", str(a), str(b))
    document = json.loads(out)
    assert code == 1 and document["differs"] is True
    assert document["only_in_b"] == [{"name": "lm_head.bias", "dtype": "F32", "shape": [2]}]
    assert document["changed"] == [
        {
            "name": "classifier.dense.weight",
            "a": {"dtype": "F32", "shape": [768, 768]},
            "b": {"dtype": "BF16", "shape": [768, 768]},
        }
    ]


def test_retrained_weights_and_a_resharded_copy_are_equal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tensors = head(2)
    a = write_tensors(tmp_path / "a.safetensors", tensors, fill=1)
    names = list(tensors)
    index = write_sharded(
        tmp_path / "sharded",
        {
            "model-00001-of-00002.safetensors": {n: tensors[n] for n in names[:2]},
            "model-00002-of-00002.safetensors": {n: tensors[n] for n in names[2:]},
        },
    )
    code, out, _ = run(capsys, "diff", str(a), str(index))
    assert code == 0
    assert out.splitlines()[-1] == "same tensors: 4 names, dtypes and shapes"


def test_a_folder_of_several_checkpoints_or_an_unreadable_one_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write_tensors(tmp_path / "many" / "a.safetensors", head(2))
    write_tensors(tmp_path / "many" / "b.safetensors", head(2))
    code, _, err = run(capsys, "diff", str(tmp_path / "many"), str(TWO))
    assert code == 2 and "holds 2 checkpoints" in err
    bad = write_raw(tmp_path / "bad.safetensors", b"[]")
    code, _, err = run(capsys, "diff", str(TWO), str(bad))
    assert code == 2 and "cannot compare" in err and "cannot be read" in err
