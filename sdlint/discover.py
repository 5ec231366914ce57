"""Find the checkpoints the command line's PATHs stand for, and read each once.

pre-commit passes only the files a commit touches, so a lone shard or a `config.json` is widened to
the checkpoint it belongs to: a shard is checked with its index and siblings, never as a lone file.

Finding and reading a folder's checkpoints is one code path over any `Folder` (sdlint/sources/):
a local folder, a hub repository's folder (sdlint/sources/remote.py turns a remote PATH into
roots), or the folder of a URL, which cannot be listed. A checkpoint is found by its `Root`, the
file that names it; loading roots first plans every checkpoint (indexes, which shards are there,
the configs beside them), then reads every weights file at once (one after the other on the local
disk, concurrently for remote files), then puts each checkpoint together.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path

from sdlint import parallel
from sdlint.checkpoint import ADAPTER_CONFIG_NAME, Checkpoint, FileResult, is_adapter_name
from sdlint.config_fields import CONFIG_NAME, ConfigFile, Unsaved, read_config
from sdlint.errors import UsageError
from sdlint.formats import PICKLE, SAFETENSORS, Unreadable
from sdlint.formats.index import MAX_INDEX_SIZE, ShardIndex, index_read_problem, parse_index
from sdlint.formats.names import add_variant, index_name, is_index_name, plain_name
from sdlint.formats.safetensors import WEIGHTS_SUFFIX, read_header
from sdlint.libraries import foreign_config, foreign_folder
from sdlint.record import field, record
from sdlint.runcache import depend, untrusted
from sdlint.sources import FileRef, Folder, PathOrUrl, ReadError, Source
from sdlint.sources.local import LocalFolder, display, real

TYPE_CHECKING = False  # typing is not imported at run time (a check has no use for it)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    from sdlint.formats.pickle import PickleResult
    from sdlint.sources.http import HttpClient

    _T = TypeVar("_T")
    _R = TypeVar("_R")
    # How a plan's files are read: `map` on the local disk, a bounded thread pool for remote
    # files.
    Mapper = Callable[[Callable[[_T], _R], Sequence[_T]], list[_R]]

# torch.save files (sdlint/formats/pickle.py). Indexes, of safetensors or torch.save shards, plain
# or of a variant, are named as sdlint/formats/names.py says.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
# In a folder search, `.bin` files are weights only under transformers' and PEFT's names (other
# formats use `.bin` too); a Trainer's own state is never taken for weights there. Named on the
# command line, any of them is checked.
_FOLDER_BIN_PREFIXES = ("pytorch_model", "adapter_model")
_TRAINER_STATE = re.compile(r"(optimizer|scheduler|scaler)\.pt|rng_state(_\d+)?\.pth")
# transformers loads model.safetensors (or its index) in preference to pytorch_model.bin (or its
# index), and model.safetensors in preference to its index, from one folder: the model rules judge
# only what it loads. A variant's files likewise (`from_pretrained(variant="fp16")`:
# model.fp16.safetensors before model.safetensors.index.fp16.json before pytorch_model.fp16.bin),
# and only among themselves: each variant is a checkpoint of its own.
_PREFERRED = {
    "model.safetensors.index.json": ("model.safetensors",),
    "pytorch_model.bin": ("model.safetensors", "model.safetensors.index.json"),
    "pytorch_model.bin.index.json": ("model.safetensors", "model.safetensors.index.json"),
}
# peft has no variants: an adapter's safetensors before its pickle.
_PREFERRED_ADAPTER = {"adapter_model.bin": ("adapter_model.safetensors",)}
# The names from_pretrained loads a checkpoint by (each plain or with a variant), in its order of
# preference, and PeftModel.from_pretrained's. In a folder that holds one of them, any other
# weights file (Mistral's `consolidated.safetensors` beside the transformers shards, an `ema.pt`)
# is not what either loads: it gets the integrity rules only. A folder without any (a lone
# `finetune.safetensors` beside config.json) is still judged against its config.
_LOADED = ("model.safetensors", *_PREFERRED)
_LOADED_ADAPTER = ("adapter_model.safetensors", "adapter_model.bin")


def read_pickle(source: Source) -> PickleResult:
    """A torch.save file read (sdlint/formats/pickle.py, imported only when there is one)."""
    from sdlint.formats.pickle import read_pickle as read

    return read(source)


def _is_pickle_name(name: str) -> bool:
    return name.endswith(PICKLE_SUFFIXES)


def _picked_in_folder(name: str) -> bool:
    """A torch.save file a folder search checks."""
    if name.endswith(".bin"):
        return name.startswith(_FOLDER_BIN_PREFIXES)
    return _is_pickle_name(name) and not _TRAINER_STATE.fullmatch(name)


def _is_pickle_index(name: str) -> bool:
    parts = index_name(name)
    return parts is not None and parts.pickle


def _weights_suffix(index: str) -> str:
    """The suffix of the shards an index lists: `.safetensors`, or `.bin` for torch.save's."""
    return ".bin" if _is_pickle_index(index) else WEIGHTS_SUFFIX


