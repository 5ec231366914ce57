"""sdlint.rewrite: renames, drops, replacements and additions produce the file the safetensors
library would have written, keep every other byte, and refuse bad plans without touching the file.

The oracle for "what is in the file" is an independent eight-line parser (`_parse`) plus
`safetensors.safe_open`, never sdlint's own reader, except where the point is that it agrees.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import save, save_file

from sdlint import rewrite
from sdlint.formats.safetensors import Header, read_header
from sdlint.rewrite import (
    NewTensor,
    RewriteError,
    RewritePlan,
    rewrite_safetensors,
    write_text_atomic,
)

Array = npt.NDArray[Any]


def _f32(*shape: int, start: float = 0.0) -> Array:
    return np.arange(start, start + int(np.prod(shape)), dtype=np.float32).reshape(shape)


def _parse(path: Path) -> tuple[dict[str, Any], bytes, int]:
    """(header JSON in file order, data section, header length N), read without sdlint."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n]), raw[8 + n :], n


def _tensor_bytes(path: Path) -> dict[str, bytes]:
    """Each tensor's raw bytes, in header order."""
    header, data, _ = _parse(path)
    return {
        name: data[entry["data_offsets"][0] : entry["data_offsets"][1]]
        for name, entry in header.items()
        if name != "__metadata__"
    }


def _data_order(path: Path) -> list[str]:
    header, _, _ = _parse(path)
    entries = [(v["data_offsets"], k) for k, v in header.items() if k != "__metadata__"]
    return [name for _, name in sorted(entries, key=lambda item: item[0])]


def _loaded(path: Path) -> tuple[dict[str, bytes], dict[str, str] | None]:
    """What safetensors itself reads back: tensor bytes by name, and the metadata."""
    with safe_open(str(path), framework="numpy") as f:
        tensors = {name: f.get_tensor(name).tobytes() for name in f.keys()}
        return tensors, f.metadata()


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    """Three F32 tensors named so that safetensors' own order is also alphabetical."""
    path = tmp_path / "model.safetensors"
    save_file(
        {"a.weight": _f32(2, 3), "b.weight": _f32(4, start=10), "c.bias": _f32(3, start=20)},
        str(path),
        metadata={"format": "pt"},
    )
    return path


# --- the result is what safetensors would have written --------------------------------------------


def test_adding_a_prefix_gives_the_bytes_safetensors_writes(ckpt: Path) -> None:
    before = _tensor_bytes(ckpt)
    result = rewrite_safetensors(
        ckpt, RewritePlan(renames={name: f"module.{name}" for name in before})
    )
    expected = save(
        {
            "module.a.weight": _f32(2, 3),
            "module.b.weight": _f32(4, start=10),
            "module.c.bias": _f32(3, start=20),
        },
        metadata={"format": "pt"},
    )
    assert ckpt.read_bytes() == expected
    assert (result.changed, result.renamed, result.dropped, result.backup) == (True, 3, 0, None)
    assert result.new_size == len(expected)


def test_stripping_a_prefix_with_awkward_names_gives_the_safetensors_bytes(tmp_path: Path) -> None:
    # Non-ASCII, a newline, a quote and a backslash: the JSON escaping must match serde_json's.
    names = ["é.w", 'q"uote', "new\nline", "back\\slash", "\u2028sep"]
    tensors = {f"module.{n}": _f32(i + 1, start=i) for i, n in enumerate(names)}
    path = tmp_path / "m.safetensors"
    # One metadata key: safetensors writes several in hash order, which no writer can match.
    save_file(tensors, str(path), metadata={"nöte\n": "ü\x01\x7f"})
    rewrite_safetensors(path, RewritePlan(renames={f"module.{n}": n for n in names}))
    expected = save(
        {n: _f32(i + 1, start=i) for i, n in enumerate(names)}, metadata={"nöte\n": "ü\x01\x7f"}
    )
    assert path.read_bytes() == expected


