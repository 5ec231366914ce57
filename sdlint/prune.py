"""Bounds on sdlint's cache folders: the run cache's stored runs (sdlint/runcache.py) and the
verdict cache's verdicts (sdlint/model/cache.py) would otherwise grow with every new command line
and every new checkpoint signature.

A folder is looked over at most once per `Limits.every` (an hour), by a run that has just written
an entry there (a stored run, a computed verdict: work that costs far more than listing the
folder), never by a replay or a cache hit, which stay a few stats and one read. A stamp file in
the folder (`.pruned`, its mtime) says when it was last looked over. Then entries unused for
`unused_days` go, and, beyond `entries` entries or `bytes` bytes, the least recently used ones.
"Used" is the later of the entry's mtime (written) and atime (read; Linux's default relatime
updates it at most once a day, enough for a bound in days; on a noatime mount an entry counts as
used when last written). A writer's temporary file left behind by a killed process goes after an
hour. Errors (a read-only folder, an entry removed by a concurrent run) are ignored: pruning never
fails a run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sdlint.record import record

STAMP = ".pruned"
_DAY = 86_400
_LEFTOVER = 3_600  # a writer's temporary file older than this was left by a killed process


@record
class Limits:
    """What one cache folder keeps."""

    entries: int  # at most this many entries
    bytes: int  # at most this many bytes of entries
    unused_days: int  # an entry not used for this long goes
    every: int = 3_600  # seconds between two looks at the folder


def maybe_prune(folder: Path, limits: Limits, suffix: str) -> int:
    """Prune `folder` (its `*suffix` entries) unless it was pruned within `limits.every`; how
    many entries went."""
    stamp = folder / STAMP
    now = time.time()
    try:
        if now - stamp.stat().st_mtime < limits.every:
            return 0
    except FileNotFoundError:
        pass
    except OSError:
        return 0
    try:  # stamped first: concurrent runs do not all look over the folder
        stamp.touch()
    except OSError:
        return 0
    return prune(folder, limits, suffix, now)


def prune(folder: Path, limits: Limits, suffix: str, now: float) -> int:
    """Remove the entries `limits` does not keep, least recently used first; how many went."""
    found: list[tuple[float, int, str]] = []
    removed = 0
    try:
        with os.scandir(folder) as listing:
            for item in listing:
                name = item.name
                try:
                    st = item.stat(follow_symlinks=False)
                except OSError:
                    continue
                if name.startswith(".") and name.endswith(".tmp"):
                    if now - st.st_mtime > _LEFTOVER:
                        removed += _remove(item.path)
                    continue
                if name.endswith(suffix) and item.is_file(follow_symlinks=False):
                    found.append((max(st.st_atime, st.st_mtime), st.st_size, item.path))
    except OSError:
        return removed
    found.sort(reverse=True)  # the most recently used first
    kept = total = 0
    oldest = now - limits.unused_days * _DAY
    for used, size, path in found:
        if used >= oldest and kept < limits.entries and total + size <= limits.bytes:
            kept += 1
            total += size
        else:
            removed += _remove(path)
    return removed


def _remove(path: str) -> int:
    try:
        os.unlink(path)  # noqa: PTH108 (a name from os.scandir: no Path for each)
    except OSError:  # gone already (a concurrent run), or not ours to remove
        return 0
    return 1
