"""Which checkpoints a PATH stands for: files, indexes, folders, lone shards, config.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sdlint.discover import discover, find_checkpoints
from sdlint.errors import UsageError
from sdlint.sources import FileRef, Source
from tests.safetensors_files import TensorSpecs, write_sharded, write_tensors

SHARDS: dict[str, TensorSpecs] = {
    "model-00001-of-00002.safetensors": {"a.weight": ("F32", (2, 2)), "b.weight": ("F32", (3,))},
    "model-00002-of-00002.safetensors": {"c.weight": ("BF16", (4,))},
}


def names(files: list[FileRef], base: Path) -> list[str]:
    return [f.local.relative_to(base).as_posix() for f in files if f.local is not None]


def test_folder_with_index_and_loose_file(tmp_path: Path) -> None:
    write_sharded(tmp_path / "m", SHARDS)
    write_tensors(tmp_path / "m" / "adapter.safetensors", {"x": ("F32", (1,))})
    found = find_checkpoints([tmp_path])
    assert names([c.path for c in found], tmp_path) == [
        "m/model.safetensors.index.json",
        "m/adapter.safetensors",
    ]
    sharded = found[0]
    assert sorted(sharded.tensors) == ["a.weight", "b.weight", "c.weight"]
    assert sharded.fully_readable


def test_lone_shard_is_checked_with_its_index(tmp_path: Path) -> None:
    index = write_sharded(tmp_path, SHARDS)
    (found,) = find_checkpoints([tmp_path / "model-00002-of-00002.safetensors"])
    assert found.path.local == index and found.index is not None
    assert len(found.files) == 2


def test_config_json_stands_for_the_weights_beside_it(tmp_path: Path) -> None:
    weights = write_tensors(tmp_path / "model.safetensors", {"x": ("F32", (1,))})
    (tmp_path / "config.json").write_text("{}")
    (found,) = find_checkpoints([tmp_path / "config.json"])
    assert found.path.local == weights


def test_each_checkpoint_once(tmp_path: Path) -> None:
    write_sharded(tmp_path, SHARDS)
    found = find_checkpoints(
        [
            tmp_path,
            tmp_path / "model-00001-of-00002.safetensors",
            tmp_path / "model.safetensors.index.json",
        ]
    )
    assert len(found) == 1


def test_hidden_folders_are_skipped(tmp_path: Path) -> None:
    write_tensors(tmp_path / ".git" / "lfs" / "x.safetensors", {"x": ("F32", (1,))})
    write_tensors(tmp_path / "real" / "model.safetensors", {"x": ("F32", (1,))})
    assert names([c.path for c in find_checkpoints([tmp_path])], tmp_path) == [
        "real/model.safetensors"
    ]


def test_paths_that_name_no_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "nothing"
    with pytest.raises(UsageError):
        find_checkpoints([path])
    # a folder without weights names no checkpoint, as a config.json without weights beside it
    # does: the caller says so (a note), it is not an error (issue 10)
    path.mkdir()
    (path / "config.json").write_text("{}")
    assert discover([path, path / "config.json"]) == ([], [path, path / "config.json"])


def test_every_changed_shard_reads_each_header_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pre-commit passes each changed shard: the checkpoint is loaded once, not once per shard."""
    import sdlint.discover
    import sdlint.formats.safetensors

    write_sharded(tmp_path, SHARDS)
    reads: list[Path] = []
    real = sdlint.formats.safetensors.read_header

    def counting(source: Source, **options: bool) -> object:
        reads.append(source.ref.local or Path())
        return real(source, **options)

    monkeypatch.setattr(sdlint.discover, "read_header", counting)
    found = find_checkpoints([tmp_path / name for name in SHARDS])
    assert len(found) == 1
    assert sorted(p.name for p in reads) == sorted(SHARDS)


# --- Variants: `save_pretrained(variant="fp16")` names (sdlint/formats/names.py) -----------------

