"""Test-only fault injection for sdlint.rewrite, through its `_write` seam.

Production code has no fault switches: a test (or a child process a test starts) installs one of
these writes in place of `os.write` with `rewrite._write = fail_after(n)` or pytest's monkeypatch.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable


def fail_after(limit: int, *, kill: bool = False) -> Callable[[int, memoryview], int]:
    """A write that lets `limit` bytes through (counted over every file of the process: a rewrite's
    new file, then a copied backup) and then fails with EIO, or SIGKILLs the process as a crash or
    an OOM kill would."""
    written = 0

    def write(fd: int, data: memoryview) -> int:
        nonlocal written
        room = limit - written
        if room <= 0:
            if kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise OSError(errno.EIO, f"simulated failure after {limit} bytes")
        n = os.write(fd, data[:room])
        written += n
        return n

    return write
