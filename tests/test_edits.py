"""sdlint.edits: re-initialised tensors are made a chunk at a time, in the tensor's dtype."""

from __future__ import annotations

import random
import struct
import tracemalloc
from pathlib import Path

import pytest

from sdlint.edits import (
    DropTensors,
    Edit,
    InitTensor,
    SetConfigValues,
    config_values,
    init_chunks,
)
from sdlint.fixes import apply
from tests.safetensors_files import write_tensors


def _edit(dtype: str, shape: tuple[int, ...], init: str, std: float = 0.0) -> InitTensor:
    return InitTensor(Path("m.safetensors"), "w", dtype, shape, init, std)


@pytest.mark.parametrize("dtype", ["F64", "F32", "F16", "BF16"])
@pytest.mark.parametrize("init", ["zeros", "ones", "normal"])
def test_values_in_each_dtype(dtype: str, init: str) -> None:
    edit = _edit(dtype, (3, 1000), init, std=0.02)
    raw = b"".join(init_chunks(edit, random.Random(0)))
    width = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}[dtype]
    assert len(raw) == 3000 * width
    if dtype == "BF16":  # the upper half of a float32
        values = [struct.unpack("<f", b"\0\0" + raw[i : i + 2])[0] for i in range(0, len(raw), 2)]
    else:
        fmt = {"F64": "d", "F32": "f", "F16": "e"}[dtype]
        values = list(struct.unpack(f"<{3000}{fmt}", raw))
    if init == "normal":
        mean = sum(values) / len(values)
        std = (sum(v * v for v in values) / len(values)) ** 0.5
        assert abs(mean) < 0.003 and 0.017 < std < 0.023
    else:
        assert set(values) == {0.0 if init == "zeros" else 1.0}


def test_a_large_tensor_comes_in_bounded_chunks() -> None:
    edit = _edit("F32", (5_000_000,), "zeros")
    sizes = [len(chunk) for chunk in init_chunks(edit, random.Random(0))]
    assert sum(sizes) == 20_000_000
    assert max(sizes) <= 1 << 20


def test_a_fix_streams_a_new_tensor_to_the_file(tmp_path: Path) -> None:
    """Re-initialising a 64 MB tensor never holds it in memory (nor a Python list of its values):
    the peak is the rewriter's copy buffer and one chunk."""
    path = tmp_path / "model.safetensors"
    write_tensors(path, {"w": ("F32", (1,))})
    edit = InitTensor(path, "w", "F32", (16_000_000,), "ones")
    tracemalloc.start()
    try:
        apply([edit], [])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert path.stat().st_size > 64_000_000
    assert peak < 16_000_000, f"peak {peak:,} bytes"


def test_config_values_merge_per_file_later_edits_winning() -> None:
    a, b = Path("a/config.json"), Path("b/config.json")
    edits: list[Edit] = [
        SetConfigValues(a, (("num_labels", "3"), ("id2label", '{"0": "x"}'))),
        DropTensors(Path("a/model.safetensors"), ("w",)),
        SetConfigValues(b, (("vocab_size", "10"),)),
        SetConfigValues(a, (("num_labels", "5"),)),
    ]
    assert config_values(edits) == {
        a: {"num_labels": 5, "id2label": {"0": "x"}},
        b: {"vocab_size": 10},
    }