VARIANT_SHARDS: dict[str, TensorSpecs] = {
    "model.fp16-00001-of-00002.safetensors": {"a.weight": ("F16", (2, 2))},
    "model.fp16-00002-of-00002.safetensors": {"b.weight": ("F16", (3,))},
}
VARIANT_INDEX = "model.safetensors.index.fp16.json"


def test_a_variant_index_is_one_checkpoint_with_its_shards(tmp_path: Path) -> None:
    """Not one lone checkpoint per shard (each then missing the other's tensors)."""
    index = write_sharded(tmp_path, VARIANT_SHARDS, index_name=VARIANT_INDEX)
    (found,) = find_checkpoints([tmp_path])
    assert found.path.local == index and found.index is not None
    assert sorted(found.tensors) == ["a.weight", "b.weight"]
    assert found.unreferenced_shards == () and found.missing_shards == ()


def test_a_lone_variant_shard_is_checked_with_its_index(tmp_path: Path) -> None:
    index = write_sharded(tmp_path, VARIANT_SHARDS, index_name=VARIANT_INDEX)
    (found,) = find_checkpoints([tmp_path / "model.fp16-00002-of-00002.safetensors"])
    assert found.path.local == index and len(found.files) == 2


def test_a_variant_shard_left_out_of_its_index_is_unreferenced(tmp_path: Path) -> None:
    """The shard pattern is the variant's: a plain shard beside it is not the variant's."""
    write_sharded(tmp_path, VARIANT_SHARDS, index_name=VARIANT_INDEX)
    write_tensors(tmp_path / "model.fp16-00003-of-00003.safetensors", {"c": ("F16", (1,))})
    write_tensors(tmp_path / "model-00001-of-00001.safetensors", {"d": ("F16", (1,))})
    index, plain = find_checkpoints([tmp_path])
    assert names(list(index.unreferenced_shards), tmp_path) == [
        "model.fp16-00003-of-00003.safetensors"
    ]
    assert names([plain.path], tmp_path) == ["model-00001-of-00001.safetensors"]


def test_a_diffusers_legacy_variant_index_is_one_checkpoint(tmp_path: Path) -> None:
    """diffusers still loads (deprecated) the names of its mid-2024 releases:
    `<stem>.safetensors.fp16.index.json` with `<stem>-00001-of-00002.fp16.safetensors`."""
    shards = {
        f"diffusion_pytorch_model-0000{i}-of-00002.fp16.safetensors": {f"w{i}": ("F16", (2,))}
        for i in (1, 2)
    }
    index_name = "diffusion_pytorch_model.safetensors.fp16.index.json"
    index = write_sharded(tmp_path, shards, index_name=index_name)
    left_out = "diffusion_pytorch_model-00003-of-00003.fp16.safetensors"
    write_tensors(tmp_path / left_out, {"w3": ("F16", (1,))})
    for path in (tmp_path, tmp_path / next(iter(shards))):
        (found,) = find_checkpoints([path])
        assert found.path.local == index and sorted(found.tensors) == ["w1", "w2"]
        assert names(list(found.unreferenced_shards), tmp_path) == [left_out]


def test_each_variant_is_a_checkpoint_of_its_own(tmp_path: Path) -> None:
    """from_pretrained(variant=V) prefers V's single file to V's index to V's pickle, as without
    a variant; the plain names and another variant's never shadow it."""
    write_tensors(tmp_path / "model.safetensors", {"x": ("F32", (1,))})
    write_tensors(tmp_path / "model.fp16.safetensors", {"x": ("F16", (1,))})
    write_sharded(tmp_path, VARIANT_SHARDS, index_name=VARIANT_INDEX)
    write_sharded(
        tmp_path,
        {"model.bf16-00001-of-00001.safetensors": {"x": ("BF16", (1,))}},
        index_name="model.safetensors.index.bf16.json",
    )
    (tmp_path / "pytorch_model.fp16.bin").write_bytes(b"PK\x03\x04")
    (tmp_path / "pytorch_model.bf16.bin").write_bytes(b"PK\x03\x04")
    (tmp_path / "pytorch_model.ema.bin").write_bytes(b"PK\x03\x04")
    shadowed = {
        c.path.name: None if c.shadowed_by is None else c.shadowed_by.name
        for c in find_checkpoints([tmp_path])
    }
    assert shadowed == {
        "model.safetensors.index.bf16.json": None,
        VARIANT_INDEX: "model.fp16.safetensors",
        "model.fp16.safetensors": None,
        "model.safetensors": None,
        "pytorch_model.bf16.bin": "model.safetensors.index.bf16.json",
        "pytorch_model.ema.bin": None,
        "pytorch_model.fp16.bin": "model.fp16.safetensors",
    }