def _shard_pattern(index: str) -> re.Pattern[str]:
    """The names save_pretrained gives the shards of the index `index` (a name of no index
    matches none)."""
    parts = index_name(index)
    return parts.shard_pattern if parts is not None else re.compile(r"(?!)")


def read_index(source: Source) -> ShardIndex:
    """An index through its source. A remote index that is not there is a usage error (a local
    one is looked at before it is read); any other failure is the index's problem."""
    try:
        raw = source.read_bounded(MAX_INDEX_SIZE)
    except ReadError as e:
        if e.missing:
            raise UsageError(f"{source.ref.display}: no such file ({e.missing})") from e
        return ShardIndex(source.ref, problem=index_read_problem(e))
    return parse_index(source.ref, raw)


# ---------------------------------------------------------------------------------------------
# Roots: a checkpoint is found by the file that names it, an index or a lone weights file. Finding
# roots reads only index JSON (kept in the root, never read twice); each checkpoint's headers are
# read once, after duplicates are dropped (pre-commit passes every changed shard of one index).


@record
class Root:
    folder: Folder
    name: str
    is_index: bool
    index: ShardIndex | None = None  # the index, when finding the root read it already

    @cached_property
    def source(self) -> Source:
        return self.folder.file(self.name)


def _indexes_in(folder: Folder, listed: list[str] | None = None) -> list[str]:
    """The folder's index files (`listed`: the folder's names, when the caller has them)."""
    pickles = folder.pickles
    if listed is None:
        listed = folder.names(".json") or []
    return sorted(
        n
        for n in listed
        if n.endswith(".json")
        and (parts := index_name(n)) is not None
        and (pickles or not parts.pickle)
        and folder.is_file(n)
    )


def roots_in_folder(folder: Folder) -> Iterator[Root]:
    """Every checkpoint in one folder (not recursive): each index, then every weights file that no
    index claims."""
    listed = folder.names("") or []  # listed once, each suffix picked from it
    claimed: set[str] = set()
    for index in _indexes_in(folder, listed):
        pattern = _shard_pattern(index)
        shards = read_index(folder.file(index))
        claimed.update(shards.shard_names)
        suffix = _weights_suffix(index)
        claimed.update(n for n in listed if n.endswith(suffix) and pattern.fullmatch(n))
        yield Root(folder, index, True, shards)
    for name in listed:
        if name.endswith(WEIGHTS_SUFFIX) and name not in claimed and folder.is_file(name):
            yield Root(folder, name, False)
    if not folder.pickles:
        return
    for suffix in PICKLE_SUFFIXES:
        for name in listed:
            if (
                name.endswith(suffix)
                and name not in claimed
                and _picked_in_folder(name)
                and folder.is_file(name)
            ):
                yield Root(folder, name, False)


def _local_root(path: Path, is_index: bool) -> Root:
    return Root(LocalFolder(path.parent), path.name, is_index)


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
    folder = LocalFolder(weights.parent)
    for index in _indexes_in(folder):
        listed = read_index(folder.file(index)).shard_names
        if weights.name in listed or _shard_pattern(index).fullmatch(weights.name):
            return weights.parent / index
    return None


