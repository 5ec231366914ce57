"""What gets checked: a single `.safetensors` file, or a sharded index with its shards.

`find_checkpoints` turns the PATHs of the command line into checkpoints. pre-commit passes only the
files a commit touches, so a lone shard or a `config.json` is widened to the checkpoint it belongs
to: a shard is checked with its index and siblings, never as a lone file.
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sdlint.config_fields import CONFIG_NAME, ConfigFile, read_config
from sdlint.errors import UsageError
from sdlint.header import Header as Header
from sdlint.header import HeaderResult, TensorInfo, read_header
from sdlint.sources.local import is_regular_file

INDEX_SUFFIX = ".safetensors.index.json"
WEIGHTS_SUFFIX = ".safetensors"
_MAX_INDEX_SIZE = 100_000_000
# Folders a recursive search never enters: VCS data, environments and caches hold no user weights.
_SKIPPED_DIRS = {"node_modules", "__pycache__", "site-packages"}


@dataclass(frozen=True)
class ShardIndex:
    """A `*.safetensors.index.json`. `problem` is set when it cannot be used at all."""

    path: Path
    weight_map: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, object] | None = None
    problem: str | None = None

    @property
    def shard_names(self) -> list[str]:
        """The shard files transformers reads: sorted distinct `weight_map` values."""
        return sorted(set(self.weight_map.values()))


@dataclass(frozen=True)
class Checkpoint:
    """One unit of checking. `files` are the weight files' headers in load order."""

    path: Path  # what the user sees: the weights file, or the index
    files: tuple[HeaderResult, ...]
    index: ShardIndex | None = None
    unreferenced_shards: tuple[Path, ...] = ()  # shard-named files the index does not list
    missing_shards: tuple[str, ...] = ()  # shard files the index lists that do not exist
    config: ConfigFile | None = None  # the config.json beside the weights, read once; None: none

    @property
    def display_path(self) -> str:
        return display(self.path)

    @property
    def folder(self) -> Path:
        return self.path.parent

    @cached_property
    def tensors(self) -> dict[str, TensorInfo]:
        """Well-formed tensors of the whole checkpoint; on a key in two shards the later shard wins,
        as transformers 5 merges them."""
        merged: dict[str, TensorInfo] = {}
        for result in self.files:
            if isinstance(result, Header):
                merged.update(result.tensors)
        return merged

    @property
    def headers(self) -> list[Header]:
        return [r for r in self.files if isinstance(r, Header)]

    @property
    def fully_readable(self) -> bool:
        return not self.missing_shards and len(self.headers) == len(self.files) > 0

    @property
    def loadable(self) -> bool:
        """Every file read and every entry well-formed: the key set is the one a loader sees."""
        return self.fully_readable and all(
            not entry.errors for header in self.headers for entry in header.entries
        )

    @cached_property
    def file_of(self) -> dict[str, Path]:
        """The file each tensor is read from (the later shard for a key in two)."""
        return {name: header.path for header in self.headers for name in header.tensors}


def display(path: Path) -> str:
    """A path as the user typed it when relative, so editors and CI annotations can resolve it."""
    return path.as_posix()


def read_index(path: Path) -> ShardIndex:
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            return ShardIndex(path, problem="index is not a regular file")
        if st.st_size > _MAX_INDEX_SIZE:
            return ShardIndex(
                path, problem=f"index is {st.st_size:,} bytes, too large to be an index"
            )
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        return ShardIndex(path, problem=f"cannot read the index: {e.strerror or e}")
    except UnicodeDecodeError:
        return ShardIndex(path, problem="index is not valid UTF-8")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as e:
        return ShardIndex(path, problem=f"index is not valid JSON: {e}")
    if not isinstance(document, dict):
        return ShardIndex(path, problem="index is not a JSON object")
    weight_map = document.get("weight_map")
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        return ShardIndex(
            path, problem="index has no `weight_map` object of tensor name -> shard file"
        )
    metadata = document.get("metadata")
    return ShardIndex(
        path,
        weight_map=dict(weight_map),
        metadata=dict(metadata) if isinstance(metadata, dict) else None,
        problem=None,
    )


