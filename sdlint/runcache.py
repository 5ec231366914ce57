"""The run cache: a `sdlint check` command line run again over unchanged files prints what it
printed the last time, and exits as it did, without reading a header (as ruff's cache spares it
a lint, here for the whole run: the replay needs neither the rules, nor the emitters, nor
argparse, so a warm run costs little more than Python's start).

A run is replayed only when everything it depended on is as it was:
- its key: the command line word for word, the working folder, the environment variables sdlint
  reads, whether stdout is a terminal (colour), the Python interpreter and its `sys.path`,
  where sdlint was imported from, sdlint's version and the installed transformers, torch and peft
  versions;
- the fingerprint (device, inode, mode, size, mtime_ns, ctime_ns; or the error or absence) of every
  file and folder the run looked at: weights, shards and indexes, every config.json it read (the
  target's too), the configuration files and the places it looked for them, the folders it listed,
  and sdlint's own code (`_own_sources`: a regular install's RECORD, else every source file);
  the recorded verdicts `--model-checks=cached` looked for (found
  or not);
- with `--staged-deletions` (the pre-commit hooks), git's answer: which files the commit deletes.
  It depends on git's index and HEAD, so a replay asks git again (one process when nothing is
  deleted, spawned without importing subprocess) and replays only on the same answer.

A run is stored only when it can be trusted: nothing it looked at changed while it ran, and none
of it was modified within `RACY_NS` before the run started (timestamps are coarse: two writes
within one tick leave the same ones, so a file that recent could change unseen, as git's racy
index entries). Runs whose output depends on more than local files are never stored: remote
checkpoints, a model check skipped for what the environment lacks, a verdict cache that could not
be written, fixes, diffs, baselines. `--no-cache` neither reads nor writes it. Only the command
line uses it (`main()` without arguments); the library API and the language server always run the
checks.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sys
import time
import zlib
from collections.abc import Sequence
from contextvars import ContextVar
from pathlib import Path

import sdlint

FORMAT = 1
_ENTRY_DIR = f"runs-v{FORMAT}"
_MAGIC = b"sdlint-run\n"
# Files and folders modified this close before a run are not trusted (the coarsest common
# timestamp granularity is FAT's 2 s; ext4, XFS, btrfs and tmpfs tick in milliseconds).
RACY_NS = 2_000_000_000
# What sdlint reads from the environment besides its arguments (the cache folder and colour).
_ENVIRONMENT = ("SDLINT_CACHE_DIR", "XDG_CACHE_HOME", "HOME", "NO_COLOR")
_DISTRIBUTIONS = ("transformers", "torch", "peft")
# What `runs-v1/` keeps (sdlint/prune.py; looked over at most hourly, by a run that stored one):
# runs replayed or stored within 30 days, at most 1024 of them and 64 MiB (an entry for 200
# checkpoints is ~90 kB; a pre-commit hook's ~10 kB), the least recently used going first.
KEEP_RUNS = (1024, 64 << 20, 30)
_ABSENT = -1
_ERROR = -2

TYPE_CHECKING = False  # the replay does not import typing
if TYPE_CHECKING:
    from typing import Any

    Fingerprint = tuple[int, ...]
    # The run's inputs besides files (see `_key`): strings, numbers, None and tuples of them.
    Key = tuple[Any, ...]


def fingerprint(path: str) -> Fingerprint:
    """What a change to `path` changes (after symlinks): device, inode, mode, size, mtime_ns,
    ctime_ns; `(_ABSENT,)` when nothing is there, `(_ERROR, errno)` when it cannot be looked at."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (_ABSENT,)
    except (OSError, ValueError) as e:
        return (_ERROR, getattr(e, "errno", None) or 0)
    return (st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class Recorder:
    """The files and folders one run looked at, each fingerprinted when first looked at."""

    def __init__(self, key: Key, root: Path) -> None:
        self.key = key
        self.root = root
        self.started = time.time_ns()
        self.seen: dict[str, Fingerprint] = {}
        self.trusted = True
        # git's answer to `--staged-deletions` (sdlint/staged.py), when the run asked.
        self.staged: tuple[str, ...] | None = None

    def look(self, path: str) -> None:
        if path not in self.seen:
            self.seen[path] = fingerprint(path)

    def store(self, output: str, code: int) -> str | None:
        """Keep the run (its stdout and exit status) for `replay`, when it can be trusted.
        Returns the run's note when the cache cannot be written, else None."""
        if not self.trusted:
            return None
        dependencies = dict(self.seen)
        for source in _own_sources():
            dependencies.setdefault(source, fingerprint(source))
        recent = self.started - RACY_NS
        for path, seen in dependencies.items():
            if fingerprint(path) != seen:  # changed while the run looked
                return None
            if seen[0] >= 0 and max(seen[4], seen[5]) >= recent:  # too recent to be sure of
                return None
        entry = (self.key, tuple(dependencies.items()), output, code, self.staged)
        payload = marshal.dumps(entry)
        return _write(self.root, self.key, payload)


_recording: ContextVar[Recorder | None] = ContextVar("sdlint_run_cache", default=None)


def depend(path: str | os.PathLike[str]) -> None:
    """Record that the run's result depends on `path` (a file, a folder, or its absence)."""
    recorder = _recording.get()
    if recorder is not None:
        recorder.look(os.fspath(path))


def staged(deleted: Sequence[str]) -> None:
    """Record git's answer to `--staged-deletions`: the files the commit deletes. It depends on
    git's index and HEAD, so a replay asks git again (`sdlint.staged.asked_again`, one process
    when nothing is deleted) and replays only on the same answer."""
    recorder = _recording.get()
    if recorder is not None:
        recorder.staged = tuple(deleted)


def untrusted() -> None:
    """The run's result depends on more than the files it looked at: it is not stored."""
    recorder = _recording.get()
    if recorder is not None:
        recorder.trusted = False


def recording() -> Recorder | None:
    """The recorder of the command-line run in progress, if it may be stored."""
    return _recording.get()


def begin(argv: Sequence[str]) -> Recorder | None:
    """Start recording a command-line run (see `recording`); None when it cannot be keyed."""
    key = _key(argv)
    if key is None:
        return None
    recorder = Recorder(key, _root())
    _recording.set(recorder)
    return recorder


def end() -> None:
    _recording.set(None)


def replay(argv: Sequence[str]) -> tuple[str, int] | None:
    """The stdout and exit status a stored run of this command line gave, when everything it
    depended on is unchanged; else None (and the run is made)."""
    key = _key(argv)
    if key is None:
        return None
    try:
        with open(_entry(_root(), key), "rb") as f:
            data = f.read()
    except OSError:
        return None
    checksum, payload = data[len(_MAGIC) : len(_MAGIC) + 4], data[len(_MAGIC) + 4 :]
    if not data.startswith(_MAGIC) or checksum != zlib.crc32(payload).to_bytes(4, "big"):
        return None  # not ours, or torn: marshal never sees it
    try:
        entry = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None
    if not isinstance(entry, tuple) or len(entry) != 5 or entry[0] != key:
        return None  # another run's entry under the same name
    _, dependencies, output, code, deleted = entry
    if not isinstance(dependencies, tuple) or not isinstance(output, str) or type(code) is not int:
        return None
    for item in dependencies:
        if not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[0], str):
            return None
        if fingerprint(item[0]) != item[1]:
            return None
    if deleted is not None:  # the run asked git what the commit deletes: the answer must agree
        from sdlint.staged import asked_again

        if not isinstance(deleted, tuple) or asked_again() != list(deleted):
            return None
    return output, code