def test_a_pickle_variant_index_is_one_pickle_checkpoint(tmp_path: Path) -> None:
    """`save_pretrained(variant="fp16", safe_serialization=False)` (transformers 4.x)."""
    from sdlint.formats import PICKLE

    shards = ["pytorch_model.fp16-00001-of-00002.bin", "pytorch_model.fp16-00002-of-00002.bin"]
    for shard in shards:
        (tmp_path / shard).write_bytes(b"PK\x03\x04")
    index = tmp_path / "pytorch_model.bin.index.fp16.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": {"a": shards[0], "b": shards[1]}}))
    for path in (tmp_path, tmp_path / shards[1]):
        (found,) = find_checkpoints([path])
        assert found.path.local == index and found.format == PICKLE
        assert [f.path.name for f in found.files] == shards


def test_the_pre_commit_hooks_select_what_a_folder_search_checks(tmp_path: Path) -> None:
    """.pre-commit-hooks.yaml selects files by name: exactly the files of the checkpoints a
    folder search finds (and config.json), plain names and variants alike, so that a commit that
    changes any of them runs the hooks."""
    yaml = pytest.importorskip("yaml")  # comes with pre-commit
    hooks = yaml.safe_load((Path(__file__).parent.parent / ".pre-commit-hooks.yaml").read_text())
    write_sharded(tmp_path, SHARDS)
    write_sharded(tmp_path, VARIANT_SHARDS, index_name=VARIANT_INDEX)
    for name in ("model.safetensors", "model.fp16.safetensors", "adapter_model.safetensors"):
        write_tensors(tmp_path / name, {"x": ("F32", (1,))})
    write_sharded(  # diffusers' legacy variant names
        tmp_path,
        {"unet-00001-of-00001.fp16.safetensors": {"x": ("F16", (1,))}},
        index_name="unet.safetensors.fp16.index.json",
    )
    pickles = {
        "pytorch_model.bin.index.json": "pytorch_model-00001-of-00001.bin",
        "pytorch_model.bin.index.fp16.json": "pytorch_model.fp16-00001-of-00001.bin",
    }
    for index, shard in pickles.items():
        (tmp_path / index).write_text(json.dumps({"weight_map": {"x": shard}}))
    for name in (
        *pickles.values(),
        "pytorch_model.bin",
        "pytorch_model.fp16.bin",
        "adapter_model.bin",
        "model.pt",
        "last.ckpt",
        "optimizer.pt",  # a Trainer's own state
        "rng_state_0.pth",
        "training_args.bin",
    ):
        (tmp_path / name).write_bytes(b"PK\x03\x04")
    for name in ("config.json", "tokenizer.json", "README.md"):
        (tmp_path / name).write_text("{}")
    found = find_checkpoints([tmp_path])
    checked = {
        ref.name
        for c in found
        for ref in (c.path, *(f.path for f in c.files), *c.unreferenced_shards)
    }
    variants = {
        VARIANT_INDEX,
        "pytorch_model.bin.index.fp16.json",
        "unet.safetensors.fp16.index.json",
    }
    assert variants <= checked  # the test sees the variants
    on_disk = {p.name for p in tmp_path.iterdir()}
    for hook in hooks:
        selected = {
            name
            for name in on_disk
            if re.search(hook["files"], name) and not re.search(hook["exclude"], name)
        }
        assert selected == checked | {"config.json"}, hook["id"]


