"""Remote checkpoints: `https://HOST/path/model.safetensors`, an index URL, or `hf://ORG/NAME`.

A remote file keeps the `Path` identity every stage uses (`Header.path`, `Checkpoint.path`): the
URL as a `Path` (`https:/host/a/model.safetensors`; a Path folds the double slash), which the
display restores (`sources.location`). Its bytes come from a `RemoteFile` source: range requests
for headers, one bounded GET for an index or a config.json. No local path: fixes are never offered.

Finding the checkpoints of a hub repository uses its listing (one request, with file sizes), so a
shard the index lists but the repository lacks costs nothing; every header is read concurrently,
up to the client's `jobs`, and the checkpoints come out in a fixed order (by folder, then name).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urljoin

from sdlint.checkpoint import ADAPTER_CONFIG_NAME, Checkpoint, FileResult
from sdlint.config_fields import CONFIG_NAME, ConfigFile, parse_config_bytes
from sdlint.errors import UsageError
from sdlint.formats import Unreadable
from sdlint.formats.index import ShardIndex, parse_index
from sdlint.formats.safetensors import INDEX_SUFFIX, WEIGHTS_SUFFIX, read_header
from sdlint.sources import MAX_TEXT_FILE_SIZE, ReadError, location
from sdlint.sources.http import HttpClient, HttpError, RemoteReader
from sdlint.sources.hub import HubRepo, is_hub, parse_hub_path, resolve_repo

_MAX_INDEX_SIZE = 100_000_000


def as_path(text: str) -> Path:
    """The Path identity of a remote location (`location(as_path(url)) == url`)."""
    return Path(text)


@dataclass(frozen=True)
class RemoteFile:
    """A `Source` behind a URL. `size` is the size a listing gave (the hub's), used when the
    server's answer does not say it."""

    path: Path
    url: str
    client: HttpClient
    size: int | None = None
    opened: RemoteReader | None = None  # the first read, when made already (no second request)

    @property
    def display(self) -> str:
        return location(self.path)

    @property
    def local_path(self) -> Path | None:
        return None

    def open(self) -> AbstractContextManager[RemoteReader]:
        return self._open()

    @contextmanager
    def _open(self) -> Iterator[RemoteReader]:
        reader = self.opened or RemoteReader(self.client, self.url)
        if reader.size is None:
            reader.size = self.size
        yield reader

    def read_bounded(self, limit: int = MAX_TEXT_FILE_SIZE) -> bytes:
        return self.client.read_whole(self.url, limit)


def is_remote(text: str) -> bool:
    return text.startswith(("http://", "https://", "hf://"))


def remote_config(text: str, client: HttpClient) -> ConfigFile:
    """`--model-config URL` or `hf://ORG/NAME[@REV]/config.json` (a repository alone means its
    config.json), read once. Raises UsageError when the file cannot be read."""
    if is_hub(text):
        spec = parse_hub_path(text)
        repo = resolve_repo(spec)
        name = spec.path or CONFIG_NAME
        if name not in repo.files:
            raise UsageError(f"{repo.display(name)}: no such file in the repository")
        source = _hub_file(repo, name, client)
    else:
        source = RemoteFile(as_path(text), text, client)
    try:
        raw = source.read_bounded()
    except ReadError as e:
        raise UsageError(f"{source.display}: {e.reason}") from e
    return parse_config_bytes(source.path, raw)


def find_remote_checkpoints(text: str, client: HttpClient) -> list[Checkpoint]:
    """The checkpoints a remote PATH stands for. Raises UsageError when there are none."""
    if is_hub(text):
        return _hub_checkpoints(text, client)
    name = text.rsplit("/", 1)[-1]
    if name.endswith(INDEX_SUFFIX):
        index_source = RemoteFile(as_path(text), text, client)
        index = _read_index(index_source)
        refused = [(n, why) for n in index.shard_names if (why := shard_name_problem(n))]
        names = [n for n in index.shard_names if not shard_name_problem(n)]
        shards = [RemoteFile(as_path(urljoin(text, n)), urljoin(text, n), client) for n in names]
        results = _read_headers(shards, client)
        missing = tuple(n for n, r in zip(names, results, strict=True) if r is None)
        files = tuple(r for r in results if r is not None)
        checkpoint = Checkpoint(index_source.path, files, index, (), missing)
        return [replace(checkpoint, refused_shards=tuple(refused))]
    source = RemoteFile(as_path(text), text, client)
    (result,) = _read_headers([source], client, missing_is_error=True)
    assert result is not None
    return [Checkpoint(source.path, (result,))]


def shard_name_problem(name: str) -> str | None:
    """Why an index's shard name is not read relative to the index URL, or None. As for local
    indexes (`sources.local.confined`): a shard stays beside its index, never on another host."""
    if not name:
        return "is an empty name"
    if "\0" in name:
        return "contains a NUL byte"
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", name):
        return "is an absolute path or URL"
    if ".." in re.split(r"[/\\]", name):
        return "leads out of the folder (`..`)"
    return None


def _read_index(source: RemoteFile) -> ShardIndex:
    try:
        raw = source.read_bounded(_MAX_INDEX_SIZE)
    except HttpError as e:
        if e.status == 404:
            raise UsageError(f"{source.display}: no such file (HTTP 404)") from e
        return ShardIndex(source.path, problem=f"cannot read the index: {e.reason}")
    return parse_index(source.path, raw)


def _read_headers(
    sources: Sequence[RemoteFile], client: HttpClient, *, missing_is_error: bool = False
) -> list[FileResult | None]:
    """Each file's header, read concurrently (the client limits the requests in flight), in the
    order given. None for a file the server does not have (HTTP 404), unless that is an error."""

    def one(source: RemoteFile) -> FileResult | None:
        try:
            reader = RemoteReader(client, source.url)  # the first read: a 404 shows here
        except HttpError as e:
            if e.status == 404 and not missing_is_error:
                return None
            if e.status == 404:
                raise UsageError(f"{source.display}: no such file (HTTP 404)") from e
            return Unreadable(source.path, e.reason)
        return read_header(replace(source, opened=reader))

    if len(sources) <= 1:
        return [one(s) for s in sources]
    with ThreadPoolExecutor(max_workers=max(1, client.jobs)) as pool:
        return list(pool.map(one, sources))


# -- hub repositories ----------------------------------------------------------------------------


def _hub_file(repo: HubRepo, name: str, client: HttpClient) -> RemoteFile:
    return RemoteFile(as_path(repo.display(name)), repo.url(name), client, repo.files.get(name))


def _shard_pattern(index_name: str) -> re.Pattern[str]:
    stem = index_name[: -len(INDEX_SUFFIX)]
    return re.compile(rf"{re.escape(stem)}-\d+-of-\d+{re.escape(WEIGHTS_SUFFIX)}")


def _join(folder: str, name: str) -> str:
    return posixpath.join(folder, name) if folder else name


def _hub_checkpoints(text: str, client: HttpClient) -> list[Checkpoint]:
    spec = parse_hub_path(text)
    repo = resolve_repo(spec)
    prefix = spec.path.rstrip("/")
    names = sorted(repo.files)
    if prefix:
        if prefix in repo.files:  # one file of the repository
            names = [prefix]
        else:
            names = [n for n in names if n.startswith(prefix + "/")]
    folders: dict[str, list[str]] = {}
    for name in names:
        folders.setdefault(posixpath.dirname(name), []).append(posixpath.basename(name))

    # First the plan (which files make which checkpoint), then every read at once.
    plans: list[tuple[str, str | None, list[str], list[str], list[str]]] = []
    indexes: dict[str, ShardIndex] = {}
    for folder in sorted(folders):
        here = folders[folder]
        claimed: set[str] = set()
        for index_file in (n for n in here if n.endswith(INDEX_SUFFIX)):
            index = _read_index(_hub_file(repo, _join(folder, index_file), client))
            indexes[_join(folder, index_file)] = index
            pattern = _shard_pattern(index_file)
            listed = index.shard_names
            claimed.update(listed)
            claimed.update(n for n in here if pattern.fullmatch(n))
            present = [s for s in listed if s in here]
            missing = [s for s in listed if s not in here]
            unreferenced = [n for n in here if pattern.fullmatch(n) and n not in listed]
            plans.append((folder, index_file, present, missing, unreferenced))
        for name in here:
            if name.endswith(WEIGHTS_SUFFIX) and name not in claimed:
                plans.append((folder, None, [name], [], []))
    if not plans:
        raise UsageError(f"no safetensors checkpoint found in {repo.display(prefix)}")

    sources = [
        _hub_file(repo, _join(f, n), client) for f, _, present, _, _ in plans for n in present
    ]
    results = iter(_read_headers(sources, client, missing_is_error=True))
    configs: dict[str, ConfigFile | None] = {}
    checkpoints = []
    for folder, index_name, present, missing, unreferenced in plans:
        files = tuple(r for r in (next(results) for _ in present) if r is not None)
        if folder not in configs:
            configs[folder] = _hub_config(repo, _join(folder, CONFIG_NAME), client)
        if index_name is not None:
            checkpoint = Checkpoint(
                as_path(repo.display(_join(folder, index_name))),
                files,
                indexes[_join(folder, index_name)],
                tuple(as_path(repo.display(_join(folder, n))) for n in unreferenced),
                tuple(missing),
                config=configs[folder],
            )
        else:
            checkpoint = Checkpoint(
                as_path(repo.display(_join(folder, present[0]))), files, config=configs[folder]
            )
        if checkpoint.is_adapter:
            adapter = _hub_config(repo, _join(folder, ADAPTER_CONFIG_NAME), client)
            checkpoint = Checkpoint(
                checkpoint.path,
                checkpoint.files,
                checkpoint.index,
                checkpoint.unreferenced_shards,
                checkpoint.missing_shards,
                config=checkpoint.config,
                adapter_config=adapter,
            )
        checkpoints.append(checkpoint)
    return checkpoints


def _hub_config(repo: HubRepo, name: str, client: HttpClient) -> ConfigFile | None:
    if name not in repo.files:
        return None
    source = _hub_file(repo, name, client)
    try:
        raw = source.read_bounded()
    except ReadError as e:
        from sdlint.config_fields import UNREADABLE

        return ConfigFile(source.path, problem=UNREADABLE, reason=e.reason)
    return parse_config_bytes(source.path, raw)
