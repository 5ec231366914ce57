"""The header reader: agrees with safetensors on valid files, reads only the header, never blocks."""

from __future__ import annotations

import gc
import json
import os
import struct
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import save_file

from sdlint.formats import LfsPointer, Unreadable
from sdlint.formats.safetensors import Header, parse_header, read_header
from sdlint.sources import FileRef
from tests.safetensors_files import ALL_DTYPES, header_for, write_raw, write_tensors


def test_every_dtype_matches_the_reference(tmp_path: Path) -> None:
    # 8 elements fill whole bytes for every dtype, F4 and F6 included
    specs = {f"t.{dtype}": (dtype, (2, 4)) for dtype in ALL_DTYPES}
    path = write_tensors(tmp_path / "all.safetensors", specs, {"format": "pt"})
    header = read_header(path)
    assert isinstance(header, Header)
    with safe_open(str(path), framework="numpy") as f:
        reference = {
            k: (f.get_slice(k).get_dtype(), tuple(f.get_slice(k).get_shape())) for k in f.keys()
        }
        assert header.metadata == f.metadata()
    assert {k: (t.dtype, t.shape) for k, t in header.tensors.items()} == reference
    assert len(reference) == len(ALL_DTYPES)


def test_file_written_by_safetensors(tmp_path: Path) -> None:
    arrays: dict[str, np.ndarray[Any, Any]] = {
        "w": np.ones((3, 5), np.float16),
        "b": np.arange(7, dtype=np.int32),
        "s": np.array(2.0, np.float64),
    }
    path = tmp_path / "lib.safetensors"
    save_file(arrays, str(path), metadata={"format": "np"})
    header = read_header(path)
    assert isinstance(header, Header)
    assert not header.warnings and all(not e.errors and not e.warnings for e in header.entries)
    assert {k: (t.dtype, t.shape) for k, t in header.tensors.items()} == {
        "w": ("F16", (3, 5)),
        "b": ("I32", (7,)),
        "s": ("F64", ()),
    }
    assert (8 + header.header_size) % 8 == 0
    assert header.data_size == sum(a.nbytes for a in arrays.values())


def read_counting(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, int]:
    """read_header(path), and how many bytes it read (every read goes through `os.pread`)."""
    counter: list[int] = []
    original = os.pread

    def counting_pread(fd: int, n: int, offset: int) -> bytes:
        data = original(fd, n, offset)
        counter.append(len(data))
        return data

    with monkeypatch.context() as patch:
        patch.setattr(os, "pread", counting_pread)
        result = read_header(path)
    return result, sum(counter)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(header=st.binary(max_size=64), length=st.integers(0, 2**64 - 1) | st.integers(0, 80))
def test_reads_at_most_the_header(
    header: bytes, length: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.safetensors"
    path.write_bytes(struct.pack("<Q", length) + header + b"\0" * 4096)
    _, count = read_counting(path, monkeypatch)
    fits = length <= len(header) + 4096
    assert count <= (8 + length if fits else 8)


def test_a_140_gb_file_costs_a_header_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    size = 140 * 2**30
    path = tmp_path / "huge.safetensors"
    # One sparse tensor of 140 GiB: rewrite the header, then extend the file without writing data.
    write_raw(path, {"big": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}})
    header_size = path.stat().st_size - 8
    try:
        os.truncate(path, 8 + header_size + size)
    except OSError:
        pytest.skip("this filesystem cannot make a sparse 140 GiB file")
    result, count = read_counting(path, monkeypatch)
    assert isinstance(result, Header) and result.tensors["big"].end == size
    assert count == 8 + header_size


def test_lfs_pointer(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        "size 498001234\n"
    )
    assert read_header(path) == LfsPointer(
        FileRef.of(path),
        "sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393",
        498001234,
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    assert read_header(fifo) == Unreadable(FileRef.of(fifo), "not a regular file")


def test_symlink_to_device_is_not_read(tmp_path: Path) -> None:
    link = tmp_path / "zero.safetensors"
    link.symlink_to("/dev/zero")
    assert read_header(link) == Unreadable(FileRef.of(link), "not a regular file")


def test_missing_file(tmp_path: Path) -> None:
    result = read_header(tmp_path / "absent.safetensors")
    assert isinstance(result, Unreadable) and "No such file" in result.reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[]", "header is a JSON array, not an object"),
        (
            b"{",
            "header is not valid JSON: Expecting property name enclosed in double quotes (line 1 column 2)",
        ),
        (b'{"__metadata__": [1]}', "`__metadata__` is a JSON array, not a string-to-string object"),
        (
            b'{"__metadata__": {"k": 1}}',
            "`__metadata__` must map strings to strings, but 'k' maps to a JSON number",
        ),
        (b"\xff", "header is not valid UTF-8 (byte 0 of the header)"),
    ],
)
def test_unreadable_reasons(raw: bytes, reason: str) -> None:
    result = parse_header(raw)
    assert isinstance(result, Unreadable) and result.reason == reason