def load_index_checkpoint(index_path: Path) -> Checkpoint:
    index = read_index(index_path)
    folder = index_path.parent
    present = [name for name in index.shard_names if (folder / name).exists()]
    missing = tuple(name for name in index.shard_names if name not in present)
    files = tuple(read_header(folder / name) for name in present)
    listed = {(folder / name).resolve() for name in index.shard_names}
    shard_pattern = _shard_pattern(index_path)
    unreferenced = tuple(
        p
        for p in sorted(folder.glob(f"*{WEIGHTS_SUFFIX}"))
        if shard_pattern.fullmatch(p.name) and p.resolve() not in listed
    )
    return Checkpoint(index_path, files, index, unreferenced, missing, _config_beside(folder))


def load_file_checkpoint(path: Path) -> Checkpoint:
    return Checkpoint(path, (read_header(path),), config=_config_beside(path.parent))


def _config_beside(folder: Path) -> ConfigFile | None:
    """The config.json in `folder` when there is one (a regular file, after symlinks)."""
    path = folder / CONFIG_NAME
    return read_config(path) if is_regular_file(path) else None


def _indexes_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(f"*{INDEX_SUFFIX}") if p.is_file())


def _owning_index(weights: Path) -> Path | None:
    """The index beside `weights` that lists it as a shard (or names it by the shard pattern)."""
    for index_path in _indexes_in(weights.parent):
        listed = read_index(index_path).shard_names
        if weights.name in listed or _shard_pattern(index_path).fullmatch(weights.name):
            return index_path
    return None


# A checkpoint is found by its root, the file that names it: an index (True) or a lone weights
# file (False). Finding roots reads only index JSON; each checkpoint's headers are read once, after
# duplicates are dropped (pre-commit passes every changed shard of one index).
Root = tuple[Path, bool]


def _shard_pattern(index_path: Path) -> re.Pattern[str]:
    stem = index_path.name[: -len(INDEX_SUFFIX)]
    return re.compile(rf"{re.escape(stem)}-\d+-of-\d+{re.escape(WEIGHTS_SUFFIX)}")


def _roots_in_folder(folder: Path) -> Iterator[Root]:
    """Every checkpoint in one folder (not recursive): each index, then every weights file that no
    index claims."""
    claimed: set[str] = set()
    for index_path in _indexes_in(folder):
        pattern = _shard_pattern(index_path)
        claimed.update(read_index(index_path).shard_names)
        claimed.update(
            p.name for p in folder.glob(f"*{WEIGHTS_SUFFIX}") if pattern.fullmatch(p.name)
        )
        yield index_path, True
    for weights in sorted(folder.glob(f"*{WEIGHTS_SUFFIX}")):
        if weights.name not in claimed and weights.is_file():
            yield weights, False


def _walk_folders(root: Path) -> Iterator[Path]:
    yield root
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return
    for child in children:
        if child.name.startswith(".") or child.name in _SKIPPED_DIRS:
            continue
        yield from _walk_folders(child)


def _roots_for_path(path: Path) -> list[Root]:
    """The checkpoints one command-line PATH stands for. Raises UsageError if there are none."""
    if path.is_dir():
        found = [r for folder in _walk_folders(path) for r in _roots_in_folder(folder)]
        if not found:
            raise UsageError(f"no safetensors checkpoint found in {display(path)}")
        return found
    if not path.exists() and not path.is_symlink():
        raise UsageError(f"{display(path)}: no such file or directory")
    name = path.name
    if name.endswith(INDEX_SUFFIX):
        return [(path, True)]
    if name.endswith(WEIGHTS_SUFFIX):
        owner = _owning_index(path)
        return [(owner, True) if owner else (path, False)]
    if name == CONFIG_NAME:
        # A changed config.json is checked through the weights beside it.
        return list(_roots_in_folder(path.parent))
    if name.endswith(".json") and read_index(path).problem is None:
        return [(path, True)]
    # Any other file is read as safetensors: its header decides, not its name.
    return [(path, False)]


def find_checkpoints(paths: Sequence[Path]) -> list[Checkpoint]:
    """Resolve PATHs to checkpoints, each once and read once, in command-line order."""
    roots: dict[Path, Root] = {}
    for path in paths:
        for root in _roots_for_path(path):
            roots.setdefault(root[0].resolve(), root)
    return [
        load_index_checkpoint(p) if is_index else load_file_checkpoint(p)
        for p, is_index in roots.values()
    ]


def tensor_bytes(tensors: Iterable[TensorInfo]) -> int:
    return sum(t.end - t.begin for t in tensors)
