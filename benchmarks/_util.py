"""Shared helpers for the benchmarks: sparse checkpoints and timing of fresh processes."""

from __future__ import annotations

import json
import os
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sdlint.dtypes import tensor_bits


def write_sparse_checkpoint(
    path: Path,
    tensors: Mapping[str, tuple[str, tuple[int, ...]]],
    metadata: Mapping[str, str] | None = None,
) -> int:
    """A valid safetensors file whose data section is a hole: full size, no disk blocks."""
    header: dict[str, object] = {"__metadata__": dict(metadata or {"format": "pt"})}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        bits = tensor_bits(dtype, shape)
        assert bits is not None and bits % 8 == 0
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + bits // 8],
        }
        offset += bits // 8
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
    os.truncate(path, 8 + len(raw) + offset)
    return 8 + len(raw) + offset


# Runs a command in a child and reports its own wall time and peak RSS: RUSAGE_CHILDREN in a fresh
# wrapper process sees only that one child, so each measurement stands alone.
_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
report = {"seconds": seconds, "maxrss_kib": peak, "rc": result.returncode}
print(json.dumps({**report, "err": result.stderr[-2000:]}))
"""


def time_process(
    argv: Sequence[str], repeat: int, env: Mapping[str, str] | None = None
) -> tuple[float, int]:
    """Median wall time (s) and the largest peak RSS (KiB) over `repeat` fresh runs of `argv`."""
    times = []
    peak = 0
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", _WRAPPER, *argv],
            capture_output=True,
            text=True,
            env=dict(env or os.environ),
            check=True,
        )
        run = json.loads(out.stdout.strip().splitlines()[-1])
        if run["rc"] not in (0, 1):
            raise RuntimeError(f"{list(argv)} failed with {run['rc']}:\n{run['err']}")
        times.append(float(run["seconds"]))
        peak = max(peak, int(run["maxrss_kib"]))
    return statistics.median(times), peak


def in_process(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds of `fn()` over `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