@pytest.mark.parametrize(
    ("entry", "errors"),
    [
        ('{"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}', ("unknown dtype 'F99'",)),
        (
            '{"dtype": "F32", "shape": [1, -0], "data_offsets": [0, 4]}',
            ("shape [1, -0] holds -0, not a non-negative integer",),
        ),
        (
            '{"dtype": "F32", "shape": 3, "data_offsets": [0, 4]}',
            ("shape is a JSON number, not a list of integers",),
        ),
        (
            '{"dtype": "F32", "shape": [1], "data_offsets": [0]}',
            ("data_offsets must be [begin, end], got 1 numbers",),
        ),
        ('{"dtype": "F32", "shape": [1]}', ("missing field 'data_offsets'",)),
        ('"F32"', ("entry is a JSON string, not an object",)),
    ],
)
def test_entry_errors_name_the_problem(entry: str, errors: tuple[str, ...]) -> None:
    result = parse_header(f'{{"t": {entry}}}'.encode())
    assert isinstance(result, Header)
    assert result.entries[0].name == "t" and result.entries[0].errors == errors
    assert "t" not in result.tensors


def _gc_state_while_parsing(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    seen: list[bool] = []
    loads = json.loads

    def watching(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return loads(*args, **kwargs)

    monkeypatch.setattr("sdlint.formats.safetensors.json.loads", watching)
    return seen


def test_garbage_collection_stays_on_while_other_threads_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The collector is process-wide: a parse in a worker thread (the language server's) must not
    switch it off under the other threads."""
    raw = json.dumps(header_for({f"t{i}": ("F32", (1,)) for i in range(5000)})[0]).encode()
    assert len(raw) > 100_000
    seen = _gc_state_while_parsing(raw, monkeypatch)
    worker = threading.Thread(target=parse_header, args=(raw,))
    worker.start()
    worker.join()
    assert seen == [True] and gc.isenabled()


def _entries_text(entries: list[tuple[str, str, list[int], list[int]]]) -> bytes:
    parts = [
        f'"{name}":{{"dtype":"{dtype}","shape":{json.dumps(shape)},'
        f'"data_offsets":{json.dumps(offsets)}}}'
        for name, dtype, shape, offsets in entries
    ]
    return ("{" + ",".join(parts) + "}").encode()


_LAYOUTS: dict[str, list[tuple[str, str, list[int], list[int]]]] = {
    "usual": [("a", "F32", [2], [0, 8]), ("b", "BF16", [3], [8, 14])],
    "out of order": [("b", "BF16", [3], [8, 14]), ("a", "F32", [2], [0, 8])],
    "empty tensors": [("a", "F32", [0], [0, 0]), ("b", "U8", [2], [0, 2])],
    "size mismatch": [("a", "F32", [2], [0, 6]), ("b", "U8", [2], [6, 8])],
    "gap": [("a", "F32", [2], [0, 8]), ("b", "U8", [2], [10, 12])],
    "overlap": [("a", "F32", [2], [0, 8]), ("b", "U8", [2], [6, 8])],
    "not from 0": [("a", "F32", [2], [4, 12])],
    "reversed": [("a", "F32", [2], [8, 0]), ("b", "U8", [8], [0, 8])],
    "sub-byte": [("a", "F4", [3], [0, 2])],
    "named twice": [("a", "F32", [2], [0, 8]), ("a", "F32", [2], [8, 16])],
    "overflow": [("a", "F32", [2**40, 2**40], [0, 8])],
}


@pytest.mark.parametrize("data_size", [0, 14, 16])
@pytest.mark.parametrize("layout", sorted(_LAYOUTS))
def test_the_usual_header_shortcuts_say_what_the_general_path_says(
    layout: str, data_size: int
) -> None:
    """`Header.usual` spares SD002 and SD003 a look at each entry: on any header, the problems
    found are those the general path finds (the shortcut off), in the same order."""
    from sdlint.formats.safetensors import entry_problems, layout_problems
    from sdlint.record import replace

    raw = _entries_text(_LAYOUTS[layout])
    header = parse_header(raw, file_size=8 + len(raw) + data_size)
    assert isinstance(header, Header)
    unusual_entries = ("size mismatch", "sub-byte", "named twice", "overflow")
    assert header.usual == (layout not in unusual_entries)
    general = replace(header, usual=False)
    assert general.tensors == header.tensors
    assert list(entry_problems(header)) == list(entry_problems(general))
    assert list(layout_problems(header)) == list(layout_problems(general))
