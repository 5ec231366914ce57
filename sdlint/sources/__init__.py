"""Where bytes come from: the read stage's only way to a file's contents.

A `Source` is one file. Everything sdlint reads (weights, index files, every config.json,
pyproject.toml/sdlint.toml) goes through one, so the guards live in one place: only regular files
are opened (never a FIFO, a device or a folder), whole-file reads are bounded, and every failure is
one `ReadError` with a one-line reason that the caller turns into a finding or a usage error.

`local.py` reads the local disk; a remote source (HTTP, the Hugging Face Hub) implements the same
protocol. A source names its file by a `FileRef`, whose `local` Path is set only for a file on
the local disk: fixes rewrite files, so they are offered only where it is set.

A `Folder` lists files and names them: what finding a folder's checkpoints needs
(sdlint/discover.py), the same code for every kind of folder. The local disk lists a folder through
the guarded listing, the hub through its repository listing; a plain HTTP server cannot list one,
so there a file's presence shows only when it is read.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from sdlint.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol
else:  # typing is not imported at run time (a check has no use for it): for the
    Protocol = object  # interpreter the protocols below are plain classes

# A JSON or TOML file sdlint reads whole (config.json, pyproject.toml, ...) larger than this is not
# one it will parse: real ones are kilobytes, an index of a 100k-tensor model a few megabytes.
MAX_TEXT_FILE_SIZE = 16_000_000


@record(order=True)
class FileRef:
    """Which file, wherever it is: the name the user sees (a local path as given, in POSIX form,
    or a URL), and the file on the local disk when there is one. A remote file has none: fixes,
    which rewrite files, are never offered for it. Every stage names files by this value; only a
    `local` Path is ever opened or rewritten."""

    display: str
    local: Path | None = None

    @staticmethod
    def of(path: Path) -> FileRef:
        """A file on the local disk."""
        return FileRef(path.as_posix(), path)

    @property
    def name(self) -> str:
        """The file's own name, without its folder."""
        return self.local.name if self.local is not None else posixpath.basename(self.display)

    def __str__(self) -> str:
        return self.display


# What a command-line PATH (or --model-config) names: a local Path, or a URL kept as its text (a
# Path would fold its `//`). Only a `str` is ever read remotely (sdlint/sources/remote.py).
PathOrUrl = Path | str
REMOTE_PREFIXES = ("https://", "http://", "hf://")


def is_url(text: str) -> bool:
    """`https://...`, `http://...` or `hf://...`: read remotely, never a local path."""
    return text.startswith(REMOTE_PREFIXES)


def path_or_url(value: str | os.PathLike[str]) -> PathOrUrl:
    """A PATH as given: a URL stays its text, anything else is a local Path."""
    text = os.fspath(value)
    return text if is_url(text) else Path(text)


class ReadError(Exception):
    """A file cannot be read; `reason` is one line without the file's name ("not a regular file",
    "cannot read the file: Permission denied"). Raised by sources, turned into values by their
    callers in the read stage: it never leaves it."""

    def __init__(
        self,
        reason: str,
        *,
        special: bool = False,
        too_large: bool = False,
        missing: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.special = special  # the name is not a regular file (reason: "not a regular file")
        self.too_large = too_large  # over the caller's size limit
        # the file is not there, seen only when reading it (a remote file), and how it was seen
        # ("HTTP 404"); None: there, or not known
        self.missing = missing

    @property
    def refused(self) -> bool:
        """sdlint would not read this file whatever the permissions: not a file it reads."""
        return self.special or self.too_large


class Reader(Protocol):
    """An open file: its size when opened, and reads at an offset (short at the end). The size is
    None when it cannot be known (a server that sends neither Content-Range nor Content-Length)."""

    @property
    def size(self) -> int | None: ...

    def read(self, offset: int, length: int) -> bytes: ...


class Source(Protocol):
    """One file, wherever its bytes are."""

    @property
    def ref(self) -> FileRef:
        """The file, as every stage names it."""
        ...

    @property
    def key(self) -> str:
        """What makes two names one file: the real path (after symlinks), or the URL."""
        ...

    def probe(self) -> Source:
        """The source with its first read made where that is a request (a remote file), so that a
        file that is not there shows here: ReadError with `missing` set. Raises ReadError."""
        ...

    def open(self) -> AbstractContextManager[Reader]:
        """Open for reading byte ranges. Raises ReadError."""
        ...

    def read_bounded(self, limit: int = MAX_TEXT_FILE_SIZE) -> bytes:
        """The whole file, refused when larger than `limit`. Raises ReadError."""
        ...


class Folder(Protocol):
    """A folder of files, wherever it is: what discovery lists and names files in."""

    @property
    def pickles(self) -> bool:
        """torch.save files are looked for and read here. Only on the local disk: describing one
        takes reads all over the file, where a safetensors header is one range at its start."""
        ...

    def walk(self) -> Iterator[Folder]:
        """This folder, then every folder below it that a search enters, in a fixed order."""
        ...

    def names(self, suffix: str) -> list[str] | None:
        """The names of the entries of this folder ending with `suffix`, sorted; None when the
        folder cannot be listed (a plain HTTP server)."""
        ...

    def is_file(self, name: str) -> bool:
        """`name` is a regular file of this folder (after symlinks); never raises."""
        ...

    def file(self, name: str) -> Source:
        """The file `name` of this folder, as a listing gave it (not checked, not opened)."""
        ...

    def named(self, name: str) -> Source | str:
        """The file a checkpoint's own data names (an index's shard name, relative to the folder):
        its source, or why it is never read ("is an absolute path", "leads out of the folder").
        Nothing is opened."""
        ...

    def kind(self, name: str) -> str | None:
        """None when `name` is a regular file of this folder (after symlinks), or when the folder
        cannot say (it cannot be listed); "missing" when nothing is there; else what is there
        instead ("is a folder, not a regular file"). Never raises."""
        ...

    def parent(self) -> tuple[Folder, str] | None:
        """The folder that holds this one, and this folder's name in it; None at the top (of the
        file system, of a hub repository) or where it cannot be listed (a URL's folder)."""
        ...