def _key(argv: Sequence[str]) -> Key | None:
    try:
        cwd = os.getcwd()
    except OSError:  # the working folder was deleted
        return None
    from sdlint.environment import installed_version

    stdout = sys.stdout
    terminal = stdout is not None and hasattr(stdout, "isatty") and stdout.isatty()
    return (
        FORMAT,
        sdlint.__version__,
        sdlint.__file__,  # which sdlint: a regular install, or a working copy (`_own_sources`)
        sys.version,
        sys.executable,
        tuple(sys.path),
        cwd,
        tuple(argv),
        tuple(os.environ.get(name) for name in _ENVIRONMENT),
        terminal,
        tuple(installed_version(name) for name in _DISTRIBUTIONS),
    )


def _root() -> Path:
    from sdlint.environment import default_cache_dir

    return default_cache_dir()


def _entry(root: Path, key: Key) -> Path:
    text = repr(key).encode("utf-8", "surrogateescape")
    name = f"{zlib.crc32(text):08x}{zlib.adler32(text):08x}{len(text) & 0xFFFF:04x}.run"
    return root / _ENTRY_DIR / name


def _own_sources(package: str | None = None) -> list[str]:
    """What stands for sdlint's own code (a changed rule changes the output under the same
    version): for a regular install, the RECORD of the wheel it was installed from (one file: pip,
    uv and installer write it, listing every file they install, on every install, reinstall and
    upgrade); for an editable install or a source tree (a working copy), every source file."""
    package = package or os.path.dirname(os.path.abspath(sdlint.__file__))
    record = _installed_record(package)
    if record is not None:
        return [record]
    found: list[str] = []
    for folder, children, files in os.walk(package):
        children[:] = [c for c in children if c != "__pycache__"]
        found.extend(os.path.join(folder, name) for name in files if name.endswith(".py"))
    return sorted(found)


def _installed_record(package: str) -> str | None:
    """The RECORD of the distribution `package` was installed by, when it was: a `.dist-info`
    folder beside the package (in the same site-packages) whose RECORD lists the package's
    `__init__.py`. An editable install's dist-info lies in site-packages, away from the working
    copy it points at (and lists no package file); a source tree has none: both give None."""
    from sdlint.environment import _dist_infos

    site, name = os.path.split(package)
    found = (_dist_infos(site) or {}).get(name)
    if found is None or not found.endswith(".dist-info"):
        return None
    record = os.path.join(site, found, "RECORD")
    listed = f"{name}/__init__.py,"
    try:
        with open(record, encoding="utf-8") as f:
            if any(line.startswith(listed) for line in f):
                return record
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _write(root: Path, key: Key, payload: bytes) -> str | None:
    """Write the entry atomically (a temporary file in the same folder, fsync, rename)."""
    path = _entry(root, key)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = _MAGIC + zlib.crc32(payload).to_bytes(4, "big") + payload
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, flags, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as e:  # read-only (EACCES, EROFS), full (ENOSPC, EDQUOT), not a folder
        reason = e.strerror or type(e).__name__
        return (
            f"the run cache {root} cannot be written ({reason}): this run is not cached, so the "
            "same run again checks every file again"
        )
    from sdlint.prune import Limits, maybe_prune  # a stored run, never a replay

    maybe_prune(path.parent, Limits(*KEEP_RUNS), ".run")
    return None
