"""Files on the local disk, through one guarded open.

`guarded_open` is the only way sdlint opens a file it reads: it looks before opening (a FIFO would
block the open forever, /dev/zero never ends, a folder is not a file), opens without blocking and
without acquiring a terminal, then checks again on the open descriptor (the name may have changed
in between). Every OS error becomes a `ReadError` with one line.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cached_property
from pathlib import Path

from sdlint import memo, runcache
from sdlint.record import record
from sdlint.runcache import depend
from sdlint.sources import MAX_TEXT_FILE_SIZE, FileRef, PathOrUrl, ReadError

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def display(path: PathOrUrl) -> str:
    """A path as the user typed it when relative, so editors and CI annotations can resolve it; a
    URL as given."""
    return path if isinstance(path, str) else path.as_posix()


def os_reason(e: OSError | ValueError) -> str:
    """One line for an OS error, without the file name (the caller names the file)."""
    if isinstance(e, ValueError):  # a NUL byte in the name
        return "the name contains a NUL byte"
    if e.errno == errno.ELOOP:
        return "too many levels of symbolic links (a symlink loop?)"
    return e.strerror or str(e)


def file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


class _FdReader:
    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        chunks: list[bytes] = []
        while length > 0:
            try:
                chunk = os.pread(self._fd, min(length, 1 << 24), offset)
            except OSError as e:
                raise ReadError(f"cannot read the file: {os_reason(e)}") from e
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(chunks)


@contextmanager
def guarded_open(path: Path) -> Iterator[_FdReader]:
    """Open a regular file for reading. Raises ReadError ("not a regular file", "cannot read the
    file: ...") without ever blocking on a special file."""
    depend(path)  # the run cache fingerprints what a run read (sdlint/runcache.py)
    try:
        before = _stat(path)
    except (OSError, ValueError) as e:
        raise ReadError(f"cannot read the file: {os_reason(e)}") from e
    if not stat.S_ISREG(before.st_mode):
        raise ReadError("not a regular file", special=True)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (OSError, ValueError) as e:
        raise ReadError(f"cannot read the file: {os_reason(e)}") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced between the look and the open
            raise ReadError("not a regular file", special=True)
        yield _FdReader(fd, st.st_size)
    finally:
        os.close(fd)


def read_bounded(path: Path, limit: int = MAX_TEXT_FILE_SIZE) -> bytes:
    """A whole regular file of at most `limit` bytes. Raises ReadError."""
    with guarded_open(path) as f:
        if f.size > limit:
            raise ReadError(
                f"the file is {f.size:,} bytes, more than the {limit:,}-byte limit", too_large=True
            )
        data = f.read(0, limit + 1)
    if len(data) > limit:  # it grew after the open
        raise ReadError(f"the file is more than the {limit:,}-byte limit", too_large=True)
    return data


@record
class LocalFile:
    """A file on the local disk (the `Source` of everything sdlint reads today)."""

    path: Path

    @cached_property
    def ref(self) -> FileRef:
        return FileRef.of(self.path)

    @property
    def key(self) -> str:
        return real(self.path)

    def probe(self) -> LocalFile:
        return self

    def open(self) -> AbstractContextManager[_FdReader]:
        return guarded_open(self.path)

    def read_bounded(self, limit: int = MAX_TEXT_FILE_SIZE) -> bytes:
        return read_bounded(self.path, limit)


def _stat(path: str | os.PathLike[str]) -> os.stat_result:
    """`os.stat(path)`, looked at once per run (sdlint/memo.py): discovery, the configuration
    lookup and the guarded open ask about the same files. Raises OSError or ValueError."""
    known = memo.table("stat")
    if known is None:
        return os.stat(path)  # noqa: PTH116 (a str or a Path)
    key = os.fspath(path)
    found: os.stat_result | OSError | ValueError | None = known.get(key)
    if found is None:
        try:
            found = os.stat(key)  # noqa: PTH116
        except (OSError, ValueError) as e:
            found = e
        known[key] = found
    if isinstance(found, os.stat_result):
        return found
    raise found.with_traceback(None)


def is_regular_file(path: str | os.PathLike[str]) -> bool:
    """`path` names a regular file (after symlinks); never raises."""
    depend(path)
    try:
        return stat.S_ISREG(_stat(path).st_mode)
    except (OSError, ValueError):
        return False


def is_folder(path: str | os.PathLike[str]) -> bool:
    """`os.path.isdir(path)`, through the run's stat (`_stat`); never raises."""
    try:
        return stat.S_ISDIR(_stat(path).st_mode)
    except (OSError, ValueError):
        return False


def listed_names(folder: str) -> frozenset[str] | None:
    """The names in `folder` as the run listed them (sdlint/memo.py), when it already has;
    None when it has not (nothing is listed here)."""
    known = memo.table("listing")
    found: list[tuple[str, bool]] | None = None if known is None else known.get(folder)
    if found is None:
        return None
    names = memo.table("listed-names")
    assert names is not None
    found_names: frozenset[str] | None = names.get(folder)
    if found_names is None:
        found_names = names[folder] = frozenset(name for name, _ in found)
    return found_names


def regular_file_kind(path: Path) -> str | None:
    """None when `path` names a regular file (after symlinks); "missing" when nothing is there;
    else what it is instead, in a few words ("is a folder", "is a FIFO", "is a symlink loop")."""
    depend(path)
    try:
        mode = _stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError) as e:
        return f"cannot be read ({os_reason(e)})"
    if stat.S_ISREG(mode):
        return None
    kind = file_kind(mode)
    return f"is {kind}, not a regular file" if kind.startswith("a ") else f"is {kind}"


