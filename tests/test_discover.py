"""Which checkpoints a PATH stands for: files, indexes, folders, lone shards, config.json."""

from __future__ import annotations

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
