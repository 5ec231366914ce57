"""safetensors dtypes and their sizes in bits (safetensors/src/tensor.rs `Dtype::bitsize`)."""

from __future__ import annotations

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


def shape_text(shape: Sequence[int]) -> str:
    """A shape as messages print it: `[2, 768]`."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def tensor_bits(dtype: str, shape: Sequence[int]) -> int | None:
    """Size in bits, or None when the reference reader's checked arithmetic would overflow.

    The product is taken left to right with an overflow check at each step, as Rust's
    `checked_mul` fold does: `[2**63, 2**63, 0]` overflows while `[0, 2**63, 2**63]` does not.
    """
    numel = 1
    for dim in shape:
        numel *= dim
        if numel >= USIZE_LIMIT:
            return None
    bits = numel * DTYPE_BITS[dtype]
    return None if bits >= USIZE_LIMIT else bits
