"""The safetensors format: read a header without touching the tensor data.

The format: an 8-byte little-endian u64 `N`, then `N` bytes of UTF-8 JSON (tensor name ->
`{dtype, shape, data_offsets}` plus an optional `__metadata__` string map), then the data.

Why a hand-written reader rather than `safetensors.safe_open`: precision, not speed. `safe_open`
stops at the first problem with a message that often names no tensor, and needs numpy or torch
imported; this reader costs one `stat` and two reads (8 + N bytes), never allocates more than the
header, and records *every* problem with the tensor it belongs to, so the rules can report them
all. Speed is on par (benchmarks/header_read.py: 0.5-1.0x of safe_open in process, 0.5-0.9x for a
whole `sdlint check` process against a script that only opens the file). It follows the reference
reader (safetensors/src/tensor.rs `read_metadata`, `validate`) check for check; the tests hold it
to `safe_open`'s verdict on the same files.

The reader reads through a `Source` (sdlint/sources/) and records facts: a `Header` (every entry
as written, and the well-formed ones as `TensorInfo`, the format-neutral `Tensor` with its byte
span), or why there is none (`Unreadable`, `LfsPointer`). `entry_problems` and
`layout_problems` hold a header to the reference reader's structural rules, for
rules/integrity.py (SD002, SD003) and for the rewriter, which refuses to rewrite, and verifies
what it wrote by, the same verdict.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
from collections.abc import Iterable, Iterator
from functools import cached_property
from itertools import chain
from operator import le
from pathlib import Path

from sdlint import memo
from sdlint.dtypes import DTYPE_BITS, USIZE_LIMIT, is_uint, shape_text, tensor_bits
from sdlint.formats import SAFETENSORS, LfsPointer, Tensor, Unreadable
from sdlint.record import record, replace
from sdlint.sources import FileRef, ReadError, Source
from sdlint.sources.local import LocalFile

TYPE_CHECKING = False  # typing is not imported at run time (a check has no use for it)
if TYPE_CHECKING:
    from typing import Any

WEIGHTS_SUFFIX = ".safetensors"
# Index names, plain or a variant's (`model.safetensors.index.fp16.json`): formats/names.py.

# The reference reader refuses larger headers (safetensors `MAX_HEADER_SIZE`); we refuse them before
# allocating anything.
MAX_HEADER_SIZE = 100_000_000
LENGTH_PREFIX = 8
LFS_SIGNATURE = b"version https://git-lfs.github.com/spec/v1"
_LFS_MAX_SIZE = 1024  # a pointer is ~130 bytes; anything much larger is not one
_JSON_WHITESPACE = " \t\n\r"
_ENTRY_FIELDS = ("dtype", "shape", "data_offsets")


@record
class TensorInfo(Tensor):
    """A well-formed tensor entry. `begin`/`end` are relative to the start of the data section."""

    begin: int
    end: int

    @property
    def span(self) -> tuple[int, int] | None:
        return (self.begin, self.end)


@record
class TensorEntry:
    """One tensor entry as written, well-formed or not.

    `errors` are reasons the reference reader rejects the entry; `warnings` are departures from the
    written format that the reference reader accepts. A field that could not be read is None.
    """

    name: str
    dtype: str | None
    shape: tuple[int, ...] | None
    offsets: tuple[int, int] | None
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def info(self) -> TensorInfo | None:
        if self.errors or self.dtype is None or self.shape is None or self.offsets is None:
            return None
        return TensorInfo(self.name, self.dtype, self.shape, *self.offsets)


@record
class Header:
    """A safetensors header that parsed as a JSON object of the right shape."""

    path: FileRef
    file_size: int
    header_size: int  # N, the length of the JSON text
    entries: tuple[TensorEntry, ...]  # JSON order, duplicates included
    metadata: dict[str, str] | None
    warnings: tuple[str, ...] = ()  # file-level departures from the written format (SD001 warnings)
    # False when the file's size could not be known (a remote server that gave none): `file_size`
    # is then only what the header implies, and the file's end is not checked.
    size_known: bool = True
    # Every entry is the usual one (well-formed, in the usual field order, its data_offsets
    # spanning the bytes its dtype and shape need) and no name is given twice: there is nothing
    # for `entry_problems` to say, and the parser knew it without a second look at each entry.
    usual: bool = False

    @property
    def format(self) -> str:
        return SAFETENSORS

    @property
    def data_size(self) -> int:
        return self.file_size - LENGTH_PREFIX - self.header_size

    @cached_property
    def tensors(self) -> dict[str, TensorInfo]:
        """Well-formed tensors by name; a duplicate name keeps its last entry, as in safetensors.
        Within a run (sdlint/memo.py), identical headers share one dict: read it, never change
        it."""
        return memo.by_identity("header-tensors", (self.entries,), self._tensors)

    def _tensors(self) -> dict[str, TensorInfo]:
        if self.usual:  # every entry well-formed, each name once
            return {
                e.name: TensorInfo(e.name, e.dtype, e.shape, *e.offsets)  # type: ignore[arg-type, misc]
                for e in self.entries
            }
        out: dict[str, TensorInfo] = {}
        for entry in self.entries:
            info = entry.info
            if info is None:
                out.pop(entry.name, None)
            else:
                out.pop(entry.name, None)  # keep JSON order of the winning entry
                out[entry.name] = info
        return out

    @cached_property
    def duplicate_names(self) -> tuple[str, ...]:
        seen: set[str] = set()
        dupes: dict[str, None] = {}
        for entry in self.entries:
            if entry.name in seen:
                dupes[entry.name] = None
            seen.add(entry.name)
        return tuple(dupes)


HeaderResult = Header | Unreadable | LfsPointer


@record
class Problem:
    """A way a readable header departs from the format. `error`: the reference reader rejects the
    file for it; otherwise it reads the file and the written format forbids it (a warning)."""

    message: str
    tensor: str | None = None
    error: bool = True
    note: bool = False  # not a departure: something that could not be checked (info)


def entry_problems(header: Header) -> Iterator[Problem]:
    """Each tensor entry on its own (SD002): the parser's errors and warnings, a size that does
    not match dtype and shape, and names given twice. Within a run (sdlint/memo.py), found once
    for identical headers; none for a header the parser found usual (`Header.usual`)."""
    if header.usual:
        return iter(())
    if memo.table("entry-problems") is None:
        return _entry_problems(header)
    found = memo.by_identity(
        "entry-problems", (header.entries,), lambda: list(_entry_problems(header))
    )
    return iter(found)


def _entry_problems(header: Header) -> Iterator[Problem]:
    for entry in header.entries:
        for error in entry.errors:
            yield Problem(f"tensor `{entry.name}`: {error}", entry.name)
        for warning in entry.warnings:
            yield Problem(f"tensor `{entry.name}`: {warning}", entry.name, error=False)
        if entry.errors or entry.dtype is None or entry.shape is None or entry.offsets is None:
            continue
        begin, end = entry.offsets
        bits = tensor_bits(entry.dtype, entry.shape)
        if bits is not None and not bits % 8 and (end < begin or end - begin == bits // 8):
            continue  # the usual entry: nothing to say
        what = f"tensor `{entry.name}`: shape {shape_text(entry.shape)} of {entry.dtype}"
        if bits is None:
            yield Problem(f"{what} is too large: its size overflows 64 bits", entry.name)
        elif bits % 8:
            yield Problem(
                f"{what} ({DTYPE_BITS[entry.dtype]} bits each) is {bits} bits, not a whole "
                "number of bytes",
                entry.name,
            )
        else:
            yield Problem(
                f"{what} needs {bits // 8:,} bytes, but its data_offsets [{begin}, {end}] "
                f"span {end - begin:,}",
                entry.name,
            )
    for name in header.duplicate_names:
        copies = [e for e in header.entries if e.name == name]
        same = all(
            (c.dtype, c.shape, c.offsets)
            == (copies[-1].dtype, copies[-1].shape, copies[-1].offsets)
            for c in copies
        )
        detail = "identical entries" if same else "different entries; safetensors keeps the last"
        yield Problem(
            f"tensor `{name}` is named {len(copies)} times in the header ({detail}); "
            "the format forbids duplicate names and readers disagree on which one wins",
            name,
            error=False,
        )


def layout_problems(header: Header) -> Iterator[Problem]:
    """The tensors' byte ranges in offset order, as the reference reader checks them (SD003): from
    0, without gaps or overlaps, to the end of the file; and the data section aligned to 8. Within
    a run (sdlint/memo.py), found once for identical headers in files of one size."""
    known = memo.table("layout-problems")
    if known is None:
        return _layout_problems(header)
    ident = (id(header.entries), header.file_size, header.header_size, header.size_known)
    found = known.get(ident)
    if found is None or found[0] is not header.entries:  # kept: its id is not reused in the run
        found = known[ident] = (header.entries, list(_layout_problems(header)))
    return iter(found[1])


def _usual_layout_end(header: Header) -> int | None:
    """Where the data of a usual header (`Header.usual`) ends when its tensors follow one another
    from 0 without a gap or an overlap, the usual layout: found with a sort and two list
    comparisons, without a look at each tensor. None for any other header."""
    if not header.usual:
        return None
    ordered = sorted([e.offsets for e in header.entries if e.offsets is not None])
    if not ordered:
        return 0
    flat = list(chain.from_iterable(ordered))
    begins, ends = flat[0::2], flat[1::2]
    if begins[0] != 0 or begins[1:] != ends[:-1] or not all(map(le, begins, ends)):
        return None
    return ends[-1]


def _layout_problems(header: Header) -> Iterator[Problem]:
    spans: dict[str, tuple[int, int]] | None = None  # a usual header's: made when needed
    unplaced = False
    cursor = _usual_layout_end(header)
    if cursor is None:
        spans = {}
        yield from _placement_problems(header, spans)
        cursor = max((end for _, end in spans.values()), default=0)
        # An entry whose offsets cannot be read owns bytes somewhere: gaps and trailing bytes are
        # then most likely its data, already reported by `entry_problems`: not reported again.
        unplaced = any(e.offsets is None and e.name not in spans for e in header.entries)
    yield from _end_problems(header, spans, cursor, unplaced)


def _placement_problems(header: Header, spans: dict[str, tuple[int, int]]) -> Iterator[Problem]:
    """Gaps, overlaps and reversed ranges between the tensors, in offset order; fills `spans`
    (each name's offsets, the last entry of a name winning, as in safetensors)."""
    for entry in header.entries:
        if entry.offsets is not None:
            spans.pop(entry.name, None)
            spans[entry.name] = entry.offsets
    unplaced = any(e.offsets is None and e.name not in spans for e in header.entries)
    cursor, previous = 0, None
    for name, (begin, end) in sorted(spans.items(), key=lambda item: item[1]):
        if end < begin:
            yield Problem(
                f"tensor `{name}`: data_offsets [{begin}, {end}] end before they begin", name
            )
        elif begin > cursor and not unplaced:
            where = f"after tensor `{previous}`" if previous else "at the start of the data section"
            yield Problem(
                f"bytes [{cursor}, {begin}) of the data section belong to no tensor ({where}, "
                f"before `{name}`)",
                name,
            )
        elif begin < cursor:
            yield Problem(
                f"tensor `{name}`: data_offsets [{begin}, {end}] overlap tensor `{previous}`, "
                f"which ends at {cursor}",
                name,
            )
        cursor, previous = max(cursor, end), name


def _end_problems(
    header: Header, spans: dict[str, tuple[int, int]] | None, cursor: int, unplaced: bool
) -> Iterator[Problem]:
    """The data's end (`cursor`) against the file's, and the data section's alignment. `spans`:
    each name's offsets; None for a usual header (each name once, every entry placed)."""
    data_size = header.data_size
    if not header.size_known:
        yield Problem(
            "the file's size is unknown (the server sent neither Content-Range nor "
            "Content-Length): truncation and trailing bytes are not checked",
            error=False,
            note=True,
        )
    elif cursor > data_size:
        if spans is None:
            spans = {e.name: e.offsets for e in header.entries if e.offsets is not None}
        beyond = [n for n, (_, end) in spans.items() if end > data_size]
        shown = ", ".join(f"`{n}`" for n in beyond[:3]) + (" ..." if len(beyond) > 3 else "")
        yield Problem(
            f"data section ends at byte {cursor:,} but the file holds only {data_size:,} bytes of "
            f"data: {cursor - data_size:,} bytes are missing (truncated download?); "
            f"{len(beyond)} tensor{'s' if len(beyond) != 1 else ''} affected: {shown}"
        )
    elif cursor < data_size and not unplaced:
        yield Problem(
            f"{data_size - cursor:,} bytes after the last tensor belong to no tensor; the format "
            "forbids trailing data"
        )
    data_start = LENGTH_PREFIX + header.header_size
    if data_start % 8:
        yield Problem(
            f"data section starts at byte {data_start}, not a multiple of 8: the header is not "
            "padded with spaces as safetensors writes it, so tensors may be misaligned",
            error=False,
        )


def first_error(problems: Iterable[Problem]) -> Problem | None:
    """The first problem the reference reader rejects the file for, or None."""
    return next((p for p in problems if p.error), None)


def read_header(source: Source | Path, *, quote: bool = True) -> HeaderResult:
    """Parse the header of `source` (a Path reads the local file), reading at most 8 + N bytes.
    Never raises on bad input. `quote`: a message may show the file's first bytes when they are
    text ("version " of an LFS pointer, "<!DOCTYP" of an error page); False for a file the user
    did not name (a shard an index names), whose bytes must not end up in a report."""
    if isinstance(source, Path):
        source = LocalFile(source)
    path = source.ref
    try:
        with source.open() as f:  # a regular file: no FIFO, device or folder is ever opened
            size = f.size  # None: unknown (a remote server that did not say)
            prefix = f.read(0, LENGTH_PREFIX)
            if prefix == LFS_SIGNATURE[:LENGTH_PREFIX] and (size or 0) <= _LFS_MAX_SIZE:
                text = f.read(0, _LFS_MAX_SIZE)
                if text.startswith(LFS_SIGNATURE):
                    return _parse_lfs_pointer(path, text)
            if len(prefix) < LENGTH_PREFIX:
                return Unreadable(
                    path, f"file is {size} bytes, shorter than the 8-byte header length"
                )
            n = int.from_bytes(prefix, "little")
            problem = _check_header_length(n, size, prefix if quote else b"")
            if problem:
                return Unreadable(path, problem)
            raw = f.read(LENGTH_PREFIX, n)
    except ReadError as e:
        return Unreadable(path, e.reason)
    if len(raw) != n:  # the file shrank between stat and read
        return Unreadable(path, f"file ended after {len(raw)} of {n} header bytes")
    if size is None:
        parsed = parse_header(raw, path=path)
        if isinstance(parsed, Header):  # assume the end the header implies, and say so
            end = max((e.offsets[1] for e in parsed.entries if e.offsets), default=0)
            size = LENGTH_PREFIX + n + end
            return replace(parsed, file_size=size, size_known=False)
        return parsed
    return parse_header(raw, path=path, file_size=size)


def _check_header_length(n: int, file_size: int | None, prefix: bytes) -> str | None:
    if n > MAX_HEADER_SIZE:
        hint = ""
        if prefix and all(32 <= b < 127 for b in prefix):
            text = prefix.decode("ascii")
            hint = f" (the file starts with the text {text!r}: not a safetensors file?)"
        return (
            f"header length {n:,} exceeds the {MAX_HEADER_SIZE:,}-byte limit of the safetensors "
            f"reader{hint}"
        )
    if file_size is not None and LENGTH_PREFIX + n > file_size:
        return (
            f"header length {n:,} runs past the end of the file ({file_size:,} bytes): "
            "the file is truncated or not a safetensors file"
        )
    return None


def _parse_lfs_pointer(path: FileRef, text: bytes) -> LfsPointer:
    decoded = text.decode("utf-8", "replace")
    oid = re.search(r"^oid (\S+)$", decoded, re.MULTILINE)
    size = re.search(r"^size (\d+)$", decoded, re.MULTILINE)
    return LfsPointer(path, oid.group(1) if oid else None, int(size.group(1)) if size else None)


class _NegativeZero(int):
    """`-0` in the JSON: serde reads it as a float, so the reference rejects it as a dimension."""


def _parse_int(text: str) -> int:
    return _NegativeZero(0) if text == "-0" else int(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# Objects are decoded as tuples of (key, value) pairs: `tuple` is a C-level hook (a Python class
# here costs 3x the parse on a 100k-tensor header), it keeps duplicate keys, and it tells `{}`
# from `[]`. The two checks Python's json lacks (`-0` and lone surrogates, both rejected by serde)
# run only when a cheap scan of the text finds a candidate.
_MAYBE_NEGATIVE_ZERO = re.compile(r"-0(?![\d.eE])")
_MAYBE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
Pairs = tuple[tuple[str, "Any"], ...]


# Below this many header bytes (about 1k tensors) the collector costs nothing measurable.
_GC_PAUSE_FROM = 100_000


@contextlib.contextmanager
def _gc_paused(size: int) -> Iterator[None]:
    """Parsing allocates one tuple per object and nothing cyclic; left on, the cyclic collector
    rescans the growing heap again and again: 1.8x the parse of a 100k-tensor header (measured).

    The collector is process-wide, so it is paused only for a large header and only while this is
    the one thread running: never under the language server's worker threads, whose neighbours
    keep allocating."""
    pause = size >= _GC_PAUSE_FROM and _one_thread() and gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if pause:
            gc.enable()


def _one_thread() -> bool:
    import threading  # only for a large header: reading small ones does not load it

    return threading.active_count() == 1


_MEMORY = FileRef("<memory>")


def parse_header(
    raw: bytes, *, path: FileRef = _MEMORY, file_size: int | None = None
) -> Header | Unreadable:
    """Parse the N header bytes. `file_size` defaults to a file holding just this header. Within a
    run (sdlint/memo.py), identical header bytes are parsed once (200 fine-tunes of one model
    have one header): their `Header`s share the entries."""
    known = memo.table("header")
    if known is None:
        with _gc_paused(len(raw)):
            return _parse_header(raw, path, file_size)
    parsed = known.get(raw)
    if parsed is None:
        with _gc_paused(len(raw)):
            parsed = known[raw] = _parse_header(raw, _MEMORY, None)
    if isinstance(parsed, Unreadable):
        return Unreadable(path, parsed.reason, parsed.format)
    return Header(
        path=path,
        file_size=LENGTH_PREFIX + len(raw) if file_size is None else file_size,
        header_size=parsed.header_size,
        entries=parsed.entries,
        metadata=None if parsed.metadata is None else dict(parsed.metadata),
        warnings=parsed.warnings,
        usual=parsed.usual,
    )


def _parse_header(raw: bytes, path: FileRef, file_size: int | None) -> Header | Unreadable:
    size = LENGTH_PREFIX + len(raw) if file_size is None else file_size
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Unreadable(path, f"header is not valid UTF-8 (byte {e.start} of the header)")
    try:
        document = json.loads(
            text,
            object_pairs_hook=tuple,
            parse_int=_parse_int if _MAYBE_NEGATIVE_ZERO.search(text) else None,
            parse_constant=_reject_constant,
        )
    except json.JSONDecodeError as e:
        return Unreadable(
            path, f"header is not valid JSON: {e.msg} (line {e.lineno} column {e.colno})"
        )
    except RecursionError:
        return Unreadable(path, "header is not valid JSON: nested too deeply")
    except ValueError as e:
        return Unreadable(path, f"header is not valid JSON: {e}")
    if _MAYBE_SURROGATE.search(text) and _has_lone_surrogate(document):
        return Unreadable(
            path, "header is not valid JSON: it contains an unpaired surrogate escape"
        )
    if not isinstance(document, tuple):
        return Unreadable(path, f"header is a JSON {_json_type(document)}, not an object")

    warnings: list[str] = []
    if text[:1] in tuple(_JSON_WHITESPACE):
        warnings.append(
            "header starts with whitespace; the format says it must begin with `{` "
            "(safetensors accepts it, some other readers do not)"
        )
    trailing = text[len(text.rstrip(_JSON_WHITESPACE)) :]
    if trailing.strip(" "):
        warnings.append(
            "header is padded with characters other than spaces; "
            "the format allows only spaces (0x20)"
        )

    metadata: dict[str, str] | None = None
    entries: list[TensorEntry] = []
    metadata_seen = False
    usual = True
    for name, value in document:
        if name == "__metadata__":
            if metadata_seen:
                return Unreadable(path, "header has `__metadata__` twice")
            metadata_seen = True
            if value is None:
                continue
            problem = _metadata_problem(value)
            if problem:
                return Unreadable(path, problem)
            metadata = dict(value)
            continue
        entry = _fast_entry(name, value)
        if entry is None:
            usual = False
            entry = _parse_entry(name, value)
        entries.append(entry)
    return Header(
        path=path,
        file_size=size,
        header_size=len(raw),
        entries=tuple(entries),
        metadata=metadata,
        warnings=tuple(warnings),
        usual=usual and len(dict(document)) == len(document),  # no name given twice
    )


def _metadata_problem(value: Any) -> str | None:
    if not isinstance(value, tuple):
        return f"`__metadata__` is a JSON {_json_type(value)}, not a string-to-string object"
    for key, item in value:
        if not isinstance(item, str):
            return (
                f"`__metadata__` must map strings to strings, but {key!r} maps to a JSON "
                f"{_json_type(item)}"
            )
    return None


def _fast_entry(name: str, value: Any) -> TensorEntry | None:
    """The usual entry (see `Header.usual`) without the general path: well-formed, in the usual
    field order, its data_offsets spanning the whole bytes its dtype and shape need. Any other
    entry (None) takes the general path, which finds the same entry for a well-formed one."""
    if not (isinstance(value, tuple) and len(value) == 3):
        return None
    (k1, dtype), (k2, shape), (k3, offsets) = value
    if (k1, k2, k3) != _ENTRY_FIELDS or type(dtype) is not str or dtype not in DTYPE_BITS:
        return None
    if type(shape) is not list or type(offsets) is not list or len(offsets) != 2:
        return None
    for number in (*shape, *offsets):
        if type(number) is not int or not 0 <= number < USIZE_LIMIT:
            return None
    begin, end = offsets
    bits = tensor_bits(dtype, shape)
    if bits is None or bits % 8 or (end >= begin and end - begin != bits // 8):
        return None  # a size `entry_problems` reports
    return TensorEntry(name, dtype, tuple(shape), (begin, end))


def _parse_entry(name: str, value: Any) -> TensorEntry:
    errors: list[str] = []
    warnings: list[str] = []
    fields: dict[str, Any]
    if isinstance(value, tuple):
        keys = [k for k, _ in value]
        if len(set(keys)) != len(keys):
            doubled = sorted({k for k in keys if keys.count(k) > 1})
            errors.append(f"field {doubled[0]!r} appears twice")
        unknown = [k for k in dict.fromkeys(keys) if k not in _ENTRY_FIELDS]
        if unknown:
            warnings.append(
                f"unknown field{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(k) for k in unknown)} (safetensors ignores it)"
            )
        fields = dict(value)
        for missing in (f for f in _ENTRY_FIELDS if f not in fields):
            errors.append(f"missing field {missing!r}")
    elif isinstance(value, list) and len(value) == 3:
        # serde accepts a struct written as a sequence; the written format does not.
        warnings.append("entry is written as a JSON array instead of an object")
        fields = dict(zip(_ENTRY_FIELDS, value, strict=True))
    else:
        errors.append(f"entry is a JSON {_json_type(value)}, not an object")
        fields = {}

    dtype = _parse_dtype(fields["dtype"], errors, warnings) if "dtype" in fields else None
    shape = _parse_uints(fields["shape"], "shape", errors) if "shape" in fields else None
    offsets = None
    if "data_offsets" in fields:
        pair = _parse_uints(fields["data_offsets"], "data_offsets", errors)
        if pair is not None and len(pair) != 2:
            errors.append(f"data_offsets must be [begin, end], got {len(pair)} numbers")
        elif pair is not None:
            offsets = (pair[0], pair[1])
    return TensorEntry(name, dtype, shape, offsets, tuple(errors), tuple(warnings))


def _parse_dtype(value: Any, errors: list[str], warnings: list[str]) -> str | None:
    if isinstance(value, tuple) and len(value) == 1 and value[0][1] is None:
        # serde's externally tagged form of a unit variant: {"F32": null}
        value = value[0][0]
        warnings.append(f'dtype is written as {{"{value}": null}} instead of "{value}"')
    if not isinstance(value, str):
        errors.append(f"dtype is a JSON {_json_type(value)}, not a string")
        return None
    if value not in DTYPE_BITS:
        errors.append(f"unknown dtype {value!r}")
        return None
    return value


def _parse_uints(value: Any, what: str, errors: list[str]) -> tuple[int, ...] | None:
    if not isinstance(value, list):
        errors.append(f"{what} is a JSON {_json_type(value)}, not a list of integers")
        return None
    for item in value:
        if isinstance(item, _NegativeZero) or not is_uint(item):
            errors.append(
                f"{what} {_render(value)} holds {_render(item)}, not a non-negative integer"
            )
            return None
    return tuple(value)


def _has_lone_surrogate(document: Any) -> bool:
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, (list, tuple)):
            stack.extend(item)  # arrays, objects (tuples of pairs) and the pairs themselves
    return False


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"  # a tuple of pairs


def _render(value: Any) -> str:
    if isinstance(value, list):
        text = "[" + ", ".join(_render(item) for item in value) + "]"
    elif isinstance(value, tuple):
        text = "{" + ", ".join(f"{json.dumps(k)}: {_render(v)}" for k, v in value) + "}"
    else:
        text = "-0" if isinstance(value, _NegativeZero) else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def tensor_bytes(tensors: Iterable[TensorInfo]) -> int:
    return sum(t.end - t.begin for t in tensors)