def _roots_for_path(path: Path) -> list[Root]:
    """The checkpoints one local command-line PATH stands for (none for a folder without weights,
    or a config.json without weights beside it). Raises UsageError if the PATH does not exist."""
    depend(path)  # the run cache (sdlint/runcache.py) fingerprints what a run looked at
    if path.is_dir():
        found = [r for folder in LocalFolder(path).walk() for r in roots_in_folder(folder)]
        if not found and path.name.endswith(WEIGHTS_SUFFIX):
            return [_local_root(path, False)]  # a folder where weights should be: SD001 says so
        return found
    if not path.exists() and not path.is_symlink():
        raise UsageError(f"{display(path)}: no such file or directory")
    name = path.name
    if is_index_name(name):
        return [_local_root(path, True)]
    if name.endswith(WEIGHTS_SUFFIX) or _is_pickle_name(name):
        owner = _owning_index(path)
        return [_local_root(owner, True) if owner else _local_root(path, False)]
    if name == CONFIG_NAME:
        # A changed config.json is checked through the weights beside it.
        return list(roots_in_folder(LocalFolder(path.parent)))
    if name.endswith(".json"):
        index = read_index(LocalFolder(path.parent).file(name))
        if index.problem is None:
            return [Root(LocalFolder(path.parent), name, True, index)]
    # Any other file is read as safetensors: its header decides, not its name.
    return [_local_root(path, False)]


def find_checkpoints(
    paths: Sequence[PathOrUrl], client: HttpClient | None = None
) -> list[Checkpoint]:
    """Resolve PATHs to checkpoints, each once and read once, in command-line order."""
    return discover(paths, client)[0]


