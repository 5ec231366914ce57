"""What git says the commit being made deletes (`sdlint check --staged-deletions`).

pre-commit passes a hook only the staged files that exist, so a commit that deletes one shard of a
sharded checkpoint passes no file of that checkpoint: the hooks run always and ask git for the
staged deletions, and the index beside a deleted shard is checked with that shard missing. git's
index is the truth, not the disk: `git rm --cached` leaves the file on disk but out of the commit
(pre-commit stashes unstaged changes to tracked files only, so an untracked file stays in place).

The run cache (sdlint/runcache.py) keeps git's answer with a stored run and asks git again before
a replay (`asked_again`): the run and the replay compute it by the same steps, so they agree.
"""

from __future__ import annotations

import os
from pathlib import Path

from sdlint.errors import UsageError

TYPE_CHECKING = False  # a replay imports this module: not typing
if TYPE_CHECKING:
    from collections.abc import Callable

# The files the index deletes against HEAD (a rename as a deletion of its old name), relative to
# the top of the working tree, NUL-separated.
_DELETIONS = ("diff", "--cached", "--name-only", "--no-renames", "--diff-filter=D", "-z")
_TOP = ("rev-parse", "--show-cdup")  # "" at the top, else "../"s


def _git(*args: str) -> str:
    import subprocess  # only a run that asks git: a replay spawns it without this module

    try:
        done = subprocess.run(["git", *args], capture_output=True, check=False)
    except OSError as e:
        raise UsageError(f"--staged-deletions needs git: {e.strerror or e}") from e
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace")
        first = (stderr.strip().splitlines() or ["git failed"])[0]
        raise UsageError(f"--staged-deletions needs a git repository: {first}")
    return _text(done.stdout)


def _text(output: bytes) -> str:
    return output.decode("utf-8", "surrogateescape")  # a path git prints, whatever its bytes


def staged_deletions() -> list[Path]:
    """The files the staged commit deletes, relative to the current folder (where pre-commit runs
    hooks: the repository's top). A renamed file counts as deleted under its old name."""
    try:
        listed = _git(*_DELETIONS)
    except UsageError:
        _git(*_TOP)  # outside a repository: rev-parse says so in fewer words than diff
        raise
    return _relative(listed, lambda: _git(*_TOP))


def _relative(listed: str, top: Callable[[], str]) -> list[Path]:
    """The paths in `diff -z` output, made relative to the current folder (git is asked where
    the top is, `top()`, only when there is one)."""
    names = [name for name in listed.split("\0") if name]
    if not names:
        return []
    up = top().rstrip("\n")
    return [Path(up, name) for name in names]


def asked_again() -> list[str] | None:
    """`staged_deletions()` as strings, asked of git by `os.posix_spawnp` (a replay does not
    import subprocess, which costs more than the rest of the replay); None when git fails or
    cannot be run this way (the run then asks, and reports what git says)."""
    if not hasattr(os, "posix_spawnp"):
        return None
    listed = _spawned(_DELETIONS)
    if listed is None:
        return None
    failed = False

    def top() -> str:
        nonlocal failed
        found = _spawned(_TOP)
        failed = found is None
        return found or ""

    deleted = [str(path) for path in _relative(listed, top)]
    return None if failed else deleted


def _spawned(args: tuple[str, ...]) -> str | None:
    """git's stdout (stderr to the null device), or None when it does not exit 0."""
    read, write = os.pipe()  # both close on exec: the child gets only its dup2'd stdout
    try:
        pid = os.posix_spawnp(
            "git",
            ["git", *args],
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, write, 1),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ],
        )
    except OSError:
        os.close(read)
        return None
    finally:
        os.close(write)
    chunks = []
    try:
        while chunk := os.read(read, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(read)
        _, status = os.waitpid(pid, 0)
    return _text(b"".join(chunks)) if os.waitstatus_to_exitcode(status) == 0 else None
