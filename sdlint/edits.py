"""The edits a fix is made of: plain values, decided by the rules and applied by sdlint/fixes.py.

A fix never carries tensor bytes: a re-initialised tensor is described (dtype, shape, how to
initialise) and made only when the fix is applied, so a diagnostic stays small and hashable.
"""

from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass
from pathlib import Path

from sdlint.dtypes import tensor_bits


@dataclass(frozen=True)
class RenameTensors:
    """Rename tensors of one weights file (old name -> new name); the bytes are untouched."""

    file: Path
    renames: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DropTensors:
    """Remove tensors from one weights file."""

    file: Path
    names: tuple[str, ...]


@dataclass(frozen=True)
class InitTensor:
    """Replace (or add) one tensor of a weights file by a freshly initialised one, the way
    transformers' `_init_weights` initialises it: `normal` (mean 0, `std`), `zeros` or `ones`."""

    file: Path
    name: str
    dtype: str
    shape: tuple[int, ...]
    init: str
    std: float = 0.0


@dataclass(frozen=True)
class SetConfigValues:
    """Set top-level keys of a config.json (values as JSON text, so the edit stays hashable)."""

    file: Path
    values: tuple[tuple[str, str], ...]


Edit = RenameTensors | DropTensors | InitTensor | SetConfigValues


def edited_files(edits: tuple[Edit, ...]) -> set[Path]:
    return {edit.file for edit in edits}


def touched_names(edit: Edit) -> set[str]:
    """The tensor names (or config keys) an edit reads or writes, to keep two fixes applied in one
    pass from touching the same thing."""
    if isinstance(edit, RenameTensors):
        return {name for pair in edit.renames for name in pair}
    if isinstance(edit, DropTensors):
        return set(edit.names)
    if isinstance(edit, InitTensor):
        return {edit.name}
    return {key for key, _ in edit.values}


# The floating dtypes a fix can initialise: struct format, and bytes kept per value.
_PACKING = {"F64": ("<d", slice(0, 8)), "F32": ("<f", slice(0, 4)), "F16": ("<e", slice(0, 2))}


def can_init(dtype: str) -> bool:
    return dtype in _PACKING or dtype == "BF16"


def init_bytes(edit: InitTensor, rng: random.Random) -> bytes:
    """The tensor's bytes: normal(0, std), zeros or ones, little-endian in its dtype. bfloat16 is
    the upper half of a float32, so no torch is needed."""
    count = math.prod(edit.shape)
    if edit.init == "zeros":
        bits = tensor_bits(edit.dtype, edit.shape) or 0
        return bytes(bits // 8)
    values = (
        [1.0] * count if edit.init == "ones" else [rng.gauss(0.0, edit.std) for _ in range(count)]
    )
    if edit.dtype == "BF16":
        return b"".join(struct.pack("<f", v)[2:4] for v in values)
    fmt, _ = _PACKING[edit.dtype]
    return struct.pack(f"<{count}{fmt[1]}", *values)