def discover(
    paths: Sequence[PathOrUrl],
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
    gone = frozenset(real(p) for p in deleted)
    found: dict[str, tuple[Root, bool]] = {}  # by the root's key; True: remote
    empty: list[Path] = []
    for path in paths:
        if isinstance(path, str):
            # Imported only for a remote PATH: local runs do not load http.client and ssl.
            from sdlint.sources.http import HttpClient
            from sdlint.sources.remote import remote_roots

            client = client or HttpClient()
            for root in remote_roots(path, client):
                found.setdefault(root.source.key, (root, True))
            continue
        roots = _roots_for_path(path)
        if not roots:
            empty.append(path)
        for root in roots:
            found.setdefault(root.source.key, (root, False))
    local = [root for root, remote in found.values() if not remote]
    remote = [root for root, is_remote in found.values() if is_remote]
    # Remote reads run threads, an editor's server is one: no processes are forked beside them.
    many = len(local) >= parallel.HEADERS_FROM and client is None and not unsaved
    workers = jobs if many else 1
    if workers > 1:
        untrusted()  # the files the workers look at are not recorded in this process
    parts = [(part, gone, unsaved) for part in parallel.chunks(local, workers)]
    loaded = iter(parallel.flatten(parallel.spread(_load_local, parts, workers)))
    if remote:
        assert client is not None
        from sdlint.sources.remote import thread_mapper

        fetched = iter(load_roots(remote, mapper=thread_mapper(client)))
    checkpoints = [next(fetched) if is_remote else next(loaded) for _, is_remote in found.values()]
    return checkpoints, empty


def _load_local(part: tuple[Sequence[Root], frozenset[str], Unsaved | None]) -> list[Checkpoint]:
    """`load_roots` of local roots; `part`: the roots, the real paths of the files the commit
    deletes, and an editor's unsaved config texts (one argument: it is sent to a process)."""
    roots, gone, unsaved = part
    return load_roots(roots, gone, unsaved)


def _serial(function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    return [function(item) for item in items]


# ---------------------------------------------------------------------------------------------
# Loading roots: plan every checkpoint, read every weights file, put each checkpoint together.


@record(frozen=False)
class _Plan:
    root: Root
    index: ShardIndex | None
    shards: list[tuple[str, Source]] = field(default_factory=list)  # to read, in index order
    missing: set[str] = field(default_factory=set)
    refused: list[tuple[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unreferenced: tuple[FileRef, ...] = ()
    config: ConfigFile | None = None
    adapter_config: ConfigFile | None = None
    library: str | None = None


@record
class _Read:
    source: Source
    pickle: bool
    shard: bool  # named by an index, not by the user: its bytes never reach a message


class _Missing:
    """A file that was not there when read (in a folder that cannot be listed)."""

    def __init__(self, error: ReadError) -> None:
        self.error = error


def load_roots(
    roots: Sequence[Root],
    gone: frozenset[str] = frozenset(),
    unsaved: Unsaved | None = None,
    *,
    mapper: Mapper[_Read, FileResult | _Missing] = _serial,
) -> list[Checkpoint]:
    """Each root's checkpoint, read (index, configs, headers). `gone`: real paths of files the
    commit being checked deletes, missing whether or not they are still on disk (`git rm
    --cached` leaves them there). `unsaved`: an editor's config texts (`read_config`). `mapper`
    reads the weights files (all of the roots' at once). Raises UsageError for a file the user
    named, or a folder's listing gave, that is not there when read."""
    configs: dict[str, ConfigFile | None] = {}
    beside: dict[Any, Any] = {}  # model_index.json, modules.json: read once
    plans = [_plan(root, gone, unsaved, configs, beside) for root in roots]
    reads = [_root_read(p.root) if p.index is None else None for p in plans]
    todo: list[_Read] = []
    for plan, read in zip(plans, reads, strict=True):
        if read is not None:
            todo.append(read)
        todo.extend(
            _Read(source, _is_pickle_index(plan.root.name), True) for _, source in plan.shards
        )
    results = iter(mapper(_read_file, todo))
    return [_assemble(plan, results) for plan in plans]


def _root_read(root: Root) -> _Read:
    pickle = _is_pickle_name(root.name) and root.folder.pickles
    return _Read(root.source, pickle, False)


def _plan(
    root: Root,
    gone: frozenset[str],
    unsaved: Unsaved | None,
    configs: dict[str, ConfigFile | None],
    beside: dict[Any, Any],
) -> _Plan:
    """What a root's checkpoint is made of, without reading a weights file. A shard name that
    the folder refuses (see `Folder.named`: outside the folder tree, not a regular file) is never
    opened."""
    folder = root.folder
    index = (root.index or read_index(root.source)) if root.is_index else None
    plan = _Plan(root, index)
    if index is not None:
        for name in index.shard_names:
            shard = folder.named(name)
            if isinstance(shard, str):
                plan.refused.append((name, shard))
            elif gone and shard.key in gone:
                plan.removed.append(name)
            elif (kind := folder.kind(name)) == "missing":
                plan.missing.add(name)
            elif kind is not None:
                plan.refused.append((name, kind))
            else:
                plan.shards.append((name, shard))
        listed = {shard.key for _, shard in plan.shards}
        pattern = _shard_pattern(root.name)
        plan.unreferenced = tuple(
            source.ref
            for name in folder.names(_weights_suffix(root.name)) or ()
            if pattern.fullmatch(name)
            and (source := folder.file(name)).key not in listed
            and source.key not in gone
        )
    plan.config = _config_beside(folder, CONFIG_NAME, unsaved, configs)
    if is_adapter_name(root.name):
        plan.adapter_config = _config_beside(folder, ADAPTER_CONFIG_NAME, unsaved, configs)
    plan.library = foreign_folder(folder, beside)
    return plan


def _config_beside(
    folder: Folder,
    name: str,
    unsaved: Unsaved | None,
    configs: dict[str, ConfigFile | None],
) -> ConfigFile | None:
    """`name` in `folder` read once per run of `load_roots`, when the folder has it as a regular
    file (after symlinks); None when it has not, or cannot say (a URL's folder)."""
    source = folder.file(name)
    key = source.ref.display  # a str: a FileRef hashes its Path, slowly
    if key not in configs:
        configs[key] = read_config(source, unsaved) if folder.is_file(name) else None
    return configs[key]


def _shadowed_by(folder: Folder, name: str, library: str | None) -> FileRef | None:
    """The file transformers (or peft) loads from `folder` instead of `name`, if any. `library`:
    the library other than transformers the folder belongs to, whose own loading sdlint does not
    model (its other files are never shadowed by a name transformers loads)."""
    preferred: tuple[str, ...] = _PREFERRED_ADAPTER.get(name, ())
    if not preferred and (found := plain_name(name, _PREFERRED)) is not None:
        plain, variant = found
        preferred = tuple(add_variant(n, variant) for n in _PREFERRED[plain])
    for candidate in preferred:
        if folder.is_file(candidate):
            return folder.file(candidate).ref
    if library is not None or loaded_by_name(name):
        return None
    order = {n: key for n in folder.names("") or () if (key := _load_order(n)) is not None}
    for candidate in sorted(order, key=order.__getitem__):
        if folder.is_file(candidate):
            return folder.file(candidate).ref
    return None


def loaded_by_name(name: str) -> bool:
    """transformers (or peft) loads a checkpoint of this name from a folder."""
    return _load_order(name) is not None


def _load_order(name: str) -> tuple[int, int, str] | None:
    """Where `name` comes among the names transformers and peft load a checkpoint by (plain names
    first, in from_pretrained's order, then variants, then an adapter's); None when neither loads
    a file of that name."""
    if name in _LOADED_ADAPTER:
        return 2, _LOADED_ADAPTER.index(name), name
    found = plain_name(name, _LOADED)
    if found is None:
        return None
    plain, variant = found
    return (0 if variant is None else 1), _LOADED.index(plain), name


# How a torch.save file starts: a zip archive (torch >= 1.6), a binary pickle (the legacy layout,
# protocol 2), or a Git LFS pointer standing in for one.
_TORCH_SAVE_STARTS = (b"PK\x03\x04", b"\x80", b"vers")


def _read_file(read: _Read) -> FileResult | _Missing:
    """One weights file, read by its format. A file that turns out not to be there when read (a
    remote one) is `_Missing`: the caller decides what that means."""
    try:
        source = read.source.probe()
    except ReadError as e:
        if e.missing:
            return _Missing(e)
        return Unreadable(read.source.ref, e.reason)
    if not read.pickle:
        return read_header(source, quote=not read.shard)
    if read.shard:
        return _read_pickle_shard(source)
    return read_pickle(source)


def _read_pickle_shard(shard: Source) -> PickleResult:
    """A shard an index names, read as torch.save only when it starts like one. The user did not
    name this file: read as a (protocol 0) pickle, any text file would have its lines quoted back
    as global names, so its bytes never reach a message."""
    try:
        with shard.open() as f:
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
    description = PickleCheckpoint(shard.ref, None, 0, problems=(problem,))
    return UnreadablePickle(shard.ref, reason, PICKLE, description)


def _present(result: FileResult | _Missing, source: Source) -> FileResult:
    """A file the user named, or a folder's listing gave: not there when read is a usage error."""
    if isinstance(result, _Missing):
        raise UsageError(f"{source.ref.display}: no such file ({result.error.missing})")
    return result


def _assemble(plan: _Plan, results: Iterator[FileResult | _Missing]) -> Checkpoint:
    root = plan.root
    folder = root.folder
    source = root.source
    # A folder of another library (by its place, or by its config.json) keeps its own handling.
    config = plan.config
    foreign = plan.library or (foreign_config(config.data) if config is not None else None)
    shadowed_by = _shadowed_by(folder, root.name, foreign)
    if plan.index is None:
        result = _present(next(results), source)
        pickle = _is_pickle_name(root.name) and folder.pickles
        return Checkpoint(
            source.ref,
            (result,),
            format=PICKLE if pickle else SAFETENSORS,
            shadowed_by=shadowed_by,
            config=plan.config,
            adapter_config=plan.adapter_config,
            library=plan.library,
        )
    # A folder that cannot be listed says whether a shard is there only when it is read.
    unlisted = folder.names(WEIGHTS_SUFFIX) is None
    files: list[FileResult] = []
    for name, shard in plan.shards:
        read = next(results)
        if isinstance(read, _Missing) and unlisted:
            plan.missing.add(name)
        else:
            files.append(_present(read, shard))
    return Checkpoint(
        source.ref,
        tuple(files),
        plan.index,
        plan.unreferenced,
        tuple(n for n in plan.index.shard_names if n in plan.missing),
        format=PICKLE if _is_pickle_index(root.name) else SAFETENSORS,
        refused_shards=tuple(plan.refused),
        shadowed_by=shadowed_by,
        deleted_shards=tuple(plan.removed),
        config=plan.config,
        adapter_config=plan.adapter_config,
        library=plan.library,
    )
