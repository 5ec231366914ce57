"""The edits a fix is made of: plain values, decided by the rules and applied by sdlint/fixes.py.

A fix never carries tensor bytes: a re-initialised tensor is described (dtype, shape, how to
initialise) and made only when the fix is applied, so a diagnostic stays small and hashable.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from sdlint.record import record

TYPE_CHECKING = False  # typing is not imported at run time (a check that builds a fix has no use)
if TYPE_CHECKING:
    import random
    from typing import Any


@record
class RenameTensors:
    """Rename tensors of one weights file (old name -> new name); the bytes are untouched."""

    file: Path
    renames: tuple[tuple[str, str], ...]


@record
class DropTensors:
    """Remove tensors from one weights file."""

    file: Path
    names: tuple[str, ...]


@record
class InitTensor:
    """Replace (or add) one tensor of a weights file by a freshly initialised one, the way
    transformers' `_init_weights` initialises it: `normal` (mean 0, `std`), `zeros` or `ones`."""

    file: Path
    name: str
    dtype: str
    shape: tuple[int, ...]
    init: str
    std: float = 0.0


@record
class SetConfigValues:
    """Set top-level keys of a config.json (values as JSON text, so the edit stays hashable)."""

    file: Path
    values: tuple[tuple[str, str], ...]


@record
class ConvertToSafetensors:
    """Replace a torch.save checkpoint by a safetensors file (`target`) holding its tensors; the
    original goes (kept as `<name>.bak` with --backup)."""

    file: Path
    target: Path


@record
class ConvertIndex:
    """Replace a sharded torch.save checkpoint's index by a new index (`target`) of its shards
    converted to safetensors (each `ConvertToSafetensors` of the same fix; `shards` pairs each old
    shard name with its new one); the original goes (kept as `<name>.bak` with --backup)."""

    file: Path
    target: Path
    shards: tuple[tuple[str, str], ...]


Edit = (
    RenameTensors | DropTensors | InitTensor | SetConfigValues | ConvertToSafetensors | ConvertIndex
)
# The edits that replace a file by a new one of another name.
Conversion = ConvertToSafetensors | ConvertIndex

# What a conversion claims of its file: every tensor.
WHOLE_FILE = "*"


def config_values(edits: Iterable[Edit]) -> dict[Path, dict[str, Any]]:
    """The values the `SetConfigValues` among `edits` set, merged per file (later edits win)."""
    out: dict[Path, dict[str, Any]] = {}
    for edit in edits:
        if isinstance(edit, SetConfigValues):
            out.setdefault(edit.file, {}).update((k, json.loads(v)) for k, v in edit.values)
    return out


def touched_names(edit: Edit) -> set[str]:
    """The tensor names (or config keys) an edit reads or writes, to keep two fixes applied in one
    pass from touching the same thing."""
    if isinstance(edit, RenameTensors):
        return {name for pair in edit.renames for name in pair}
    if isinstance(edit, DropTensors):
        return set(edit.names)
    if isinstance(edit, InitTensor):
        return {edit.name}
    if isinstance(edit, (ConvertToSafetensors, ConvertIndex)):
        return {WHOLE_FILE}
    return {key for key, _ in edit.values}


# The floating dtypes a fix can initialise, by struct format; BF16 is packed as F32 and truncated.
_PACKING = {"F64": "d", "F32": "f", "F16": "e", "BF16": "f"}
# Values made per chunk (256 kB of F32): a re-initialised 1 GB embedding never sits in memory.
_CHUNK_VALUES = 1 << 16


def can_init(dtype: str) -> bool:
    return dtype in _PACKING


def init_chunks(edit: InitTensor, rng: random.Random) -> Iterator[bytes]:
    """The tensor's bytes, a chunk at a time: normal(0, std), zeros or ones, little-endian in its
    dtype. bfloat16 is the upper half of a float32, so no torch is needed."""
    count = math.prod(edit.shape)
    fmt = _PACKING[edit.dtype]
    for start in range(0, count, _CHUNK_VALUES):
        n = min(_CHUNK_VALUES, count - start)
        if edit.init == "zeros":
            yield bytes(n * (2 if edit.dtype == "BF16" else struct.calcsize(fmt)))
            continue
        ones = edit.init == "ones"
        values = [1.0] * n if ones else [rng.gauss(0.0, edit.std) for _ in range(n)]
        packed = struct.pack(f"<{n}{fmt}", *values)
        if edit.dtype == "BF16":
            halves = bytearray(2 * n)
            halves[0::2] = packed[2::4]
            halves[1::2] = packed[3::4]
            packed = bytes(halves)
        yield packed