def _shadowed(paths: list[Path]) -> dict[str, str | None]:
    return {
        c.path.name: None if c.shadowed_by is None else c.shadowed_by.name
        for c in find_checkpoints(paths)
    }


def test_weights_beside_what_transformers_loads_are_shadowed(tmp_path: Path) -> None:
    """Mistral's layout: `consolidated.safetensors` (its own key names) beside the transformers
    shards and their index; from_pretrained loads the index, never consolidated.safetensors (it
    was judged against config.json: dozens of false SD103/SD104). Named alone, the same."""
    write_sharded(tmp_path, SHARDS)
    write_tensors(tmp_path / "consolidated.safetensors", {"layers.0.attention.wq.weight": SPEC})
    (tmp_path / "consolidated.00.pth").write_bytes(b"PK\x03\x04")
    expected = {
        "model.safetensors.index.json": None,
        "consolidated.safetensors": "model.safetensors.index.json",
        "consolidated.00.pth": "model.safetensors.index.json",
    }
    assert _shadowed([tmp_path]) == expected
    for name, winner in expected.items():
        assert _shadowed([tmp_path / name]) == {name: winner}
    # a shard named alone is its index's checkpoint, never shadowed
    assert _shadowed([tmp_path / "model-00002-of-00002.safetensors"]) == {
        "model.safetensors.index.json": None
    }


SPEC = ("F32", (1,))


@pytest.mark.parametrize(
    ("loaded", "winner"),
    [
        (["model.safetensors"], "model.safetensors"),
        (["model.fp16.safetensors"], "model.fp16.safetensors"),
        (["pytorch_model.bin", "model.bf16.safetensors"], "pytorch_model.bin"),
        (["adapter_model.safetensors"], "adapter_model.safetensors"),
    ],
)
def test_any_other_weights_file_is_shadowed_by_a_loaded_name(
    tmp_path: Path, loaded: list[str], winner: str
) -> None:
    """Plain or variant, transformers' or peft's: the first name from_pretrained loads shadows
    every other weights file of the folder (an `ema.pt`, a `finetune.safetensors`)."""
    for name in loaded:
        if name.endswith(".bin"):
            (tmp_path / name).write_bytes(b"PK\x03\x04")
        else:
            write_tensors(tmp_path / name, {"x": SPEC})
    write_tensors(tmp_path / "finetune.safetensors", {"x": SPEC})
    (tmp_path / "ema.pt").write_bytes(b"PK\x03\x04")
    shadowed = _shadowed([tmp_path])
    assert shadowed["finetune.safetensors"] == shadowed["ema.pt"] == winner
    assert all(shadowed[name] is None for name in loaded)


def test_a_lone_weights_file_is_not_shadowed(tmp_path: Path) -> None:
    """No file transformers loads by name: `finetune.safetensors` beside config.json is what the
    user means to load (`from_pretrained` of a renamed file), judged against the config."""
    write_tensors(tmp_path / "finetune.safetensors", {"x": SPEC})
    write_tensors(tmp_path / "other.safetensors", {"x": SPEC})
    (tmp_path / "config.json").write_text("{}")
    assert _shadowed([tmp_path]) == {"finetune.safetensors": None, "other.safetensors": None}
    assert _shadowed([tmp_path / "finetune.safetensors"]) == {"finetune.safetensors": None}


def test_another_librarys_folder_keeps_its_own_handling(tmp_path: Path) -> None:
    """A diffusers model folder: its weights are judged by its library's rules (a note), never
    shadowed by a transformers name beside them."""
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    write_tensors(tmp_path / "model.safetensors", {"x": SPEC})
    write_tensors(tmp_path / "diffusion_pytorch_model.safetensors", {"x": SPEC})
    (checkpoint,) = [c for c in find_checkpoints([tmp_path]) if c.path.name.startswith("diff")]
    assert checkpoint.shadowed_by is None
