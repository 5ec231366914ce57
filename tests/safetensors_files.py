"""Tiny safetensors files built in tests: valid ones laid out like the safetensors library writes
them, and corrupt ones from an arbitrary header and data."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sdlint.dtypes import DTYPE_BITS, tensor_bits

TensorSpecs = Mapping[str, tuple[str, tuple[int, ...]]]


def header_for(
    tensors: TensorSpecs, metadata: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], int]:
    """A valid header dict for `tensors` laid out in order, and the data size it needs."""
    header: dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name, (dtype, shape) in tensors.items():
        bits = tensor_bits(dtype, shape)
        assert bits is not None and bits % 8 == 0, (name, dtype, shape)
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + bits // 8],
        }
        offset += bits // 8
    return header, offset


def encode_header(header: Mapping[str, Any] | bytes | str, *, pad: bool = True) -> bytes:
    if isinstance(header, Mapping):
        raw = json.dumps(header, separators=(",", ":")).encode()
    elif isinstance(header, str):
        raw = header.encode()
    else:
        raw = header
    if pad:
        raw += b" " * (-len(raw) % 8)
    return raw


def write_raw(
    path: Path,
    header: Mapping[str, Any] | bytes | str,
    data: bytes = b"",
    *,
    pad: bool = True,
    length: int | None = None,
) -> Path:
    """Write `length` (default: the header's length), the header bytes, then `data`."""
    raw = encode_header(header, pad=pad)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def write_tensors(
    path: Path,
    tensors: TensorSpecs,
    metadata: Mapping[str, str] | None = None,
    *,
    fill: int = 0,
) -> Path:
    """A valid file holding `tensors` (data bytes all `fill`)."""
    header, size = header_for(tensors, metadata)
    return write_raw(path, header, bytes([fill]) * size)


ALL_DTYPES = sorted(DTYPE_BITS)


def write_sharded(
    folder: Path,
    shards: Mapping[str, TensorSpecs],
    *,
    weight_map: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    index_name: str = "model.safetensors.index.json",
) -> Path:
    """Shards plus an index; by default the index is exactly right, as save_pretrained writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    total_size = total_parameters = 0
    default_map: dict[str, str] = {}
    for shard, tensors in shards.items():
        write_tensors(folder / shard, tensors)
        for name, (dtype, shape) in tensors.items():
            default_map[name] = shard
            bits = tensor_bits(dtype, shape)
            assert bits is not None
            total_size += bits // 8
            numel = 1
            for d in shape:
                numel *= d
            total_parameters += numel
    index = {
        "metadata": (
            dict(metadata)
            if metadata is not None
            else {"total_parameters": total_parameters, "total_size": total_size}
        ),
        "weight_map": dict(weight_map if weight_map is not None else default_map),
    }
    path = folder / index_name
    path.write_text(json.dumps(index, indent=2))
    return path
