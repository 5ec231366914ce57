"""Find the checkpoints the command line's PATHs stand for, and read each once.

pre-commit passes only the files a commit touches, so a lone shard or a `config.json` is widened to
the checkpoint it belongs to: a shard is checked with its index and siblings, never as a lone file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from sdlint import parallel
from sdlint.checkpoint import ADAPTER_CONFIG_NAME, Checkpoint
from sdlint.config_fields import CONFIG_NAME, ConfigFile, Unsaved, read_config
from sdlint.errors import UsageError
from sdlint.formats import PICKLE, SAFETENSORS
from sdlint.formats.index import read_index
from sdlint.formats.safetensors import INDEX_SUFFIX, WEIGHTS_SUFFIX, read_header
from sdlint.sources import ReadError, remote_location
from sdlint.sources.local import (
    confined,
    display,
    guarded_open,
    is_regular_file,
    list_folder,
    regular_file_kind,
)

if TYPE_CHECKING:
    from sdlint.formats.pickle import PickleResult
    from sdlint.sources.http import HttpClient

# Folders a recursive search never enters: VCS data, environments and caches hold no user weights.
_SKIPPED_DIRS = {"node_modules", "__pycache__", "site-packages"}

# torch.save files (sdlint/formats/pickle.py), and transformers' index of sharded ones.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
PICKLE_INDEX_SUFFIX = ".bin.index.json"
# In a folder search, `.bin` files are weights only under transformers' and PEFT's names (other
# formats use `.bin` too); a Trainer's own state is never taken for weights there. Named on the
# command line, any of them is checked.
_FOLDER_BIN_PREFIXES = ("pytorch_model", "adapter_model")
_TRAINER_STATE = re.compile(r"(optimizer|scheduler|scaler)\.pt|rng_state(_\d+)?\.pth")
# transformers loads model.safetensors (or its index) in preference to pytorch_model.bin (or its
# index), and model.safetensors in preference to its index, from one folder: the model rules judge
# only what it loads.
_PREFERRED = {
    "model.safetensors.index.json": ("model.safetensors",),
    "pytorch_model.bin": ("model.safetensors", "model.safetensors.index.json"),
    "pytorch_model.bin.index.json": ("model.safetensors", "model.safetensors.index.json"),
    "adapter_model.bin": ("adapter_model.safetensors",),  # as peft loads an adapter
}


def read_pickle(path: Path) -> PickleResult:
    """A torch.save file read (sdlint/formats/pickle.py, imported only when there is one)."""
    from sdlint.formats.pickle import read_pickle as read

    return read(path)


def _is_pickle_name(name: str) -> bool:
    return name.endswith(PICKLE_SUFFIXES)


def _picked_in_folder(path: Path) -> bool:
    """A torch.save file a folder search checks."""
    name = path.name
    if name.endswith(".bin"):
        return name.startswith(_FOLDER_BIN_PREFIXES)
    return _is_pickle_name(name) and not _TRAINER_STATE.fullmatch(name)


def _index_suffixes(index_path: Path) -> tuple[str, str]:
    """(index suffix, weights suffix) of an index: safetensors' or torch.save's."""
    if index_path.name.endswith(PICKLE_INDEX_SUFFIX):
        return PICKLE_INDEX_SUFFIX, ".bin"
    return INDEX_SUFFIX, WEIGHTS_SUFFIX


def _shadowed_by(weights: Path) -> Path | None:
    for preferred in _PREFERRED.get(weights.name, ()):
        if is_regular_file(weights.parent / preferred):
            return weights.parent / preferred
    return None


def load_index_checkpoint(
    index_path: Path, deleted: frozenset[str] = frozenset(), *, unsaved: Unsaved | None = None
) -> Checkpoint:
    """An index with its shards. A shard name that does not stay inside the folder tree (see
    `sdlint.sources.local.confined`) or names no regular file is refused, never opened. `deleted`:
    real paths of files the commit being checked deletes, missing whether or not they are still on
    disk (`git rm --cached` leaves them there). `unsaved`: an editor's config texts
    (`read_config`)."""
    index = read_index(index_path)
    folder = index_path.parent
    present: list[Path] = []
    missing: list[str] = []
    refused: list[tuple[str, str]] = []
    removed: list[str] = []
    for name in index.shard_names:
        shard = confined(folder, name)
        if isinstance(shard, str):
            refused.append((name, shard))
            continue
        if _real(shard) in deleted:
            removed.append(name)
            continue
        kind = regular_file_kind(shard)
        if kind is None:
            present.append(shard)
        elif kind == "missing":
            missing.append(name)
        else:
            refused.append((name, kind))
    pickle = index_path.name.endswith(PICKLE_INDEX_SUFFIX)
    files = tuple(
        _read_pickle_shard(shard) if pickle else read_header(shard, quote=False)
        for shard in present
    )
    listed = {_real(shard) for shard in present}
    shard_pattern = _shard_pattern(index_path)
    unreferenced = tuple(
        p
        for p in list_folder(folder, _index_suffixes(index_path)[1])
        if shard_pattern.fullmatch(p.name) and _real(p) not in listed and _real(p) not in deleted
    )
    checkpoint = Checkpoint(
        index_path,
        files,
        index,
        unreferenced,
        tuple(missing),
        format=PICKLE if pickle else SAFETENSORS,
        refused_shards=tuple(refused),
        shadowed_by=_shadowed_by(index_path),
        deleted_shards=tuple(removed),
    )
    return _with_configs(checkpoint, unsaved)


# How a torch.save file starts: a zip archive (torch >= 1.6), a binary pickle (the legacy layout,
# protocol 2), or a Git LFS pointer standing in for one.
_TORCH_SAVE_STARTS = (b"PK\x03\x04", b"\x80", b"vers")


def _read_pickle_shard(shard: Path) -> PickleResult:
    """A shard an index names, read as torch.save only when it starts like one. The user did not
    name this file: read as a (protocol 0) pickle, any text file would have its lines quoted back
    as global names, so its bytes never reach a message."""
    try:
        with guarded_open(shard) as f:
            start = f.read(0, 4)
    except ReadError:
        start = b"PK\x03\x04"  # read_pickle words the read error
    if start.startswith(_TORCH_SAVE_STARTS):
        return read_pickle(shard)
    from sdlint.formats.pickle import PickleCheckpoint, PickleProblem, UnreadablePickle

    reason = (
        "not a torch.save file: neither a zip archive nor a binary pickle (the index names it; "
        "its content is not shown)"
    )
    problem = PickleProblem("unreadable", reason)
    description = PickleCheckpoint(shard, None, 0, problems=(problem,))
    return UnreadablePickle(shard, reason, PICKLE, description)


def _real(path: Path) -> str:
    """The path after symlinks; never raises (a symlink loop resolves as far as it goes)."""
    return os.path.realpath(path)


def load_file_checkpoint(path: Path, *, unsaved: Unsaved | None = None) -> Checkpoint:
    if _is_pickle_name(path.name):
        checkpoint = Checkpoint(
            path, (read_pickle(path),), format=PICKLE, shadowed_by=_shadowed_by(path)
        )
        return _with_configs(checkpoint, unsaved)
    return _with_configs(Checkpoint(path, (read_header(path),)), unsaved)


def _with_configs(checkpoint: Checkpoint, unsaved: Unsaved | None) -> Checkpoint:
    """The checkpoint with the config.json beside it (and an adapter's adapter_config.json)."""
    config = _config_beside(checkpoint.folder, CONFIG_NAME, unsaved)
    adapter = (
        _config_beside(checkpoint.folder, ADAPTER_CONFIG_NAME, unsaved)
        if checkpoint.is_adapter
        else None
    )
    return replace(checkpoint, config=config, adapter_config=adapter)


def _config_beside(folder: Path, name: str, unsaved: Unsaved | None) -> ConfigFile | None:
    """`folder/name` read once, when it is a regular file (after symlinks)."""
    path = folder / name
    return read_config(path, unsaved) if is_regular_file(path) else None


def _indexes_in(folder: Path) -> list[Path]:
    found = list_folder(folder, INDEX_SUFFIX) + list_folder(folder, PICKLE_INDEX_SUFFIX)
    return sorted(p for p in found if p.is_file())


def indexes_of_deleted(deleted: Sequence[Path]) -> list[Path]:
    """The indexes still on disk that list one of the `deleted` weights files as a shard: what a
    commit that deletes a shard must check, though pre-commit passes it no file of it."""
    found: dict[Path, None] = {}
    for path in deleted:
        if path.name.endswith(WEIGHTS_SUFFIX) or _is_pickle_name(path.name):
            owner = _owning_index(path)
            if owner is not None:
                found.setdefault(owner)
    return list(found)


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
    index_suffix, weights_suffix = _index_suffixes(index_path)
    stem = index_path.name[: -len(index_suffix)]
    return re.compile(rf"{re.escape(stem)}-\d+-of-\d+{re.escape(weights_suffix)}")


def _roots_in_folder(folder: Path) -> Iterator[Root]:
    """Every checkpoint in one folder (not recursive): each index, then every weights file that no
    index claims."""
    claimed: set[str] = set()
    for index_path in _indexes_in(folder):
        pattern = _shard_pattern(index_path)
        claimed.update(read_index(index_path).shard_names)
        claimed.update(
            p.name
            for p in list_folder(folder, _index_suffixes(index_path)[1])
            if pattern.fullmatch(p.name)
        )
        yield index_path, True
    for weights in sorted(list_folder(folder, WEIGHTS_SUFFIX)):
        if weights.name not in claimed and weights.is_file():
            yield weights, False
    for suffix in PICKLE_SUFFIXES:
        for weights in list_folder(folder, suffix):
            if weights.name not in claimed and _picked_in_folder(weights) and weights.is_file():
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
    """The checkpoints one command-line PATH stands for (none for a folder without weights, or a
    config.json without weights beside it). Raises UsageError if the PATH does not exist."""
    if path.is_dir():
        found = [r for folder in _walk_folders(path) for r in _roots_in_folder(folder)]
        if not found and path.name.endswith(WEIGHTS_SUFFIX):
            return [(path, False)]  # a folder where weights should be: SD001 says so
        return found
    if not path.exists() and not path.is_symlink():
        raise UsageError(f"{display(path)}: no such file or directory")
    name = path.name
    if name.endswith((INDEX_SUFFIX, PICKLE_INDEX_SUFFIX)):
        return [(path, True)]
    if name.endswith(WEIGHTS_SUFFIX) or _is_pickle_name(name):
        owner = _owning_index(path)
        return [(owner, True) if owner else (path, False)]
    if name == CONFIG_NAME:
        # A changed config.json is checked through the weights beside it.
        return list(_roots_in_folder(path.parent))
    if name.endswith(".json") and read_index(path).problem is None:
        return [(path, True)]
    # Any other file is read as safetensors: its header decides, not its name.
    return [(path, False)]


def find_checkpoints(paths: Sequence[Path], client: HttpClient | None = None) -> list[Checkpoint]:
    """Resolve PATHs to checkpoints, each once and read once, in command-line order."""
    return discover(paths, client)[0]


def discover(
    paths: Sequence[Path],
    client: HttpClient | None = None,
    deleted: Sequence[Path] = (),
    unsaved: Unsaved | None = None,
    jobs: int = 1,
) -> tuple[list[Checkpoint], list[Path]]:
    """The checkpoints the PATHs stand for (each once and read once, in command-line order), and
    the PATHs that stand for none (a folder without weights, a config.json without weights). A
    remote PATH (a URL or `hf://`, sdlint/sources/remote.py) is read through `client`. `deleted`:
    files the commit being checked deletes; a shard among them is missing from its index.
    `unsaved`: an editor's config.json texts, read instead of the files (`read_config`). With
    `jobs` above 1, many local checkpoints are read by that many processes (sdlint/parallel.py)."""
    gone = frozenset(_real(p) for p in deleted)
    found: dict[Path, Root | Checkpoint] = {}
    empty: list[Path] = []
    for path in paths:
        url = remote_location(path)
        if url is not None:
            # Imported only for a remote PATH: local runs do not load http.client and ssl.
            from sdlint.sources.http import HttpClient
            from sdlint.sources.remote import find_remote_checkpoints

            client = client or HttpClient()
            for checkpoint in find_remote_checkpoints(url, client):
                found.setdefault(checkpoint.path, checkpoint)
            continue
        roots = _roots_for_path(path)
        if not roots:
            empty.append(path)
        for root in roots:
            found.setdefault(Path(_real(root[0])), root)
    roots = [item for item in found.values() if not isinstance(item, Checkpoint)]
    # Remote reads run threads, an editor's server is one: no processes are forked beside them.
    many = len(roots) >= parallel.HEADERS_FROM and client is None and not unsaved
    workers = jobs if many else 1
    parts = [(part, gone, unsaved) for part in parallel.chunks(roots, workers)]
    loaded = iter(parallel.flatten(parallel.spread(_load_roots, parts, workers)))
    checkpoints = [
        item if isinstance(item, Checkpoint) else next(loaded) for item in found.values()
    ]
    return checkpoints, empty


def _load_roots(
    part: tuple[Sequence[Root], frozenset[str], Unsaved | None],
) -> list[Checkpoint]:
    """Each root's checkpoint, read (headers, index, configs); `part`: the roots, the files the
    commit deletes, and an editor's unsaved config texts."""
    roots, gone, unsaved = part
    return [
        load_index_checkpoint(path, gone, unsaved=unsaved)
        if is_index
        else load_file_checkpoint(path, unsaved=unsaved)
        for path, is_index in roots
    ]
