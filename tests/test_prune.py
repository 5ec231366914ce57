"""Bounds on the cache folders (sdlint/prune.py): entries unused for too long go, then the least
recently used beyond the count and byte limits; a folder is looked over at most once per
`Limits.every`, by a run that wrote to it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sdlint.prune import STAMP, Limits, maybe_prune, prune

DAY = 86_400
ROOMY = Limits(entries=100, bytes=10**6, unused_days=30)


def entry(folder: Path, name: str, days_ago: float, size: int = 10) -> Path:
    """An entry last used (read and written) `days_ago`."""
    path = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    when = time.time() - days_ago * DAY
    os.utime(path, (when, when))
    return path


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_entries_unused_for_too_long_go(tmp_path: Path) -> None:
    entry(tmp_path, "old.run", 31)
    entry(tmp_path, "recent.run", 29)
    entry(tmp_path, "other.txt", 400)  # not an entry of this folder: left alone
    assert prune(tmp_path, ROOMY, ".run", time.time()) == 1
    assert names(tmp_path) == ["other.txt", "recent.run"]


def test_a_read_entry_counts_as_used(tmp_path: Path) -> None:
    """Used: the later of written (mtime) and read (atime)."""
    path = entry(tmp_path, "read.run", 40)
    now = time.time()
    os.utime(path, (now - DAY, now - 40 * DAY))
    assert prune(tmp_path, ROOMY, ".run", now) == 0


def test_beyond_the_count_or_the_bytes_the_least_recently_used_go(tmp_path: Path) -> None:
    for age in range(6):
        entry(tmp_path, f"{age}.run", age, size=100)
    assert prune(tmp_path, Limits(4, 10**6, 30), ".run", time.time()) == 2
    assert names(tmp_path) == ["0.run", "1.run", "2.run", "3.run"]
    assert prune(tmp_path, Limits(100, 250, 30), ".run", time.time()) == 2
    assert names(tmp_path) == ["0.run", "1.run"]


def test_a_writers_leftover_goes_after_an_hour(tmp_path: Path) -> None:
    entry(tmp_path, ".abc.run.123.tmp", 2 / 24)
    entry(tmp_path, ".def.run.456.tmp", 0)  # a writer at work
    prune(tmp_path, ROOMY, ".run", time.time())
    assert names(tmp_path) == [".def.run.456.tmp"]


def test_a_folder_is_looked_over_at_most_once_per_interval(tmp_path: Path) -> None:
    entry(tmp_path, "old.run", 31)
    assert maybe_prune(tmp_path, ROOMY, ".run") == 1
    entry(tmp_path, "old.run", 31)
    assert maybe_prune(tmp_path, ROOMY, ".run") == 0  # stamped a moment ago
    hour_ago = time.time() - 3601
    os.utime(tmp_path / STAMP, (hour_ago, hour_ago))
    assert maybe_prune(tmp_path, ROOMY, ".run") == 1


def test_a_folder_that_cannot_be_pruned_is_left_as_it_is(tmp_path: Path) -> None:
    assert maybe_prune(tmp_path / "missing", ROOMY, ".run") == 0
    (tmp_path / "file").write_text("not a folder")
    assert maybe_prune(tmp_path / "file", ROOMY, ".run") == 0