def real(path: str | os.PathLike[str]) -> str:
    """The path after symlinks; never raises (a symlink loop resolves as far as it goes). Within
    a run (sdlint/memo.py), each path is resolved once, and a path whose last part is not a
    symlink costs one `lstat` beside its folder's (already resolved) real path: the 30 shards of
    an index, the 200 checkpoints of a tree share the resolution of their folders."""
    known = memo.table("realpath")
    if known is None:
        return os.path.realpath(path)
    key = os.fspath(path)
    found: str | None = known.get(key)
    if found is None:
        found = known[key] = _real_in_run(key)
    return found


def _real_in_run(path: str) -> str:
    """`os.path.realpath(path)`: its folder's real path (looked up once per run) and its last
    part, when that part is a plain name and not a symlink; else realpath itself."""
    head, tail = os.path.split(path)
    if not head or not tail or tail in (".", ".."):
        return os.path.realpath(path)
    try:
        mode = os.lstat(path).st_mode
    except (OSError, ValueError):
        return os.path.realpath(path)  # missing, unreadable: realpath says what it says
    if stat.S_ISLNK(mode):
        return os.path.realpath(path)
    return os.path.join(real(head), tail)  # noqa: PTH118 (strings: this runs for every file)


# Folders a recursive search never enters: VCS data, environments and caches hold no user weights.
_SKIPPED_DIRS = {"node_modules", "__pycache__", "site-packages"}


def _listing(folder: Path) -> list[tuple[str, bool]]:
    """The folder's entries by name, each with whether it is a folder and not a symlink to one (a
    recursive search does not follow links); listed once per run (sdlint/memo.py). Raises
    OSError (or ValueError) when the folder cannot be listed."""
    known = memo.table("listing")
    key = os.fspath(folder)  # a str hashes faster than a Path, a new Path each time
    if known is not None:
        found: list[tuple[str, bool]] | None = known.get(key)
        if found is not None:
            return found
    with os.scandir(folder) as entries:
        listed = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in entries)
    if known is not None:
        known[key] = listed
    return listed


@record
class LocalFolder:
    """A folder on the local disk (a `Folder`)."""

    path: Path
    pickles = True

    def walk(self) -> Iterator[LocalFolder]:
        yield self
        depend(self.path)  # the run cache: an entry added, removed or replaced changes the folder
        try:
            listed = _listing(self.path)
        except OSError:
            return
        recording = runcache.recording() is not None
        children = []
        for name, is_folder in listed:
            if recording:  # what each entry is, as the run saw it
                depend(self.path / name)
            if is_folder and not name.startswith(".") and name not in _SKIPPED_DIRS:
                children.append(self.path / name)
        for child in children:
            yield from LocalFolder(child).walk()

    def names(self, suffix: str) -> list[str]:
        """[] when the folder cannot be listed."""
        depend(self.path)
        try:
            listed = _listing(self.path)
        except (OSError, ValueError):
            return []
        return [name for name, _ in listed if name.endswith(suffix)]

    def is_file(self, name: str) -> bool:
        return is_regular_file(self.path / name)

    def file(self, name: str) -> LocalFile:
        return LocalFile(self.path / name)

    def named(self, name: str) -> LocalFile | str:
        path = confined(self.path, name)
        return path if isinstance(path, str) else LocalFile(path)

    def kind(self, name: str) -> str | None:
        return regular_file_kind(self.path / name)

    def parent(self) -> tuple[LocalFolder, str] | None:
        absolute = self.path.absolute()  # `.` and `m` have a parent too
        if absolute.parent == absolute:
            return None
        return LocalFolder(absolute.parent), absolute.name


# ---------------------------------------------------------------------------------------------
# Confinement: the files an index names stay inside the checkpoint's folder tree.

_HUB_REPO = re.compile(r"(models|datasets|spaces)--.+")


def boundary(folder: Path) -> Path:
    """The folder tree files named by a checkpoint in `folder` must resolve into: the folder
    itself, or, inside a Hugging Face cache (`models--org--name/snapshots/<rev>/`, whose files are
    symlinks to `../../blobs/<hash>`), the repository's cache folder."""
    absolute = folder.absolute()
    for ancestor in (absolute, *absolute.parents):
        if ancestor.name == "snapshots" and _HUB_REPO.fullmatch(ancestor.parent.name):
            return Path(os.path.realpath(ancestor.parent))
    return Path(os.path.realpath(absolute))


def confined(folder: Path, name: str) -> Path | str:
    """`folder / name` when the name stays inside `boundary(folder)` after symlinks; else why not,
    in a few words ("is an absolute path"). Nothing is opened; only links are followed."""
    if not name:
        return "is an empty name"
    if "\0" in name:
        return "contains a NUL byte"
    if Path(name).is_absolute() or name.startswith(("/", "\\")):
        return "is an absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "leads out of the folder (`..`)"
    candidate = folder / name
    depend(candidate)
    known = memo.table("boundary")  # an index's 30 shards share their folder's
    if known is None:
        root = os.fspath(boundary(folder))
    else:
        key = os.fspath(folder)
        root = known.get(key) or known.setdefault(key, os.fspath(boundary(folder)))
    resolved = real(candidate)  # once per run, beside its folder's (see `real`)
    inside = root if root.endswith(os.sep) else root + os.sep  # "/" ends with one
    if resolved != root and not resolved.startswith(inside):
        return "is a symlink leading out of the folder"
    return candidate
