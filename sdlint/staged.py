"""What git says the commit being made deletes (`sdlint check --staged-deletions`).

pre-commit passes a hook only the staged files that exist, so a commit that deletes one shard of a
sharded checkpoint passes no file of that checkpoint: the hooks run always and ask git for the
staged deletions, and the index beside a deleted shard is checked with that shard missing. git's
index is the truth, not the disk: `git rm --cached` leaves the file on disk but out of the commit
(pre-commit stashes unstaged changes to tracked files only, so an untracked file stays in place).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from sdlint.errors import UsageError


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=False, encoding="utf-8"
        )
    except OSError as e:
        raise UsageError(f"--staged-deletions needs git: {e.strerror or e}") from e
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["git failed"])[0]
        raise UsageError(f"--staged-deletions needs a git repository: {first}")
    return done.stdout


def staged_deletions() -> list[Path]:
    """The files the staged commit deletes, relative to the current folder (where pre-commit runs
    hooks: the repository's top). A renamed file counts as deleted under its old name."""
    up = _git("rev-parse", "--show-cdup").rstrip("\n")  # "" at the top, else "../"s
    listed = _git("diff", "--cached", "--name-only", "--no-renames", "--diff-filter=D", "-z")
    return [Path(up, name) for name in listed.split("\0") if name]