def test_dropping_gives_the_safetensors_bytes(ckpt: Path) -> None:
    result = rewrite_safetensors(ckpt, RewritePlan(drops=frozenset({"b.weight"})))
    expected = save(
        {"a.weight": _f32(2, 3), "c.bias": _f32(3, start=20)}, metadata={"format": "pt"}
    )
    assert ckpt.read_bytes() == expected
    assert result.dropped == 1


def test_replacing_with_another_shape_gives_the_safetensors_bytes(ckpt: Path) -> None:
    head = np.full((2, 5), 0.5, dtype=np.float32)
    result = rewrite_safetensors(
        ckpt,
        RewritePlan(replacements={"b.weight": NewTensor("F32", head.shape, head.tobytes())}),
    )
    expected = save(
        {"a.weight": _f32(2, 3), "b.weight": head, "c.bias": _f32(3, start=20)},
        metadata={"format": "pt"},
    )
    assert ckpt.read_bytes() == expected
    assert (result.replaced, result.added) == (1, 0)


def test_a_streamed_tensor_gives_the_same_bytes(ckpt: Path, tmp_path: Path) -> None:
    """A new tensor given as chunks (of any sizes) is written exactly as the same bytes given
    whole, and the chunks are asked for only while the file is written."""
    head = np.arange(10, dtype=np.float32).reshape(2, 5)
    whole = tmp_path / "whole.safetensors"
    whole.write_bytes(ckpt.read_bytes())
    rewrite_safetensors(
        whole, RewritePlan(replacements={"b.weight": NewTensor("F32", (2, 5), head.tobytes())})
    )
    asked = []

    def chunks() -> list[bytes]:
        asked.append(True)
        raw = head.tobytes()
        return [raw[:3], b"", raw[3:17], raw[17:]]

    plan = RewritePlan(replacements={"b.weight": NewTensor("F32", (2, 5), chunks)})
    assert asked == []
    rewrite_safetensors(ckpt, plan)
    assert asked == [True]
    assert ckpt.read_bytes() == whole.read_bytes()


@pytest.mark.parametrize(
    ("chunks", "fragment"),
    [
        ([bytes(39)], "was 39 bytes, not the 40 bytes"),
        ([bytes(40), b"\0"], "was more than the 40 bytes"),
    ],
)
def test_streamed_data_of_the_wrong_size_is_refused(
    ckpt: Path, chunks: list[bytes], fragment: str
) -> None:
    plan = RewritePlan(replacements={"b.weight": NewTensor("F32", (2, 5), lambda: chunks)})
    _assert_refused(ckpt, plan, "tensor 'b.weight'", fragment)


def test_adding_goes_at_the_end_and_gives_the_safetensors_bytes(ckpt: Path) -> None:
    extra = np.array([1, -2, 3], dtype=np.float32)
    result = rewrite_safetensors(
        ckpt, RewritePlan(replacements={"d.extra": NewTensor("F32", (3,), extra.tobytes())})
    )
    expected = save(
        {"a.weight": _f32(2, 3), "b.weight": _f32(4, start=10), "c.bias": _f32(3, start=20)}
        | {"d.extra": extra},
        metadata={"format": "pt"},
    )
    assert ckpt.read_bytes() == expected
    assert (result.replaced, result.added) == (0, 1)


def test_no_metadata_stays_no_metadata(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"a": _f32(2), "b": _f32(3)}, str(path))
    rewrite_safetensors(path, RewritePlan(drops=frozenset({"a"})))
    assert path.read_bytes() == save({"b": _f32(3)})


