"""sdlint agrees with the reference reader: what `safetensors.safe_open` accepts lints free of
errors, what it rejects gets an error, on the same generated files; plus the exact codes."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open

from sdlint.diagnostic import Severity
from sdlint.engine import check_paths
from tests.safetensors_files import encode_header, header_for, write_raw

# The fuzzing entry point (SECURITY.md): SDLINT_FUZZ_EXAMPLES=N runs each property below N times
# instead of the bounded count CI runs.
FUZZ_EXAMPLES = int(os.environ.get("SDLINT_FUZZ_EXAMPLES", "0"))

BASE: dict[str, tuple[str, tuple[int, ...]]] = {"a": ("F32", (2, 2)), "b": ("I64", (3,))}


def reference_accepts(path: Path) -> bool:
    try:
        with safe_open(str(path), framework="numpy") as f:
            for key in f.keys():
                f.get_slice(key).get_shape()
    except Exception:
        return False
    return True


def lint(path: Path) -> tuple[set[str], set[str]]:
    """(error codes, warning codes) sdlint reports for one file."""
    diagnostics = check_paths([path]).diagnostics
    errors = {d.code for d in diagnostics if d.severity is Severity.ERROR}
    warnings = {d.code for d in diagnostics if d.severity is not Severity.ERROR}
    return errors, warnings


def base_header(**changes: Any) -> tuple[dict[str, Any], int]:
    header, size = header_for(BASE, {"format": "pt"})
    for name, entry in changes.items():
        if entry is None:
            header.pop(name)
        else:
            header[name] = entry
    return header, size


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Path], Path]
    errors: set[str]
    warnings: set[str]


def raw(header: Any, data_size: int | None = None, **kw: Any) -> Callable[[Path], Path]:
    def build(path: Path) -> Path:
        size = base_header()[1] if data_size is None else data_size
        return write_raw(path, header, b"\0" * size, **kw)

    return build


def file_bytes(content: bytes) -> Callable[[Path], Path]:
    def build(path: Path) -> Path:
        path.write_bytes(content)
        return path

    return build


def entry(dtype: Any, shape: Any, offsets: Any) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": offsets}


H, SIZE = base_header()
HEADER_TEXT = json.dumps(H)
LFS = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n"
)

CASES = [
    Case("valid", raw(H), set(), set()),
    Case("empty-header", raw({}, 0), set(), set()),
    Case("two-byte-file", file_bytes(b"\x01\x02"), {"SD001"}, set()),
    Case("length-2^40", raw(H, length=2**40), {"SD001"}, set()),
    Case("length-past-eof", raw(H, length=10_000), {"SD001"}, set()),
    Case("lfs-pointer", file_bytes(LFS), {"SD005"}, set()),
    Case("length-zero", raw(b"", 0), {"SD001"}, set()),
    Case("not-utf8", raw(b'{"a\xff": 1}'), {"SD001"}, set()),
    Case("not-json", raw(b"{not json}"), {"SD001"}, set()),
    Case("json-array", raw(b"[1, 2]"), {"SD001"}, set()),
    Case("nan", raw(b'{"x": NaN}'), {"SD001"}, set()),
    Case("bom", raw(b"\xef\xbb\xbf" + HEADER_TEXT.encode()), {"SD001"}, set()),
    Case("lone-surrogate", raw(HEADER_TEXT.replace('"pt"', '"\\ud800"')), {"SD001"}, set()),
    Case("deep-nesting", raw("[" * 10_000 + "]" * 10_000), {"SD001"}, set()),
    Case("metadata-not-str", raw(base_header(__metadata__={"n": 1})[0]), {"SD001"}, set()),
    Case(
        "metadata-null",
        raw(base_header(__metadata__=None)[0] | {"__metadata__": None}),
        set(),
        set(),
    ),
    Case(
        "metadata-twice",
        raw(HEADER_TEXT[:-1] + ', "__metadata__": {"x": "y"}}'),
        {"SD001"},
        set(),
    ),
    Case("unknown-dtype", raw(base_header(a=entry("F99", [2, 2], [0, 16]))[0]), {"SD002"}, set()),
    Case("negative-dim", raw(base_header(a=entry("F32", [2, -1], [0, 16]))[0]), {"SD002"}, set()),
    Case("float-dim", raw(base_header(a=entry("F32", [2, 2.0], [0, 16]))[0]), {"SD002"}, set()),
    Case("bool-dim", raw(base_header(a=entry("F32", [2, True], [0, 16]))[0]), {"SD002"}, set()),
    Case("negative-zero-dim", raw(HEADER_TEXT.replace("[2, 2]", "[2, -0]")), {"SD002"}, set()),
    Case("size-mismatch", raw(base_header(a=entry("F32", [2, 3], [0, 16]))[0]), {"SD002"}, set()),
    Case(
        "missing-field", raw(base_header(a={"dtype": "F32", "shape": [2, 2]})[0]), {"SD002"}, set()
    ),
    Case("entry-null", raw(base_header()[0] | {"a": None}), {"SD002"}, set()),
    Case(
        "field-twice",
        raw(HEADER_TEXT.replace('"dtype": "F32"', '"dtype": "F32", "dtype": "F32"')),
        {"SD002"},
        set(),
    ),
    Case(
        "offset-beyond-u64",
        raw(base_header(b=entry("I64", [3], [16, 2**64]))[0]),
        {"SD002"},
        set(),
    ),
    Case(
        "overflow",
        raw(base_header(c=entry("F32", [2**63, 2**63, 0], [40, 40]))[0]),
        {"SD002"},
        set(),
    ),
    Case(
        "no-overflow",
        raw(base_header(c=entry("F32", [0, 2**63, 2**63], [40, 40]))[0]),
        set(),
        set(),
    ),
    Case(
        "gap",
        raw(base_header(b=entry("I64", [3], [20, 44]))[0], SIZE + 4),
        {"SD003"},
        set(),
    ),
    Case("overlap", raw(base_header(b=entry("I64", [3], [12, 36]))[0], SIZE - 4), {"SD003"}, set()),
    Case("not-from-zero", raw(base_header(a=None)[0], SIZE), {"SD003"}, set()),
    Case("end-before-begin", raw(base_header(b=entry("I64", [0], [16, 8]))[0]), {"SD003"}, set()),
    Case("truncated", raw(H, SIZE - 4), {"SD003"}, set()),
    Case("trailing-bytes", raw(H, SIZE + 4), {"SD003"}, set()),
    Case("f4-odd", raw({"a": entry("F4", [3], [0, 2])}, 2), {"SD002"}, set()),
    Case(
        "small-floats",
        raw(
            {
                "a": entry("F4", [4], [0, 2]),
                "b": entry("F8_E4M3", [2], [2, 4]),
                "c": entry("F6_E2M3", [4], [4, 7]),
                "d": entry("F32", [], [7, 11]),
                "e": entry("F32", [0, 3], [11, 11]),
            },
            11,
        ),
        set(),
        set(),
    ),
    Case(
        "zero-sized-pair",
        raw({"a": entry("F32", [0], [0, 0]), "b": entry("F32", [0], [0, 0])}, 0),
        set(),
        set(),
    ),
    Case(
        "duplicate-identical",
        raw(HEADER_TEXT[:-1] + ', "a": ' + json.dumps(H["a"]) + "}"),
        set(),
        {"SD002"},
    ),
    Case(
        "duplicate-other-dtype-same-bytes",
        raw(HEADER_TEXT[:-1] + ', "a": ' + json.dumps(entry("I32", [2, 2], [0, 16])) + "}"),
        set(),
        {"SD002"},
    ),
    Case(
        "duplicate-other-offsets",
        raw(
            HEADER_TEXT[:-1] + ', "a": ' + json.dumps(entry("F32", [2, 2], [40, 56])) + "}",
            SIZE + 16,
        ),
        {"SD003"},
        {"SD002"},
    ),
    Case(
        "unknown-field",
        raw(base_header(a=entry("F32", [2, 2], [0, 16]) | {"x": 1})[0]),
        set(),
        {"SD002"},
    ),
    Case("entry-as-array", raw(base_header(a=["F32", [2, 2], [0, 16]])[0]), set(), {"SD002"}),
    Case(
        "dtype-as-object",
        raw(base_header(a=entry({"F32": None}, [2, 2], [0, 16]))[0]),
        set(),
        {"SD002"},
    ),
    Case(
        "empty-name",
        raw(base_header(a=None)[0] | {"": entry("F32", [2, 2], [0, 16])}),
        set(),
        set(),
    ),
    Case("leading-spaces", raw("  " + HEADER_TEXT), set(), {"SD001"}),
    Case(
        "padded-tab-newline",
        raw(HEADER_TEXT.encode() + b"\t\n", pad=False),
        set(),
        {"SD001", "SD003"},
    ),
    Case("padded-nul", raw(HEADER_TEXT.encode() + b"\0\0"), {"SD001"}, set()),
    Case("unpadded", raw(HEADER_TEXT + " ", pad=False), set(), {"SD003"}),
]


def test_cases_cover_both_verdicts() -> None:
    assert any(c.errors for c in CASES) and any(not c.errors for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_reference_agreement(case: Case, tmp_path: Path) -> None:
    path = case.build(tmp_path / "model.safetensors")
    errors, warnings = lint(path)
    assert (errors, warnings) == (case.errors, case.warnings)
    assert reference_accepts(path) == (not errors)


# --- property-based: random and mutated headers never crash, and agree with the reference --------

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 2**65),
    st.floats(allow_nan=False),
    st.text(max_size=4),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)
dtypes = st.sampled_from(["F32", "F16", "BF16", "I64", "F4", "F6_E3M2", "U8", "BOOL", "F99", "f32"])
shapes = st.lists(st.integers(0, 5), max_size=3)


@st.composite
def plausible_header(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A header that is valid or close to it, and data bytes roughly the right size."""
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "d.weight"]), max_size=4))
    header: dict[str, Any] = {}
    offset = 0
    for name in names:
        dtype = draw(dtypes)
        shape = draw(shapes)
        numel = 1
        for d in shape:
            numel *= d
        nbytes = (
            numel
            * {"F4": 4, "F6_E3M2": 6, "U8": 8, "BOOL": 8, "F16": 16, "BF16": 16}.get(dtype, 32)
            + 7
        ) // 8
        nbytes += draw(st.sampled_from([0, 0, 0, 1, -1]))
        nbytes = max(nbytes, 0)
        header[name] = entry(dtype, shape, [offset, offset + nbytes])
        offset += nbytes
    if draw(st.booleans()):
        header["__metadata__"] = draw(
            st.dictionaries(st.text(max_size=3), st.text(max_size=3) | st.integers(), max_size=2)
        )
    data_size = max(0, offset + draw(st.sampled_from([0, 0, 0, 1, -1])))
    return encode_header(header, pad=draw(st.booleans())), b"\0" * data_size


@settings(
    max_examples=FUZZ_EXAMPLES or 150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    case=plausible_header(),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=2),
)
def test_mutated_headers_agree_with_reference(
    case: tuple[bytes, bytes], flips: list[tuple[int, int]], tmp_path: Path
) -> None:
    header, data = case
    content = bytearray(struct.pack("<Q", len(header)) + header + data)
    for position, value in flips:
        if content:
            content[position % len(content)] = value
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(bytes(content))
    errors, _ = lint(path)
    assert reference_accepts(path) == (not errors), (bytes(content), errors)


@settings(
    max_examples=FUZZ_EXAMPLES or 100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(document=json_value)
def test_arbitrary_json_header_never_crashes(document: Any, tmp_path: Path) -> None:
    path = write_raw(tmp_path / "any.safetensors", json.dumps(document))
    errors, _ = lint(path)
    assert reference_accepts(path) == (not errors)


@settings(
    max_examples=FUZZ_EXAMPLES or 100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(content=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "bytes.safetensors"
    path.write_bytes(content)
    errors, _ = lint(path)
    assert reference_accepts(path) == (not errors)
