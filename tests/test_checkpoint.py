"""The format-neutral checkpoint: what the model layer and the rules read whatever the format."""

from __future__ import annotations

from pathlib import Path

from sdlint.checkpoint import Checkpoint
from sdlint.config import ProjectConfig
from sdlint.context import ModelTarget
from sdlint.discover import find_checkpoints
from sdlint.engine import Resolved, check_checkpoint
from sdlint.formats import PICKLE, Tensor, TensorSpec, Unreadable
from sdlint.registry import all_rules
from sdlint.sources import FileRef
from tests.cli_helpers import TENSORS
from tests.safetensors_files import header_for, write_raw, write_sharded


def test_signature_is_dtype_and_shape_of_every_tensor(tmp_path: Path) -> None:
    header, size = header_for(TENSORS)
    write_raw(tmp_path / "model.safetensors", header, b"\0" * size)
    (checkpoint,) = find_checkpoints([tmp_path])
    assert checkpoint.signature() == {
        "classifier.weight": TensorSpec("F32", (2, 4)),
        "classifier.bias": TensorSpec("F32", (2,)),
    }
    assert checkpoint.tensors["classifier.bias"].span == (32, 40)
    assert checkpoint.local_path == tmp_path / "model.safetensors"
    assert not checkpoint.is_adapter


class _Described:
    """A weights file of another format, as its reader would describe it."""

    def __init__(self, path: FileRef) -> None:
        self.path = path
        self.format = PICKLE
        self.tensors = {"w": Tensor("w", "F16", (3,))}


def test_safetensors_rules_skip_a_checkpoint_of_another_format(tmp_path: Path) -> None:
    """SD001 would report an unreadable safetensors header; the file is not safetensors."""
    path = FileRef.of(tmp_path / "pytorch_model.bin")
    unreadable = Checkpoint(path, (Unreadable(path, "not a safetensors file"),), format=PICKLE)
    resolved = Resolved(tuple(all_rules()), ModelTarget(model_checks="off"), ProjectConfig())
    assert check_checkpoint(unreadable, resolved) == []
    described = Checkpoint(path, (_Described(path),), format=PICKLE)
    assert described.signature() == {"w": TensorSpec("F16", (3,))}
    assert described.file_of == {"w": path} and described.tensors["w"].span is None


def test_index_keys_only_where_the_index_and_its_shards_disagree(tmp_path: Path) -> None:
    """transformers 4.x loads the keys the index names, 5.x those in the shard headers: the model
    layer gets the index's keys, in its order, exactly when the two differ."""
    shards = {
        "model-00001-of-00002.safetensors": {"b.weight": ("F32", (2,)), "a.weight": ("F32", (2,))},
        "model-00002-of-00002.safetensors": {"c.weight": ("F32", (2,))},
    }
    (consistent,) = find_checkpoints([write_sharded(tmp_path / "same", shards)])
    assert consistent.index_keys is None
    weight_map = {
        "c.weight": "model-00002-of-00002.safetensors",
        "ghost.weight": "model-00002-of-00002.safetensors",
        "a.weight": "model-00001-of-00002.safetensors",
    }
    index = write_sharded(tmp_path / "differs", shards, weight_map=weight_map)
    (differing,) = find_checkpoints([index])
    assert differing.index_keys == ("c.weight", "ghost.weight", "a.weight")
    assert set(differing.signature()) == {"a.weight", "b.weight", "c.weight"}


def test_a_key_in_several_shards_carries_its_earlier_copies(tmp_path: Path) -> None:
    """The signature holds the last shard's copy (what 5.x loads) and, for a key in several shards,
    the earlier copies in load order (4.x compares each with the model); other keys carry none."""
    shards = {
        "model-00001-of-00003.safetensors": {"w": ("F32", (2,)), "a": ("F32", (1,))},
        "model-00002-of-00003.safetensors": {"w": ("F16", (3,))},
        "model-00003-of-00003.safetensors": {"w": ("F32", (4,))},
    }
    weight_map = {"w": "model-00003-of-00003.safetensors", "a": "model-00001-of-00003.safetensors"}
    weight_map["b"] = "model-00002-of-00003.safetensors"  # so the second shard is read
    (checkpoint,) = find_checkpoints([write_sharded(tmp_path, shards, weight_map=weight_map)])
    assert checkpoint.signature() == {
        "w": TensorSpec("F32", (4,), earlier=(TensorSpec("F32", (2,)), TensorSpec("F16", (3,)))),
        "a": TensorSpec("F32", (1,)),
    }
