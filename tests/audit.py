"""Which files a piece of code opens, from the interpreter's `open` audit events (PEP 578).

One hook is installed for the whole test session (an audit hook cannot be removed); it records
only inside `opened_files()`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_recordings: list[list[Path]] = []
_installed = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" or not _recordings or not args:
        return
    target = args[0]
    if isinstance(target, (str, bytes, os.PathLike)):
        name = os.fsdecode(target)
        for recording in _recordings:
            recording.append(Path(name))


@contextmanager
def opened_files() -> Iterator[list[Path]]:
    """Every path opened (by `open`, `os.open`, `Path.open`, ...) inside the block, as given."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    recording: list[Path] = []
    _recordings.append(recording)
    try:
        yield recording
    finally:
        _recordings.remove(recording)
