"""Spread a run over processes: header reading when there are many checkpoints, and the cold
model computations (each distinct one once) when there are several to make.

`--jobs N` is the number of processes (and of remote reads in flight); the default is the number
of CPUs this process may use. Nothing here decides an answer: workers return what the same
functions return in-process, in submission order, and the findings are then made in-process, so
the output does not depend on N. A run with one checkpoint, or a warm run over a few, never
starts a process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence

TYPE_CHECKING = False  # typing is not imported at run time (a check has no use for it)
if TYPE_CHECKING:  # concurrent.futures (and the logging it imports) only when a pool starts
    from concurrent.futures import Executor
    from typing import TypeVar

    _T = TypeVar("_T")
    _R = TypeVar("_R")

# Reading headers in other processes pays off only for many checkpoints: on the 2-core development
# machine 200 small ones took 1.3x longer read by 2 processes than in-process (process start and
# pickled results against a fraction of a millisecond per header; benchmarks/speed.py).
HEADERS_FROM = 512
# Each process that builds models imports torch and transformers (seconds): 4 distinct small
# models took 1.5x longer built by 2 processes than by one there. Computations are spread only
# when there are many distinct ones to make.
VERDICTS_FROM = 32


def default_jobs() -> int:
    """The CPUs this process may run on (its affinity where the platform says, else all)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def _pool(workers: int) -> Executor:
    """A process pool. On Linux the workers are forked: they start with sdlint imported and
    without re-running the command line (this runs before any thread or torch import)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if sys.platform == "linux" else "spawn"
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))


def spread(function: Callable[[_T], _R], items: Sequence[_T], workers: int) -> list[_R]:
    """`[function(item) for item in items]`, computed by up to `workers` processes; in order."""
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with _pool(min(workers, len(items))) as pool:
        return list(pool.map(function, items))


def chunks(items: Sequence[_T], count: int) -> list[list[_T]]:
    """`items` cut into `count` contiguous runs of near-equal length (none empty)."""
    count = max(1, min(count, len(items)))
    bounds = [round(i * len(items) / count) for i in range(count + 1)]
    return [list(items[bounds[i] : bounds[i + 1]]) for i in range(count)]


def flatten(parts: Iterable[list[_T]]) -> list[_T]:
    return [item for part in parts for item in part]