# --- order, metadata, alignment -------------------------------------------------------------------


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Mixed dtypes: safetensors orders data by alignment then name, so data order != name order."""
    path = tmp_path / "mixed.safetensors"
    save_file(
        {
            "z.i8": np.arange(5, dtype=np.int8),
            "m.f64": np.arange(3, dtype=np.float64),
            "a.f16": np.arange(4, dtype=np.float16),
            "k.i64": np.arange(2, dtype=np.int64),
            "empty": np.zeros((0, 3), dtype=np.float32),
            "b.u8": np.arange(7, dtype=np.uint8),
        },
        str(path),
        metadata={"z": "1", "a": "2", "format": "pt"},
    )
    return path


def test_renamed_tensors_keep_their_place_in_the_data(mixed: Path) -> None:
    order = _data_order(mixed)
    before = _tensor_bytes(mixed)
    # "z.i8" -> "0.first" would sort first if the writer re-sorted by name; it must not move.
    renames = {"z.i8": "0.first", "m.f64": "zz.last", "b.u8": "k.i64", "k.i64": "b.u8"}
    rewrite_safetensors(mixed, RewritePlan(renames=renames))
    assert _data_order(mixed) == [renames.get(n, n) for n in order]
    after = _tensor_bytes(mixed)
    assert list(after) == _data_order(mixed), "the header lists tensors in data order"
    assert {renames.get(n, n): b for n, b in before.items()} == after
    loaded, _ = _loaded(mixed)
    assert loaded == after


def test_replacement_takes_the_place_of_what_it_replaces(mixed: Path) -> None:
    order = _data_order(mixed)
    middle = order[2]
    new = np.arange(6, dtype=np.int32).reshape(3, 2)  # another dtype and shape
    rewrite_safetensors(
        mixed, RewritePlan(replacements={middle: NewTensor("I32", (3, 2), new.tobytes())})
    )
    assert _data_order(mixed) == order
    header, _, _ = _parse(mixed)
    assert (header[middle]["dtype"], header[middle]["shape"]) == ("I32", [3, 2])
    loaded, _ = _loaded(mixed)
    assert loaded[middle] == new.tobytes()


def test_metadata_is_kept_with_its_key_order(mixed: Path) -> None:
    before_header, _, _ = _parse(mixed)
    rewrite_safetensors(mixed, RewritePlan(drops=frozenset({"a.f16"})))
    after_header, _, _ = _parse(mixed)
    assert next(iter(after_header)) == "__metadata__"
    assert list(after_header["__metadata__"].items()) == list(before_header["__metadata__"].items())
    assert _loaded(mixed)[1] == before_header["__metadata__"]


@pytest.mark.parametrize("length", range(1, 9))
def test_header_padding_matches_safetensors_for_every_length(tmp_path: Path, length: int) -> None:
    # Name lengths 1..8 shift the header length through every residue mod 8, padding included.
    path = tmp_path / "m.safetensors"
    save_file({"a": _f32(2)}, str(path))
    extra = np.array([length], dtype=np.float32)
    name = "b" * length
    rewrite_safetensors(
        path, RewritePlan(replacements={name: NewTensor("F32", (1,), extra.tobytes())})
    )
    assert path.read_bytes() == save({"a": _f32(2), name: extra})


def test_header_is_padded_with_spaces_to_eight_bytes(tmp_path: Path) -> None:
    paddings = set()
    for length in range(1, 9):
        path = tmp_path / f"m{length}.safetensors"
        save_file({"a": _f32(2)}, str(path))
        rewrite_safetensors(path, RewritePlan(renames={"a": "a" * length}))
        raw = path.read_bytes()
        n = int.from_bytes(raw[:8], "little")
        text = raw[8 : 8 + n]
        assert n % 8 == 0
        assert text.startswith(b"{")
        assert text.rstrip(b" ").endswith(b"}")
        paddings.add(len(text) - len(text.rstrip(b" ")))
    assert paddings == set(range(8))


def test_data_order_wins_over_header_order(tmp_path: Path) -> None:
    # Valid for the reference reader, which sorts entries by offset: JSON order b, e, a, z but
    # data order a, e (empty, at the same offset as b), b, z.
    header = {
        "b": {"dtype": "U8", "shape": [2], "data_offsets": [3, 5]},
        "e": {"dtype": "F32", "shape": [0], "data_offsets": [3, 3]},
        "a": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]},
        "z": {"dtype": "U8", "shape": [1], "data_offsets": [5, 6]},
    }
    path = tmp_path / "m.safetensors"
    path.write_bytes(_raw_checkpoint(header, b"AAABBZ"))
    rewrite_safetensors(path, RewritePlan(renames={"z": "0"}))
    assert _data_order(path) == ["a", "e", "b", "0"]
    assert list(_tensor_bytes(path).items()) == [
        ("a", b"AAA"),
        ("e", b""),
        ("b", b"BB"),
        ("0", b"Z"),
    ]


def test_sdlint_reader_agrees_with_the_result(mixed: Path) -> None:
    rewrite_safetensors(
        mixed,
        RewritePlan(
            renames={"a.f16": "A"},
            drops=frozenset({"b.u8"}),
            replacements={"new": NewTensor("BF16", (2,), b"\x00\x01\x02\x03")},
        ),
    )
    header = read_header(mixed)
    assert isinstance(header, Header)
    assert header.warnings == ()
    assert all(not e.errors and not e.warnings for e in header.entries)
    raw_header, _, n = _parse(mixed)
    assert header.header_size == n
    assert header.metadata == raw_header["__metadata__"]
    assert [
        (t.name, t.dtype, list(t.shape), [t.begin, t.end]) for t in header.tensors.values()
    ] == [
        (k, v["dtype"], v["shape"], v["data_offsets"])
        for k, v in raw_header.items()
        if k != "__metadata__"
    ]


def test_sub_byte_dtype_replacement(ckpt: Path) -> None:
    rewrite_safetensors(
        ckpt, RewritePlan(replacements={"b.weight": NewTensor("F4", (2, 2), b"\x12\x34")})
    )
    header, _, _ = _parse(ckpt)
    assert header["b.weight"] == {"dtype": "F4", "shape": [2, 2], "data_offsets": [24, 26]}
    assert _tensor_bytes(ckpt)["b.weight"] == b"\x12\x34"


def test_tensors_larger_than_the_buffer_are_copied_in_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 7-byte buffer: every chunk boundary falls mid-element and mid-tensor.
    monkeypatch.setattr(rewrite, "CHUNK_SIZE", 7)
    path = tmp_path / "m.safetensors"
    rng = np.random.default_rng(0)
    tensors = {f"t{i}": rng.standard_normal(50 + i).astype(np.float32) for i in range(5)}
    save_file(tensors, str(path))
    before = _tensor_bytes(path)
    rewrite_safetensors(path, RewritePlan(drops=frozenset({"t2"}), renames={"t4": "u4"}))
    names = {"t0": "t0", "t1": "t1", "t3": "t3", "t4": "u4"}
    assert _tensor_bytes(path) == {new: before[old] for old, new in names.items()}


def test_a_plan_that_changes_nothing_leaves_the_file_alone(ckpt: Path) -> None:
    before = ckpt.stat()
    result = rewrite_safetensors(ckpt, RewritePlan(renames={"a.weight": "a.weight"}))
    after = ckpt.stat()
    assert not result.changed
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_plan_is_a_snapshot_of_the_callers_containers(ckpt: Path) -> None:
    renames = {"a.weight": "x"}
    plan = RewritePlan(renames=renames)
    renames["b.weight"] = "y"
    rewrite_safetensors(ckpt, plan)
    assert list(_tensor_bytes(ckpt)) == ["x", "b.weight", "c.bias"]


# --- refusals -------------------------------------------------------------------------------------


def _assert_refused(path: Path, plan: RewritePlan, *fragments: str) -> None:
    before = path.read_bytes()
    listing = _files(path.parent)
    with pytest.raises(RewriteError) as info:
        rewrite_safetensors(path, plan)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"cannot rewrite {path}: ")
    assert message.endswith("; the original is intact")
    for fragment in fragments:
        assert fragment in message
    assert path.read_bytes() == before
    assert _files(path.parent) == listing


@pytest.mark.parametrize(
    ("plan", "fragments"),
    [
        (RewritePlan(renames={"nope": "x"}), ["cannot rename 'nope'", "no such tensor"]),
        (RewritePlan(drops=frozenset({"nope"})), ["cannot drop 'nope'"]),
        (RewritePlan(renames={"a.weight": "b.weight"}), ["two tensors would be named 'b.weight'"]),
        (
            RewritePlan(renames={"a.weight": "x", "b.weight": "x"}),
            ["two tensors would be named 'x'"],
        ),
        (
            RewritePlan(renames={"a.weight": "x"}, drops=frozenset({"a.weight"})),
            ["'a.weight' is both renamed and dropped"],
        ),
        (
            RewritePlan(
                drops=frozenset({"a.weight"}),
                replacements={"a.weight": NewTensor("F32", (1,), bytes(4))},
            ),
            ["both dropped and replaced"],
        ),
        (
            RewritePlan(replacements={"b.weight": NewTensor("F32", (2, 5), bytes(39))}),
            ["data is 39 bytes but a F32 tensor of shape [2, 5] takes 40"],
        ),
        (
            RewritePlan(replacements={"b.weight": NewTensor("F99", (1,), bytes(4))}),
            ["unknown dtype 'F99'"],
        ),
        (
            RewritePlan(replacements={"b.weight": NewTensor("F4", (3,), bytes(2))}),
            ["does not fill whole bytes"],
        ),
        (
            RewritePlan(replacements={"b.weight": NewTensor("F32", (-1,), bytes(4))}),
            ["not a list of non-negative integers"],
        ),
        (RewritePlan(renames={"a.weight": "__metadata__"}), ["reserved for the metadata"]),
        (
            RewritePlan(renames={"nope": "x", "a.weight": "c.bias"}, drops=frozenset({"zz"})),
            ["(and 2 more problems)"],
        ),
    ],
)
def test_bad_plans_are_refused(ckpt: Path, plan: RewritePlan, fragments: list[str]) -> None:
    _assert_refused(ckpt, plan, *fragments)


def test_a_name_with_a_newline_keeps_the_message_on_one_line(ckpt: Path) -> None:
    _assert_refused(ckpt, RewritePlan(drops=frozenset({"bad\nname"})), "'bad\\nname'")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\x05\x00\x00\x00\x00\x00\x00\x00{oops", "its header cannot be read"),
        (b"not a checkpoint at all", "its header cannot be read"),
        (
            b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 12\n",
            "Git LFS pointer",
        ),
    ],
)
def test_unreadable_files_are_refused(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(content)
    _assert_refused(path, RewritePlan(drops=frozenset({"a"})), fragment)


def _raw_checkpoint(header: Mapping[str, object], data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


@pytest.mark.parametrize(
    ("header", "data", "fragment"),
    [
        # a gap between two tensors
        (
            {
                "a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                "b": {"dtype": "U8", "shape": [2], "data_offsets": [3, 5]},
            },
            bytes(5),
            "bytes [2, 3) of the data section belong to no tensor",
        ),
        # a size that does not match dtype and shape
        (
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}},
            bytes(4),
            "needs 8 bytes, but its data_offsets [0, 4] span 4",
        ),
        # trailing bytes after the last tensor
        (
            {"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}},
            bytes(3),
            "1 bytes after the last tensor belong to no tensor",
        ),
        # a tensor entry with a missing field
        ({"a": {"dtype": "U8", "shape": [2]}}, bytes(2), "missing field 'data_offsets'"),
    ],
)
def test_structurally_invalid_files_are_refused(
    tmp_path: Path, header: Mapping[str, object], data: bytes, fragment: str
) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(_raw_checkpoint(header, data))
    _assert_refused(path, RewritePlan(renames={"a": "x"}), "not a valid safetensors file", fragment)


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    text = (
        b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
        b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}'
    )
    path = tmp_path / "m.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text + b"\x01\x02")
    _assert_refused(path, RewritePlan(renames={"a": "b"}), "'a' appears twice")


def test_symlinks_are_refused(ckpt: Path) -> None:
    link = ckpt.with_name("link.safetensors")
    link.symlink_to(ckpt.name)
    before = ckpt.read_bytes()
    with pytest.raises(RewriteError, match="symbolic link"):
        rewrite_safetensors(link, RewritePlan(drops=frozenset({"a.weight"})))
    assert link.is_symlink()
    assert ckpt.read_bytes() == before


def test_missing_files_and_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RewriteError, match="does not exist; nothing was written"):
        rewrite_safetensors(tmp_path / "nope.safetensors", RewritePlan())
    with pytest.raises(RewriteError, match="not a regular file"):
        rewrite_safetensors(tmp_path, RewritePlan())


# --- backups and permissions ----------------------------------------------------------------------


def test_backup_keeps_the_original_and_never_clobbers_one(ckpt: Path) -> None:
    original = ckpt.read_bytes()
    taken = ckpt.with_name(ckpt.name + ".bak")
    taken.write_bytes(b"someone else's backup")

    first = rewrite_safetensors(ckpt, RewritePlan(drops=frozenset({"a.weight"})), backup=True)
    assert first.backup == ckpt.with_name("model.safetensors.bak.1")
    assert first.backup.read_bytes() == original
    assert taken.read_bytes() == b"someone else's backup"

    second_original = ckpt.read_bytes()
    second = rewrite_safetensors(ckpt, RewritePlan(drops=frozenset({"b.weight"})), backup=True)
    assert second.backup == ckpt.with_name("model.safetensors.bak.2")
    assert second.backup.read_bytes() == second_original
    assert first.backup.read_bytes() == original
    assert list(_tensor_bytes(ckpt)) == ["c.bias"]


def test_backup_is_copied_where_hard_links_are_not_supported(
    ckpt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    ckpt.chmod(0o640)
    original = ckpt.read_bytes()
    monkeypatch.setattr(os, "link", no_links)
    result = rewrite_safetensors(ckpt, RewritePlan(drops=frozenset({"a.weight"})), backup=True)
    assert result.backup == ckpt.with_name("model.safetensors.bak")
    assert result.backup.read_bytes() == original
    assert stat.S_IMODE(result.backup.stat().st_mode) == 0o640
    assert result.backup.stat().st_ino != ckpt.stat().st_ino


def test_no_backup_unless_asked(ckpt: Path) -> None:
    rewrite_safetensors(ckpt, RewritePlan(drops=frozenset({"a.weight"})))
    assert _files(ckpt.parent) == ["model.safetensors"]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o604, 0o755])
def test_permission_bits_are_kept(ckpt: Path, mode: int) -> None:
    ckpt.chmod(mode)
    rewrite_safetensors(ckpt, RewritePlan(drops=frozenset({"a.weight"})))
    assert stat.S_IMODE(ckpt.stat().st_mode) == mode


# --- write_text_atomic ----------------------------------------------------------------------------


def test_write_text_creates_a_new_file_with_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    old = os.umask(0o027)
    try:
        assert write_text_atomic(path, '{"a": 1}\n', backup=True) is None
    finally:
        os.umask(old)
    assert path.read_bytes() == b'{"a": 1}\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert _files(tmp_path) == ["config.json"]


def test_write_text_replaces_keeping_mode_and_backup(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"old": true}')
    path.chmod(0o604)
    kept = write_text_atomic(path, '{"new": "ü"}\r\n', backup=True)
    assert kept == tmp_path / "config.json.bak"
    assert kept.read_text() == '{"old": true}'
    assert path.read_bytes() == '{"new": "ü"}\r\n'.encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o604
    assert _files(tmp_path) == ["config.json", "config.json.bak"]


def test_write_text_refuses_unencodable_text_and_symlinks(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    with pytest.raises(RewriteError, match=r"cannot be written as UTF-8.*nothing was written$"):
        write_text_atomic(path, "lone \udc80 surrogate")
    assert not path.exists()
    path.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(path.name)
    with pytest.raises(RewriteError, match="symbolic link"):
        write_text_atomic(link, "[]")
    assert path.read_text() == "{}"
    assert _files(tmp_path) == ["config.json", "link.json"]


# --- property: whatever the plan, untouched tensors are bit-identical -----------------------------

_DTYPES = {
    "F16": np.float16,
    "F32": np.float32,
    "F64": np.float64,
    "I8": np.int8,
    "I16": np.int16,
    "I32": np.int32,
    "I64": np.int64,
    "U8": np.uint8,
    "U16": np.uint16,
    "U32": np.uint32,
    "U64": np.uint64,
}


@st.composite
def _tensor(draw: st.DrawFn) -> tuple[str, tuple[int, ...], bytes]:
    dtype = draw(st.sampled_from(sorted(_DTYPES)))
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    size = int(np.prod(shape)) * np.dtype(_DTYPES[dtype]).itemsize
    return dtype, shape, draw(st.binary(min_size=size, max_size=size))


@st.composite
def _case(
    draw: st.DrawFn,
) -> tuple[dict[str, tuple[str, tuple[int, ...], bytes]], dict[str, str], RewritePlan]:
    names = draw(
        st.lists(st.text("abc.", min_size=1, max_size=4), min_size=1, max_size=7, unique=True)
    )
    tensors = {name: draw(_tensor()) for name in names}
    metadata = draw(st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=3))
    renames: dict[str, str] = {}
    drops: set[str] = set()
    replacements: dict[str, NewTensor] = {}
    for i, name in enumerate(names):
        action = draw(st.sampled_from(["keep", "keep", "drop", "rename", "replace", "both"]))
        new_name = f"X{i}" if action in ("rename", "both") else name
        if action == "drop":
            drops.add(name)
        if new_name != name:
            renames[name] = new_name
        if action in ("replace", "both"):
            replacements[new_name] = NewTensor(*draw(_tensor()))
    untouched = [n for n in names if n not in drops and n not in renames and n not in replacements]
    if len(untouched) >= 2 and draw(st.booleans()):  # swap two names
        renames[untouched[0]], renames[untouched[1]] = untouched[1], untouched[0]
    for j in range(draw(st.integers(0, 2))):
        replacements[f"Y{j}"] = NewTensor(*draw(_tensor()))
    return tensors, metadata, RewritePlan(renames, frozenset(drops), replacements)


@settings(max_examples=150, deadline=None)
@given(_case())
def test_random_plans_keep_untouched_tensors_bit_identical(
    case: tuple[dict[str, tuple[str, tuple[int, ...], bytes]], dict[str, str], RewritePlan],
) -> None:
    tensors, metadata, plan = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.safetensors"
        save_file(
            {
                name: np.frombuffer(data, dtype=_DTYPES[dtype]).reshape(shape)
                for name, (dtype, shape, data) in tensors.items()
            },
            str(path),
            metadata=metadata or None,
        )
        order = _data_order(path)
        result = rewrite_safetensors(path, plan)

        expected: list[tuple[str, str, tuple[int, ...], bytes]] = []
        for old in order:
            if old in plan.drops:
                continue
            new = plan.renames.get(old, old)
            source = plan.replacements.get(new)
            if source is None:
                expected.append((new, *tensors[old]))
            else:
                expected.append((new, source.dtype, source.shape, b"".join(source.chunks())))
        kept_names = {name for name, *_ in expected}
        expected += [
            (name, t.dtype, t.shape, b"".join(t.chunks()))
            for name, t in plan.replacements.items()
            if name not in kept_names
        ]

        header, _, n = _parse(path)
        got_bytes = _tensor_bytes(path)
        assert [
            (name, header[name]["dtype"], tuple(header[name]["shape"]), got_bytes[name])
            for name in _data_order(path)
        ] == expected
        assert list(got_bytes) == _data_order(path)
        assert n % 8 == 0
        raw_header = path.read_bytes()[8 : 8 + n]
        assert len(raw_header) - len(raw_header.rstrip(b" ")) < 8
        assert header.get("__metadata__") == (metadata or None)
        loaded, loaded_metadata = _loaded(path)
        assert loaded == {name: data for name, _, _, data in expected}
        assert loaded_metadata == (metadata or None)
        sdlint_view = read_header(path)
        assert isinstance(sdlint_view, Header) and sdlint_view.warnings == ()
        assert result.changed == bool(
            plan.drops or plan.replacements or any(k != v for k, v in plan.renames.items())
        )
        assert _files(Path(folder)) == ["m.safetensors"]
