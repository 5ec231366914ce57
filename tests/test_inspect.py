"""sdlint/inspect.py: a checkpoint's contents and the difference of two, from headers only."""

from __future__ import annotations

from pathlib import Path

from sdlint.discover import find_checkpoints
from sdlint.inspect import Contents, TensorRow, compare, describe, module_of, shape_change
from tests.safetensors_files import write_raw, write_sharded, write_tensors

HEAD = {
    "roberta.encoder.layer.0.attention.self.query.weight": ("F32", (768, 768)),
    "roberta.encoder.layer.0.attention.self.query.bias": ("F32", (768,)),
    "classifier.out_proj.weight": ("F32", (2, 768)),
    "classifier.out_proj.bias": ("F32", (2,)),
}


def contents_of(path: Path) -> Contents:
    (checkpoint,) = find_checkpoints([path])
    return describe(checkpoint)


def test_module_of_cuts_the_module_path_to_depth() -> None:
    name = "roberta.encoder.layer.0.attention.self.query.weight"
    assert module_of(name) == "roberta.encoder"
    assert module_of(name, 4) == "roberta.encoder.layer.0"
    assert module_of("classifier.weight") == "classifier"
    assert module_of("weight") == ""


def test_a_file_lists_tensors_modules_and_metadata(tmp_path: Path) -> None:
    path = write_tensors(tmp_path / "model.safetensors", HEAD, {"format": "pt"})
    contents = contents_of(path)
    assert [t.name for t in contents.tensors] == sorted(HEAD)
    query = next(t for t in contents.tensors if t.name.endswith("query.weight"))
    assert (query.dtype, query.shape, query.nbytes, query.shard) == (
        "F32",
        (768, 768),
        768 * 768 * 4,
        None,
    )
    assert contents.metadata == {"format": "pt"}
    assert contents.parameters == 768 * 768 + 768 + 2 * 768 + 2
    assert contents.nbytes == 4 * contents.parameters
    modules = {m.module: (m.tensors, m.parameters) for m in contents.modules()}
    assert modules == {
        "classifier.out_proj": (2, 2 * 768 + 2),
        "roberta.encoder": (2, 768 * 768 + 768),
    }
    assert contents.problems == ()


def test_sub_byte_and_unknown_sizes(tmp_path: Path) -> None:
    assert TensorRow("x", "F4", (3,)).nbytes == 2
    assert TensorRow("x", "Q4_K", (3,)).nbytes is None


def test_an_index_gives_each_tensor_its_shard(tmp_path: Path) -> None:
    index = write_sharded(
        tmp_path,
        {
            "model-00001-of-00002.safetensors": {"a.weight": ("BF16", (4, 4))},
            "model-00002-of-00002.safetensors": {"b.weight": ("BF16", (4,))},
        },
    )
    contents = contents_of(index)
    assert {t.name: t.shard for t in contents.tensors} == {
        "a.weight": "model-00001-of-00002.safetensors",
        "b.weight": "model-00002-of-00002.safetensors",
    }
    assert contents.files == (
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    )
    assert contents.index_metadata == {"total_parameters": 20, "total_size": 40}


def test_unreadable_files_are_named_as_problems(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "model.safetensors", b"{", pad=False)
    contents = contents_of(path)
    assert contents.tensors == ()
    assert len(contents.problems) == 1 and "cannot be read" in contents.problems[0]


def test_compare_reports_keys_on_one_side_and_changes(tmp_path: Path) -> None:
    five = {
        **HEAD,
        "classifier.out_proj.weight": ("F32", (5, 768)),
        "classifier.out_proj.bias": ("BF16", (5,)),
        "classifier.dense.weight": ("F32", (768, 768)),
    }
    del five["roberta.encoder.layer.0.attention.self.query.bias"]
    a = contents_of(write_tensors(tmp_path / "a.safetensors", HEAD))
    b = contents_of(write_tensors(tmp_path / "b.safetensors", five))
    difference = compare(a, b)
    assert difference.differs
    assert [r.name for r in difference.only_in_a] == [
        "roberta.encoder.layer.0.attention.self.query.bias"
    ]
    assert [r.name for r in difference.only_in_b] == ["classifier.dense.weight"]
    changes = {c.name: shape_change(c) for c in difference.changed}
    assert changes == {
        "classifier.out_proj.bias": "F32 [2] -> BF16 [5]",
        "classifier.out_proj.weight": "[2, 768] -> [5, 768]",
    }
    assert difference.same == 1
    groups = {g.module: g.count for g in difference.by_module()}
    assert groups == {"classifier.dense": 1, "classifier.out_proj": 2, "roberta.encoder": 1}


def test_compare_of_equal_signatures_differs_in_nothing(tmp_path: Path) -> None:
    a = contents_of(write_tensors(tmp_path / "a.safetensors", HEAD, fill=1))
    b = contents_of(write_tensors(tmp_path / "b.safetensors", HEAD, fill=2))  # other data
    difference = compare(a, b)
    assert not difference.differs and difference.same == len(HEAD)
    assert difference.to_dict()["changed"] == []


def test_numbered_layers_sort_in_numeric_order(tmp_path: Path) -> None:
    names = [f"model.layers.{i}.weight" for i in (10, 2, 1)] + ["model.norm.weight"]
    path = write_tensors(tmp_path / "m.safetensors", {n: ("F16", (2,)) for n in names})
    assert [t.name for t in contents_of(path).tensors] == [
        "model.layers.1.weight",
        "model.layers.2.weight",
        "model.layers.10.weight",
        "model.norm.weight",
    ]
