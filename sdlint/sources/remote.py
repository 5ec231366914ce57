"""Remote checkpoints: `https://HOST/path/model.safetensors`, an index URL, or `hf://ORG/NAME`.

What is remote lives here: taking a PATH apart, the folders it names (`HubFolder`, a hub
repository's folder listed by the hub's API, one request with file sizes; `UrlFolder`, the folder
of a URL, which cannot be listed), and `RemoteFile`, the source of one file (range requests for
headers, one bounded GET for an index or a config.json; no local path, so fixes are never
offered). Which checkpoints a folder holds and how they are read is sdlint/discover.py's, the same
for every folder: a shard the hub's listing lacks costs nothing, every header is read concurrently
(up to the client's `jobs`), and the checkpoints come out in a fixed order (by folder, then name).

A remote file is named by a `FileRef` without a local path: its URL (`hf://ORG/NAME/...` for a hub
file) is all any stage sees of it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urljoin

from sdlint.config_fields import CONFIG_NAME, ConfigFile, parse_config_bytes
from sdlint.errors import UsageError
from sdlint.formats.names import is_safetensors_index_name
from sdlint.formats.safetensors import WEIGHTS_SUFFIX
from sdlint.record import record, replace
from sdlint.sources import MAX_TEXT_FILE_SIZE, FileRef, ReadError
from sdlint.sources.http import HttpClient, RemoteReader
from sdlint.sources.hub import HubRepo, is_hub, parse_hub_path, resolve_repo

if TYPE_CHECKING:
    from sdlint.discover import Root

_T = TypeVar("_T")
_R = TypeVar("_R")


@record
class RemoteFile:
    """A `Source` behind a URL. `size` is the size a listing gave (the hub's), used when the
    server's answer does not say it."""

    ref: FileRef  # the URL, or the hub's `hf://` name
    url: str
    client: HttpClient
    size: int | None = None
    opened: RemoteReader | None = None  # the first read, when made already (no second request)

    @property
    def key(self) -> str:
        return self.url

    def probe(self) -> RemoteFile:
        """The first read made (a file that is not there shows here: HTTP 404)."""
        if self.opened is not None:
            return self
        return replace(self, opened=RemoteReader(self.client, self.url))

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


@record
class UrlFolder:
    """The folder of a URL (a `Folder`): files are named relative to it, but a plain HTTP server
    cannot list it, so a file's presence shows only when it is read."""

    base: str  # ends with "/"
    client: HttpClient
    pickles = False

    def walk(self) -> Iterator[UrlFolder]:
        yield self

    def names(self, suffix: str) -> None:
        return None

    def is_file(self, name: str) -> bool:
        return False  # not known without a request: a config.json beside a URL is not read

    def file(self, name: str) -> RemoteFile:
        url = urljoin(self.base, name)
        return RemoteFile(FileRef(url), url, self.client)

    def named(self, name: str) -> RemoteFile | str:
        return shard_name_problem(name) or self.file(name)

    def kind(self, name: str) -> None:
        return None

    def parent(self) -> None:
        return None  # it cannot be listed, so nothing beside it is read


@record
class HubFolder:
    """A folder of a hub repository at one commit (a `Folder`), listed by the repository's
    listing."""

    repo: HubRepo
    path: str  # "" for the repository's top
    client: HttpClient
    pickles = False

    def _join(self, name: str) -> str:
        return posixpath.join(self.path, name) if self.path else name

    def walk(self) -> Iterator[HubFolder]:
        prefix = self.path + "/" if self.path else ""
        below = {posixpath.dirname(n) for n in self.repo.files if n.startswith(prefix)}
        for folder in sorted(below):
            yield HubFolder(self.repo, folder, self.client)

    def names(self, suffix: str) -> list[str]:
        return sorted(
            posixpath.basename(n)
            for n in self.repo.files
            if posixpath.dirname(n) == self.path and n.endswith(suffix)
        )

    def is_file(self, name: str) -> bool:
        return self._join(name) in self.repo.files

    def file(self, name: str) -> RemoteFile:
        path = self._join(name)
        return RemoteFile(
            FileRef(self.repo.display(path)),
            self.repo.url(path),
            self.client,
            self.repo.files.get(path),
        )

    def named(self, name: str) -> RemoteFile | str:
        return shard_name_problem(name) or self.file(name)

    def kind(self, name: str) -> str | None:
        return None if self.is_file(name) else "missing"

    def parent(self) -> tuple[HubFolder, str] | None:
        if not self.path:
            return None
        return HubFolder(self.repo, posixpath.dirname(self.path), self.client), posixpath.basename(
            self.path
        )


def thread_mapper(client: HttpClient) -> Callable[[Callable[[_T], _R], Sequence[_T]], list[_R]]:
    """Map over remote reads concurrently (the client limits the requests in flight), in order."""

    def mapper(function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        if len(items) <= 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(max_workers=max(1, client.jobs)) as pool:
            return list(pool.map(function, items))

    return mapper


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
        source = RemoteFile(FileRef(text), text, client)
    try:
        raw = source.read_bounded()
    except ReadError as e:
        raise UsageError(f"{source.ref}: {e.reason}") from e
    return parse_config_bytes(source.ref, raw)


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


def remote_roots(text: str, client: HttpClient) -> list[Root]:
    """The checkpoints a remote PATH stands for, as roots for sdlint/discover.py to read. Raises
    UsageError when there are none."""
    from sdlint.discover import Root, roots_in_folder

    if is_hub(text):
        spec = parse_hub_path(text)
        repo = resolve_repo(spec)
        prefix = spec.path.rstrip("/")
        if prefix in repo.files:  # one file of the repository
            folder = HubFolder(repo, posixpath.dirname(prefix), client)
            name = posixpath.basename(prefix)
            is_index = is_safetensors_index_name(name)  # torch.save is not read remotely
            weights = is_index or name.endswith(WEIGHTS_SUFFIX)
            roots = [Root(folder, name, is_index)] if weights else []
        else:
            top = HubFolder(repo, prefix, client)
            roots = [root for folder in top.walk() for root in roots_in_folder(folder)]
        if not roots:
            raise UsageError(f"no safetensors checkpoint found in {repo.display(prefix)}")
        return roots
    base = urljoin(text, ".")
    name = text[len(base) :] if text.startswith(base) else text
    return [Root(UrlFolder(base, client), name, is_safetensors_index_name(name))]


def _hub_file(repo: HubRepo, name: str, client: HttpClient) -> RemoteFile:
    return HubFolder(repo, "", client).file(name)
