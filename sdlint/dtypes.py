"""safetensors dtypes and their sizes in bits (safetensors/src/tensor.rs `Dtype::bitsize`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

# Every dtype the safetensors 0.8 format defines. Sizes are in *bits*: F4 and F6_* are sub-byte, so
# a tensor of those dtypes must fill whole bytes.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}

# The reference reader computes sizes in a Rust `usize`; on the 64-bit platforms it ships for, any
# intermediate product at or above 2**64 is a `ValidationOverflow`.
USIZE_LIMIT = 2**64


def is_uint(value: object) -> bool:
    """A non-negative integer the reference reader can hold (a dimension or an offset)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < USIZE_LIMIT


def shape_text(shape: Sequence[int]) -> str:
    """A shape as messages print it: `[2, 768]`."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def tensor_bits(dtype: str, shape: Sequence[int]) -> int | None:
    """Size in bits, or None when the reference reader's checked arithmetic would overflow.

    The product is taken left to right with an overflow check at each step, as Rust's
    `checked_mul` fold does: `[2**63, 2**63, 0]` overflows while `[0, 2**63, 2**63]` does not.
    """
    numel = math.prod(shape)
    if 0 < numel < USIZE_LIMIT:  # no dimension 0: every partial product is at most the whole
        bits = numel * DTYPE_BITS[dtype]
        return None if bits >= USIZE_LIMIT else bits
    numel = 1
    for dim in shape:
        numel *= dim
        if numel >= USIZE_LIMIT:
            return None
    bits = numel * DTYPE_BITS[dtype]
    return None if bits >= USIZE_LIMIT else bits


# torch dtype name -> (safetensors dtype name, or None where safetensors has none; bytes per
# element). The names are torch's own (`str(torch.float32)` without `torch.`), as torch.save writes
# them in pickles; the pairs are those of safetensors' torch integration (safetensors/torch.py).
TORCH_DTYPES: dict[str, tuple[str | None, int]] = {
    "float64": ("F64", 8),
    "float32": ("F32", 4),
    "float16": ("F16", 2),
    "bfloat16": ("BF16", 2),
    "int64": ("I64", 8),
    "int32": ("I32", 4),
    "int16": ("I16", 2),
    "int8": ("I8", 1),
    "uint8": ("U8", 1),
    "uint16": ("U16", 2),
    "uint32": ("U32", 4),
    "uint64": ("U64", 8),
    "bool": ("BOOL", 1),
    "complex64": ("C64", 8),
    "float8_e4m3fn": ("F8_E4M3", 1),
    "float8_e5m2": ("F8_E5M2", 1),
    "float8_e8m0fnu": ("F8_E8M0", 1),
    "float8_e4m3fnuz": ("F8_E4M3FNUZ", 1),
    "float8_e5m2fnuz": ("F8_E5M2FNUZ", 1),
    "complex128": (None, 16),
    "complex32": (None, 4),
    "float4_e2m1fn_x2": (None, 1),  # two 4-bit values per element: not safetensors' F4
    "qint8": (None, 1),
    "quint8": (None, 1),
    "qint32": (None, 4),
    "quint4x2": (None, 1),
    "quint2x4": (None, 1),
    "bits8": (None, 1),
    "bits16": (None, 2),
    "bits1x8": (None, 1),
    "bits2x4": (None, 1),
    "bits4x2": (None, 1),
    **{f"uint{n}": (None, 1) for n in range(1, 8)},
    **{f"int{n}": (None, 1) for n in range(1, 8)},
}

# torch's storage classes, as pickles name them (`torch.FloatStorage`), -> torch dtype name.
# `UntypedStorage` holds bytes; the tensor's own dtype travels beside it (_rebuild_tensor_v3).
TORCH_STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
    "QInt8Storage": "qint8",
    "QInt32Storage": "qint32",
    "QUInt8Storage": "quint8",
    "QUInt4x2Storage": "quint4x2",
    "QUInt2x4Storage": "quint2x4",
    "UntypedStorage": "uint8",
}

# safetensors dtype -> torch dtype name (from the table above: one table for both directions), as
# `safe_open(..., framework="pt")` materialises them (probed with safetensors 0.8 / torch 2.13) and
# as a config's `dtype` names them. F4 and F6_* have no torch dtype.
TORCH_NAMES: dict[str, str] = {
    st: torch for torch, (st, _) in TORCH_DTYPES.items() if st is not None
}
# The floating-point dtypes a config's `dtype` can name (the ones transformers converts on load).
FLOATING = frozenset(
    {"F16", "BF16", "F32", "F64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ"}
)
