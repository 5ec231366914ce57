"""Rewrite a safetensors checkpoint (or a small text file) safely: the mechanics of `check --fix`.

What gets fixed is decided elsewhere; this module makes applying a decision safe on a 100 GB file:

* Streaming. Kept tensors are copied from the old file to the new one through one `CHUNK_SIZE`
  buffer, and new tensors given as chunks (`NewTensor`) are written as they are made, so memory is
  bounded by the header, the buffer and one chunk, whatever the checkpoint's size. Nothing is
  mmapped (mapped pages count towards RSS) and nothing goes through torch or numpy.
* Verified. Each kept tensor is hashed as it is read from the original. Once the new file is
  written and fsynced, its header is read back with `sdlint.formats.safetensors.read_header`,
  held to the reference reader's structural rules (the checks of SD002 and SD003, from
  sdlint.formats.safetensors), compared with the plan, and every tensor is read back and
  hashed again. The original is replaced only if all of that agrees.
* Atomic. The new file is a temporary file in the same folder (so `os.replace` is a rename within
  one filesystem), fsynced, then renamed over the original, and the folder is fsynced. Until that
  rename the original is untouched, so a crash, SIGKILL, full disk or permission error leaves it
  byte-identical. On any error we get to handle, the temporary file is removed; after a SIGKILL
  or power loss it stays behind as `.<name>.<random>.sdlint-tmp` (nothing can remove it then).
* Layout. The header is written the way the safetensors library writes it (compact JSON,
  `__metadata__` first, tensors in data order, padded with spaces to a multiple of 8), so a file
  whose tensor order matches what `safetensors.save` would choose comes out byte-identical to it.

Everything that goes wrong becomes one `RewriteError` whose message is one line naming the file,
what failed, and whether the original is intact.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import itertools
import json
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from io import FileIO
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

from sdlint.dtypes import DTYPE_BITS, is_uint, tensor_bits
from sdlint.errors import SdlintError
from sdlint.formats import LfsPointer
from sdlint.formats.pickle import (
    PickleCheckpoint,
    PickleTensor,
    StorageRecord,
    conversion_problem,
    read_pickle_checkpoint,
    safetensors_name,
    tensor_spans,
)
from sdlint.formats.safetensors import (
    LENGTH_PREFIX,
    MAX_HEADER_SIZE,
    Header,
    TensorInfo,
    entry_problems,
    first_error,
    layout_problems,
    read_header,
)
from sdlint.record import field, record

__all__ = [
    "BACKUP_SUFFIX",
    "CHUNK_SIZE",
    "CONVERTED_METADATA",
    "TEMP_SUFFIX",
    "ConvertResult",
    "NewTensor",
    "RewriteError",
    "RewritePlan",
    "RewriteResult",
    "convert_index",
    "convert_pickle",
    "rewrite_safetensors",
    "write_text_atomic",
]

# 4 MiB: large enough that syscall overhead is negligible next to disk bandwidth, small enough that
# memory stays flat (benchmarks/fix_memory.py measures both).
CHUNK_SIZE: Final = 4 * 1024 * 1024
BACKUP_SUFFIX: Final = ".bak"
TEMP_SUFFIX: Final = ".sdlint-tmp"
_MAX_BACKUPS = 1000
_METADATA_KEY = "__metadata__"

# Seams for the fault tests, which patch these to simulate ENOSPC/EIO, a crash or a SIGKILL
# mid-write without root (tests/write_faults.py). Every write and fsync of a new file uses them.
_write: Callable[[int, memoryview], int] = os.write
_fsync: Callable[[int], None] = os.fsync

# errnos meaning "this filesystem cannot hard-link": the backup is then copied instead.
_NO_HARDLINKS = frozenset(
    {errno.EPERM, errno.EMLINK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV}
)
# errnos of fsync on a folder meaning "not supported here" rather than "failed".
_DIR_SYNC_UNSUPPORTED = frozenset({errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF})


@record
class NewTensor:
    """A tensor to write: its raw little-endian bytes, row-major, given whole (`bytes`) or as a
    function returning them a chunk at a time, so that a new 1 GB tensor is streamed to the file
    like a kept one and never held in memory. Chunks may have any size; together they must be
    exactly the tensor's size, or the rewrite fails with the original intact."""

    dtype: str
    shape: tuple[int, ...]
    data: bytes | Callable[[], Iterable[bytes]]

    def __post_init__(self) -> None:
        # Accept a list shape or a bytearray/memoryview, but store the immutable forms: the plan is
        # validated once and must not change before it is written.
        object.__setattr__(self, "shape", tuple(self.shape))
        if not isinstance(self.data, bytes) and not callable(self.data):
            object.__setattr__(self, "data", bytes(self.data))

    @property
    def size(self) -> int:
        """Bytes in the file; valid once `problem()` is None."""
        return (tensor_bits(self.dtype, self.shape) or 0) // 8

    def chunks(self) -> Iterable[bytes]:
        return (self.data,) if isinstance(self.data, bytes) else self.data()

    def problem(self) -> str | None:
        """Why the safetensors format cannot hold this tensor, or None."""
        if self.dtype not in DTYPE_BITS:
            return f"unknown dtype {self.dtype!r}"
        if not all(is_uint(d) for d in self.shape):
            return f"shape {list(self.shape)!r} is not a list of non-negative integers"
        bits = tensor_bits(self.dtype, self.shape)
        if bits is None:
            return f"a {self.dtype} tensor of shape {list(self.shape)} is too large for the format"
        if bits % 8:
            return f"a {self.dtype} tensor of shape {list(self.shape)} does not fill whole bytes"
        if isinstance(self.data, bytes) and len(self.data) != bits // 8:
            return (
                f"data is {len(self.data):,} bytes but a {self.dtype} tensor of shape "
                f"{list(self.shape)} takes {bits // 8:,}"
            )
        return None


@record
class RewritePlan:
    """What to change. Renames and drops name tensors of the original file; replacements name
    tensors of the result (after renames): a replacement takes the place of the kept tensor of that
    name, or is added at the end if there is none."""

    renames: Mapping[str, str] = field(default_factory=dict)
    drops: frozenset[str] = frozenset()
    replacements: Mapping[str, NewTensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Snapshot the caller's containers so the plan cannot change between checking and writing.
        object.__setattr__(self, "renames", MappingProxyType(dict(self.renames)))
        object.__setattr__(self, "drops", frozenset(self.drops))
        object.__setattr__(self, "replacements", MappingProxyType(dict(self.replacements)))


@record
class RewriteResult:
    """What a rewrite did; the counts are tensors, the sizes bytes."""

    path: Path
    changed: bool  # False when the plan changes nothing: the file was not touched
    backup: Path | None  # where the original was kept, if a backup was asked for
    renamed: int
    dropped: int
    replaced: int
    added: int
    old_size: int
    new_size: int


class RewriteError(SdlintError):
    """A rewrite was refused or failed. `str()` is one line naming the file, what failed and the
    outcome. `original_intact` is False only when the folder fsync fails after the new file has
    taken the original's place: the new file is then in place but may not survive a power cut."""

    def __init__(
        self, path: Path, reason: str, *, original_intact: bool = True, existed: bool = True
    ) -> None:
        self.path = path
        self.reason = reason
        self.original_intact = original_intact
        if not original_intact:
            outcome = "the new file is in place"
        elif existed:
            outcome = "the original is intact"
        else:
            outcome = "nothing was written"
        super().__init__(_one_line(f"cannot rewrite {path}: {reason}; {outcome}"))


class _Failure(Exception):
    """Internal: a reason, turned into a RewriteError once the path and outcome are known."""


def rewrite_safetensors(
    path: str | os.PathLike[str], plan: RewritePlan, *, backup: bool = False
) -> RewriteResult:
    """Apply `plan` to the checkpoint at `path`, atomically and with bounded memory.

    A plan that changes nothing leaves the file untouched (`changed` is False). With `backup`, the
    original is kept as `<name>.bak` (`.bak.1`, `.bak.2`, ... when taken: an existing backup is
    never overwritten) and the result names it. Raises RewriteError, never anything else for bad
    input or a failing disk.
    """
    target = Path(path)
    try:
        st = _check_target(target)
        if st is None:
            raise RewriteError(target, "the file does not exist", existed=False)
        with target.open("rb", buffering=0) as src:
            header = _read_source_header(target, src, st)
            slots, counts = _layout(header, plan)
            if not counts.changed:
                size = header.file_size
                return RewriteResult(target, False, None, 0, 0, 0, 0, size, size)
            data_start = LENGTH_PREFIX + header.header_size
            job = _CheckpointJob(target, src, st, header.metadata, data_start, slots)
            kept = job.put(target, backup=backup, exclusive=False)
    except _Failure as e:
        raise RewriteError(target, str(e)) from e
    except OSError as e:  # opening or reading the original, before a temporary file exists
        raise RewriteError(target, f"reading the file failed: {_describe(e)}") from e
    return RewriteResult(
        path=target,
        changed=True,
        backup=kept,
        renamed=counts.renamed,
        dropped=counts.dropped,
        replaced=counts.replaced,
        added=counts.added,
        old_size=header.file_size,
        new_size=job.new_size,
    )


def write_text_atomic(
    path: str | os.PathLike[str], text: str, *, backup: bool = False
) -> Path | None:
    """Write `text` as UTF-8 (newlines as given) to `path` atomically; return the backup's path.

    A new file gets the umask's permissions; an existing one keeps its permission bits, and with
    `backup` the original is kept as for `rewrite_safetensors`. Raises RewriteError.
    """
    target = Path(path)
    existed = True
    try:
        st = _check_target(target)
        existed = st is not None
        job = _TextJob(text)
        _check_free_space(target, len(job.data))
        return _replace_atomically(target, st, job.write, job.verify, backup and existed, None)
    except _Failure as e:
        raise RewriteError(target, str(e), existed=existed) from e


class _TextJob:
    """Writes and verifies a text file's UTF-8 bytes."""

    def __init__(self, text: str) -> None:
        try:
            self.data = text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise _Failure(f"the text cannot be written as UTF-8 ({e.reason})") from e

    def write(self, sink: _Sink) -> None:
        sink.write(memoryview(self.data))

    def verify(self, tmp: Path) -> None:
        if tmp.read_bytes() != self.data:
            raise _Failure("the new file does not read back as what was written")


@record
class ConvertResult:
    """What a conversion did: `source` is gone (kept as `backup` if asked), `target` holds its
    tensors."""

    source: Path
    target: Path
    backup: Path | None
    tensors: int
    old_size: int
    new_size: int


# What transformers requires of a safetensors file's metadata (`from_pretrained` refuses a file
# without it) and what `save_pretrained` writes.
CONVERTED_METADATA: Final = MappingProxyType({"format": "pt"})


def convert_pickle(
    path: str | os.PathLike[str],
    target: str | os.PathLike[str] | None = None,
    *,
    backup: bool = False,
) -> ConvertResult:
    """Convert a torch.save checkpoint holding a state dict to safetensors, without unpickling it.

    The file is described again (sdlint.formats.pickle: nothing outside the allow-list is ever
    imported or called) and refused unless `conversion_problem` finds nothing. Each tensor's bytes
    are streamed from its storage record into `target` (default `safetensors_name(path)`), in
    row-major order: a view gets its own bytes, and tensors sharing a storage (tied weights) each
    get a copy, as safetensors forbids shared tensors. Memory stays bounded by a few chunks,
    except that a strided view (a transpose) is gathered from the part of its storage it spans,
    read once, when that part is at most 256 MB. The new file is written, fsynced and
    verified as by `rewrite_safetensors`, then put in place without ever replacing an existing
    `target`; only then is the original removed, or kept as `<name>.bak` with `backup`. Raises
    RewriteError, never anything else for bad input or a failing disk.
    """
    source = Path(path)
    new_path = Path(target) if target is not None else safetensors_name(source)
    try:
        st = _replaceable(source, new_path)
        with source.open("rb", buffering=0) as src:
            opened = _opened_as_seen(src, st)
            described = read_pickle_checkpoint(source)
            if isinstance(described, LfsPointer):
                raise _Failure("it is a Git LFS pointer, not the weights (run `git lfs pull`)")
            problem = conversion_problem(described)
            if problem:
                raise _Failure(f"it is not converted: {problem}")
            if described.file_size != opened.st_size:
                raise _Failure("the file changed while being opened; run the fix again")
            slots = _pickle_slots(described, src)
            job = _CheckpointJob(source, src, st, CONVERTED_METADATA, 0, slots)
            job.put(new_path, backup=False, exclusive=True)
    except _Failure as e:
        raise RewriteError(source, str(e)) from e
    except OSError as e:  # opening or reading the original, before a temporary file exists
        raise RewriteError(source, f"reading the file failed: {_describe(e)}") from e
    kept = _retire(source, st, new_path, backup)
    return ConvertResult(source, new_path, kept, len(slots), st.st_size, job.new_size)


def convert_index(
    path: str | os.PathLike[str],
    target: str | os.PathLike[str],
    text: str,
    *,
    backup: bool = False,
) -> ConvertResult:
    """Replace the shard index at `path` by a new index `target` holding `text` (the index of the
    shards `convert_pickle` converted): written, fsynced, read back and put in place without ever
    replacing an existing `target`; only then is the original removed, or kept as `<name>.bak`
    with `backup`. `tensors` in the result is 0. Raises RewriteError."""
    source, new_path = Path(path), Path(target)
    try:
        st = _replaceable(source, new_path)
        job = _TextJob(text)
        _check_free_space(new_path, len(job.data))
        _replace_atomically(new_path, st, job.write, job.verify, False, None, exclusive=True)
    except _Failure as e:
        raise RewriteError(source, str(e)) from e
    kept = _retire(source, st, new_path, backup)
    return ConvertResult(source, new_path, kept, 0, st.st_size, len(job.data))


def _replaceable(source: Path, new_path: Path) -> os.stat_result:
    """The stat of a file to be replaced by `new_path`, a name no file may hold yet."""
    st = _check_target(source)
    if st is None:
        raise RewriteError(source, "the file does not exist", existed=False)
    if os.path.lexists(new_path):
        raise _Failure(f"{new_path.name} already exists; sdlint never overwrites it")
    return st


def _retire(source: Path, st: os.stat_result, new_path: Path, backup: bool) -> Path | None:
    """Remove the file `new_path` now stands for (kept as `<name>.bak` with `backup`, whose path
    is returned), once `new_path` is written and verified."""
    try:
        kept = _make_backup(source, st) if backup else None
        source.unlink()
        _sync_dir(source.parent)
    except (OSError, _Failure) as e:
        reason = _describe(e) if isinstance(e, OSError) else str(e)
        raise RewriteError(
            source,
            f"{new_path.name} is written and verified, but removing the original failed: {reason}",
        ) from e
    return kept


def _pickle_slots(described: PickleCheckpoint, src: FileIO) -> list[_Slot]:
    """The new file's tensors, widest dtype first (so every tensor is aligned to its element
    size, as safetensors orders them), then in the state dict's order."""
    slots: list[_Slot] = []
    order = sorted(enumerate(described.entries), key=lambda e: (-e[1].itemsize, e[0]))
    for _, t in order:
        record = described.storage(t.storage)
        assert record is not None and t.dtype is not None  # conversion_problem checked both
        chunks = functools.partial(_tensor_chunks, src, t, record)
        tensor = NewTensor(t.dtype, t.shape, chunks)
        problem = tensor.problem()
        if problem:
            raise _Failure(f"tensor {t.name!r} cannot be written: {problem}")
        slots.append(_new_slot(t.name, tensor))
    return slots


# A view whose contiguous runs are shorter than this is gathered in memory from the part of its
# storage it spans (one read), when that part is at most _GATHER_LIMIT bytes; else run by run.
_SHORT_RUN = 4096
_GATHER_LIMIT = 64 * CHUNK_SIZE
# Element sizes memoryview can address as unsigned integers (the bytes are copied, never read
# as numbers).
_ELEMENT_FORMATS: dict[int, Literal["B", "H", "I", "Q"]] = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _tensor_chunks(src: FileIO, tensor: PickleTensor, record: StorageRecord) -> Iterator[bytes]:
    """A tensor's bytes in row-major order, from its storage record."""
    spans = functools.partial(tensor_spans, tensor, record)
    first = next(spans(), None)
    if first is None:
        return
    begin = first[0]
    extent = tensor.storage_bytes_needed - tensor.storage_offset * tensor.itemsize
    short = first[1] < min(_SHORT_RUN, tensor.numel * tensor.itemsize)
    if short and extent <= _GATHER_LIMIT and tensor.itemsize in _ELEMENT_FORMATS:
        yield from _gathered_chunks(src, tensor, begin, extent)
    else:
        yield from _copied_chunks(src, spans)


def _gathered_chunks(src: FileIO, tensor: PickleTensor, begin: int, extent: int) -> Iterator[bytes]:
    """A strided view's bytes: the `extent` bytes of storage it spans from `begin`, read once,
    then taken element row by element row with strided memoryview slices."""
    region = b"".join(_copied_chunks(src, lambda: ((begin, extent),)))
    elements = memoryview(region).cast(_ELEMENT_FORMATS[tensor.itemsize])
    dims = [(d, s) for d, s in zip(tensor.shape, tensor.stride, strict=True) if d != 1] or [(1, 1)]
    *outer, (count, step) = dims
    pending = bytearray()
    for index in itertools.product(*(range(d) for d, _ in outer)):
        start = sum(i * s for i, (_, s) in zip(index, outer, strict=True))
        if step:
            pending += elements[start : start + (count - 1) * step + 1 : step].tobytes()
        else:  # an expanded dimension: one element, repeated
            pending += elements[start : start + 1].tobytes() * count
        if len(pending) >= CHUNK_SIZE:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


def _copied_chunks(src: FileIO, spans: Callable[[], Iterable[tuple[int, int]]]) -> Iterator[bytes]:
    """The bytes of `spans` of `src`, in order, in chunks of about CHUNK_SIZE."""
    pending = bytearray()
    for start, length in spans():
        at = start
        while at < start + length:
            try:
                src.seek(at)
                data = src.read(min(start + length - at, CHUNK_SIZE))
            except OSError as e:
                raise _Failure(f"reading the original failed at byte {at:,}: {_describe(e)}") from e
            if not data:
                raise _Failure(
                    f"the original ended at byte {at:,}; was it truncated during the conversion?"
                )
            pending += data
            at += len(data)
            if len(pending) >= CHUNK_SIZE:
                yield bytes(pending)
                pending.clear()
    if pending:
        yield bytes(pending)


# --- planning ----------------------------------------------------------------------------------


@record
class _Slot:
    """One tensor of the new file: copied from `source` in the original, or written from `data`."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    size: int
    source: TensorInfo | None
    new: NewTensor | None = None


@record
class _Counts:
    renamed: int
    dropped: int
    replaced: int
    added: int

    @property
    def changed(self) -> bool:
        return bool(self.renamed or self.dropped or self.replaced or self.added)


def _layout(header: Header, plan: RewritePlan) -> tuple[list[_Slot], _Counts]:
    """The new file's tensors in data order, or _Failure listing what is wrong with the plan."""
    tensors = header.tensors
    problems: list[str] = []
    for old, new in plan.renames.items():
        if old not in tensors:
            problems.append(f"cannot rename {old!r}: the file has no such tensor")
        elif old in plan.drops and new != old:
            problems.append(f"tensor {old!r} is both renamed and dropped")
        problem = _name_problem(new)
        if problem:
            problems.append(f"cannot rename {old!r}: {problem}")
    problems.extend(
        f"cannot drop {name!r}: the file has no such tensor"
        for name in sorted(plan.drops)
        if name not in tensors
    )

    kept = [info for info in _data_order(header) if info.name not in plan.drops]
    final = {info.name: plan.renames.get(info.name, info.name) for info in kept}
    sources: dict[str, list[str]] = {}
    for old, new in final.items():
        sources.setdefault(new, []).append(old)
    for new, olds in sources.items():
        if len(olds) > 1:
            problems.append(
                f"two tensors would be named {new!r} (now {' and '.join(map(repr, olds[:2]))})"
            )

    for name, tensor in plan.replacements.items():
        problem = _name_problem(name) or tensor.problem()
        if problem:
            problems.append(f"cannot write tensor {name!r}: {problem}")
        elif name in plan.drops and name not in sources:
            problems.append(
                f"tensor {name!r} is both dropped and replaced (list it only in replacements "
                "to replace it in place)"
            )
    if problems:
        more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
        raise _Failure(problems[0] + (more if len(problems) > 1 else ""))

    slots: list[_Slot] = []
    for info in kept:
        name = final[info.name]
        new_tensor = plan.replacements.get(name)
        if new_tensor is None:
            slots.append(_Slot(name, info.dtype, info.shape, info.end - info.begin, info))
        else:
            slots.append(_new_slot(name, new_tensor))
    slots.extend(
        _new_slot(name, tensor) for name, tensor in plan.replacements.items() if name not in sources
    )
    counts = _Counts(
        renamed=sum(1 for old, new in final.items() if old != new),
        dropped=len(plan.drops),
        replaced=sum(1 for name in plan.replacements if name in sources),
        added=sum(1 for name in plan.replacements if name not in sources),
    )
    return slots, counts


def _new_slot(name: str, tensor: NewTensor) -> _Slot:
    return _Slot(name, tensor.dtype, tensor.shape, tensor.size, None, tensor)


def _name_problem(name: object) -> str | None:
    if not isinstance(name, str):
        return f"a tensor name must be a string, not {type(name).__name__}"
    if name == _METADATA_KEY:
        return f"{_METADATA_KEY!r} is reserved for the metadata"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return f"{name!r} is not valid Unicode"
    return None


def _data_order(header: Header) -> list[TensorInfo]:
    # Stable, so zero-size tensors sharing an offset keep their header order.
    return sorted(header.tensors.values(), key=lambda info: (info.begin, info.end))


def _format_error(header: Header) -> str | None:
    """Why the reference reader rejects the file (the verdict of SD002 and SD003), or None."""
    problem = first_error(itertools.chain(entry_problems(header), layout_problems(header)))
    return problem.message if problem else None


def _encode_header(metadata: Mapping[str, str] | None, slots: Iterable[_Slot]) -> bytes:
    """Length prefix + header, as safetensors writes it (`serialize` in safetensors/src/tensor.rs):
    serde_json's compact form, which `json.dumps` matches with these separators and non-ASCII left
    as UTF-8, `__metadata__` first, tensors in data order, spaces up to a multiple of 8 bytes."""
    document: dict[str, object] = {}
    if metadata is not None:
        document[_METADATA_KEY] = dict(metadata)  # the original's key order
    offset = 0
    for slot in slots:
        document[slot.name] = {
            "dtype": slot.dtype,
            "shape": list(slot.shape),
            "data_offsets": [offset, offset + slot.size],
        }
        offset += slot.size
    raw = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(LENGTH_PREFIX, "little") + raw


# --- the checkpoint job ------------------------------------------------------------------------


def _opened_as_seen(src: FileIO, st: os.stat_result) -> os.stat_result:
    """The opened file's stat, refusing a file other than the one `st` describes."""
    opened = os.fstat(src.fileno())
    if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
        raise _Failure("the file was replaced while being opened; run the fix again")
    return opened


def _read_source_header(target: Path, src: FileIO, st: os.stat_result) -> Header:
    opened = _opened_as_seen(src, st)
    header = read_header(target)
    if isinstance(header, LfsPointer):
        raise _Failure("it is a Git LFS pointer, not the weights (run `git lfs pull` first)")
    if not isinstance(header, Header):
        raise _Failure(f"its header cannot be read ({header.reason})")
    if header.file_size != opened.st_size:
        raise _Failure("the file changed while being opened; run the fix again")
    if header.duplicate_names:
        # safetensors keeps the last entry, but which copy the user meant is unknown.
        raise _Failure(f"tensor {header.duplicate_names[0]!r} appears twice in the header")
    problem = _format_error(header)
    if problem:
        raise _Failure(f"it is not a valid safetensors file: {problem}")
    return header


class _CheckpointJob:
    """Writes and verifies a new checkpoint made from the open original `src` (`target`, as `st`
    saw it): its kept tensors are copied from the original's data section at `data_start`, its new
    ones written from their chunks. `put` does the file handling, through `_replace_atomically`."""

    def __init__(
        self,
        target: Path,
        src: FileIO,
        st: os.stat_result,
        metadata: Mapping[str, str] | None,
        data_start: int,
        slots: list[_Slot],
    ) -> None:
        self.target = target
        self.src = src
        self.st = st
        self.metadata = metadata
        self.data_start = data_start
        self.slots = slots
        self.head = _encode_header(metadata, slots)
        self.new_size = len(self.head) + sum(slot.size for slot in slots)
        self.buffer = memoryview(bytearray(CHUNK_SIZE))  # the only data buffer, reused throughout
        self.digests: dict[str, bytes] = {}  # new name -> hash of the bytes it must hold

    def put(self, new_path: Path, *, backup: bool, exclusive: bool) -> Path | None:
        """Write the new checkpoint as `new_path` (over the original, or with `exclusive` as a
        new file that never replaces one), verified and atomically; return the backup's path."""
        header_size = len(self.head) - LENGTH_PREFIX
        if header_size > MAX_HEADER_SIZE:
            raise _Failure(
                f"the new header would be {header_size:,} bytes, over the "
                f"{MAX_HEADER_SIZE:,}-byte limit of the safetensors reader"
            )
        _check_free_space(new_path, self.new_size)
        return _replace_atomically(
            new_path,
            self.st,
            self.write,
            self.verify,
            backup,
            self.source_unchanged,
            exclusive=exclusive,
        )

    def write(self, sink: _Sink) -> None:
        sink.write(memoryview(self.head))
        for slot in self.slots:
            if slot.source is None:
                assert slot.new is not None
                # Hashed as given (a converted tensor: as read from the original).
                self.digests[slot.name] = _write_new(slot, slot.new, sink)
                continue
            # Hash what is read from the original (not what the new file turns out to hold): the
            # read-back in `verify` then proves the new file holds the original's bytes.
            self.digests[slot.name] = _stream(
                self.src,
                self.data_start + slot.source.begin,
                slot.size,
                self.buffer,
                f"tensor {slot.source.name!r} of the original",
                sink,
            )

    def verify(self, tmp: Path) -> None:
        _verify_written(tmp, self.slots, self.metadata, self.new_size, self.digests, self.buffer)

    def source_unchanged(self) -> None:
        _source_unchanged(self.target, self.src, self.st)


def _source_unchanged(target: Path, src: FileIO, st: os.stat_result) -> None:
    """Refuse to replace anything if someone wrote to or replaced the file while we copied."""
    now = os.fstat(src.fileno())
    try:
        there = os.lstat(target)
    except OSError as e:
        raise _Failure(f"the file disappeared during the rewrite ({_describe(e)})") from e
    written_to = _version(now) != _version(st)
    replaced = (there.st_ino, there.st_dev) != (st.st_ino, st.st_dev)
    if written_to or replaced:
        raise _Failure("the file was modified during the rewrite; run the fix again")


def _verify_written(
    tmp: Path,
    slots: list[_Slot],
    metadata: Mapping[str, str] | None,
    new_size: int,
    digests: Mapping[str, bytes],
    buffer: memoryview,
) -> None:
    """Read the new file back: it passes the safetensors checks, its header lists the planned
    tensors with the planned metadata, size and alignment, and every tensor hashes as the bytes
    it was given."""
    new = read_header(tmp)
    if not isinstance(new, Header):
        reason = new.reason if not isinstance(new, LfsPointer) else "it reads as an LFS pointer"
        raise _Failure(f"the new file does not read back ({reason})")
    problem = (
        _format_error(new)
        or next((p.message for p in entry_problems(new) if not p.error), None)
        or (new.warnings and new.warnings[0])
    )
    if problem:
        raise _Failure(f"the new file does not pass the safetensors checks: {problem}")
    planned = [(s.name, s.dtype, s.shape) for s in slots]
    if [(e.name, e.dtype, e.shape) for e in new.entries] != planned:
        raise _Failure("the new file's header does not list the planned tensors")
    if new.metadata != metadata:
        raise _Failure("the new file's __metadata__ differs from the original's")
    if new.file_size != new_size or new.header_size % 8:
        raise _Failure("the new file does not have the planned size and alignment")
    data_start = LENGTH_PREFIX + new.header_size
    with tmp.open("rb", buffering=0) as f:
        # The offsets come from the header as read back, not from the plan, so a misplaced
        # tensor cannot hash right.
        for info in new.tensors.values():
            size = info.end - info.begin
            if (
                _stream(f, data_start + info.begin, size, buffer, "the new file")
                != digests[info.name]
            ):
                raise _Failure(f"tensor {info.name!r} reads back different from what was written")


def _version(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def _write_new(slot: _Slot, tensor: NewTensor, sink: _Sink) -> bytes:
    """Write a new tensor's chunks, checking they add up to its size; return their hash."""
    h = hashlib.blake2b(digest_size=32)
    written = 0
    for chunk in tensor.chunks():
        written += len(chunk)
        if written > slot.size:
            break
        h.update(chunk)
        sink.write(memoryview(chunk))
    if written != slot.size:
        more = "more than" if written > slot.size else f"{written:,} bytes, not"
        raise _Failure(
            f"the data given for tensor {slot.name!r} was {more} the {slot.size:,} bytes a "
            f"{slot.dtype} tensor of shape {list(slot.shape)} takes"
        )
    return h.digest()


def _stream(
    f: FileIO, start: int, size: int, buffer: memoryview, what: str, sink: _Sink | None = None
) -> bytes:
    """Hash `size` bytes of `f` from `start`, writing them to `sink` too; one buffer at a time.

    Read errors become a _Failure naming `what` was being read; write errors stay OSErrors, which
    the caller reports as a failure to write.
    """
    h = hashlib.blake2b(digest_size=32)
    remaining = size
    while remaining:
        part = buffer[: min(remaining, len(buffer))]
        at = start + size - remaining
        try:
            f.seek(at)
            n = f.readinto(part)
        except OSError as e:
            raise _Failure(f"reading {what} failed at byte {at:,}: {_describe(e)}") from e
        if not n:
            raise _Failure(
                f"{what} ended at byte {at:,}, {remaining:,} bytes early; "
                "was the file truncated during the rewrite?"
            )
        chunk = part[:n]
        h.update(chunk)
        if sink is not None:
            sink.write(chunk)
        remaining -= n
    return h.digest()


# --- atomic replacement ------------------------------------------------------------------------


class _Sink:
    """Writes to a file descriptor, retrying short writes and counting bytes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.written = 0

    def write(self, data: memoryview) -> None:
        while data:
            n = _write(self.fd, data)
            if n <= 0:  # a regular file never does this; do not spin if one does
                raise OSError(errno.EIO, "write made no progress")
            data = data[n:]
            self.written += n


def _replace_atomically(
    target: Path,
    st: os.stat_result | None,
    write: Callable[[_Sink], None],
    verify: Callable[[Path], None],
    backup: bool,
    before_replace: Callable[[], None] | None,
    *,
    exclusive: bool = False,
) -> Path | None:
    """Write a temporary file next to `target` with `write`, fsync it, `verify` it, then rename it
    over `target` (keeping the original as a backup if asked) and fsync the folder. With
    `exclusive` (a new file), a `target` that appeared meanwhile is never replaced.

    Raises _Failure on any error before the rename, having removed the temporary file and any
    backup it made: the original is then untouched. Returns the backup's path.
    """
    folder = target.parent
    stage = f"creating a temporary file in {folder}"
    tmp: Path | None = None
    fd = -1
    sink: _Sink | None = None
    kept: Path | None = None
    try:
        tmp, fd = _create_temp(target, private=st is not None)
        if st is not None:
            stage = "giving the new file the original's permissions"
            _copy_owner_and_mode(fd, st)
        stage = "writing the new file"
        sink = _Sink(fd)
        write(sink)
        stage = "syncing the new file to disk"
        _fsync(fd)
        # Drop the new file's now-clean pages from the page cache, so that `verify` reads what
        # reached the disk rather than what we just handed the kernel.
        if hasattr(os, "posix_fadvise"):
            with contextlib.suppress(OSError):  # only a hint
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        fd = -1
        stage = "verifying the new file"
        verify(tmp)
        if before_replace is not None:
            before_replace()
        if backup and st is not None:
            stage = "keeping a backup of the original"
            kept = _make_backup(target, st)
        stage = "replacing the original"
        if exclusive:
            stage = "putting the new file in place"
            _place_new(tmp, target)
        else:
            tmp.replace(target)
    except BaseException as e:
        # A KeyboardInterrupt can land just after the replace; the backup is then the only name
        # left for the original, so it is removed only while the original is still in place.
        if kept is not None and st is not None and not _is_same_file(target, st):
            kept = None
        leftover = _discard(fd, tmp, kept)
        if isinstance(e, OSError):
            done = (
                f" after {sink.written:,} bytes" if stage == "writing the new file" and sink else ""
            )
            raise _Failure(f"{stage} failed{done}: {_describe(e)}{leftover}") from e
        if isinstance(e, _Failure) and leftover:
            raise _Failure(f"{e}{leftover}") from e
        raise
    try:
        _sync_dir(folder)
    except OSError as e:
        kept_note = f" (the original is kept as {kept.name})" if kept else ""
        raise RewriteError(
            target,
            f"syncing the folder after the replace failed: {_describe(e)}{kept_note}",
            original_intact=False,
        ) from e
    return kept


def _place_new(tmp: Path, target: Path) -> None:
    """Give the verified temporary file the name `target`, failing rather than replace a file
    that took that name meanwhile: a hard link fails if the name is taken."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise _Failure(f"{target.name} appeared meanwhile; it is left as it is") from None
    except OSError as e:
        if e.errno not in _NO_HARDLINKS:
            raise
        if os.path.lexists(target):
            raise _Failure(f"{target.name} appeared meanwhile; it is left as it is") from None
        tmp.replace(target)
        return
    with contextlib.suppress(OSError):  # the new file is in place under its name either way
        tmp.unlink()


def _is_same_file(path: Path, st: os.stat_result) -> bool:
    try:
        now = os.lstat(path)
    except OSError:
        return False
    return (now.st_ino, now.st_dev) == (st.st_ino, st.st_dev)


def _create_temp(target: Path, *, private: bool) -> tuple[Path, int]:
    # Hidden, named after the target and marked as ours, so a leftover from a SIGKILL is easy to
    # recognise; O_EXCL so we never write into someone else's file.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    # 0o600 until the original's bits are copied over (they may be stricter than the umask's); a
    # new file gets 0o666 less the umask, as `open()` would give it.
    mode = 0o600 if private else 0o666
    for _ in range(100):
        tmp = target.with_name(f".{target.name[:120]}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            return tmp, os.open(tmp, flags, mode)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name")


def _copy_owner_and_mode(fd: int, st: os.stat_result) -> None:
    if hasattr(os, "fchown"):
        now = os.fstat(fd)
        if (now.st_uid, now.st_gid) != (st.st_uid, st.st_gid):
            # Only root may give a file away; otherwise the new file belongs to whoever fixes it.
            with contextlib.suppress(PermissionError):
                os.fchown(fd, st.st_uid, st.st_gid)
    # After fchown, which clears set-id bits.
    os.chmod(fd, stat.S_IMODE(st.st_mode))


def _make_backup(target: Path, st: os.stat_result) -> Path:
    """Keep the original under the first free `<name>.bak[.N]` and return that path.

    A hard link costs no space or time, and `os.link` fails rather than overwrite, so no backup is
    ever clobbered. Where the filesystem cannot hard-link, the original is copied to a hidden
    temporary file first and renamed onto a name reserved with O_EXCL, so that a crash mid-copy
    never leaves a truncated file that looks like a backup.
    """
    try:
        return _claim_backup_name(target, lambda candidate: os.link(target, candidate))
    except OSError as e:
        if e.errno not in _NO_HARDLINKS:
            raise
    copy, fd = _create_temp(target, private=True)
    try:
        try:
            _copy_owner_and_mode(fd, st)
            with target.open("rb", buffering=0) as src:
                size = os.fstat(src.fileno()).st_size
                buffer = memoryview(bytearray(CHUNK_SIZE))
                _stream(src, 0, size, buffer, "the original", _Sink(fd))
            _fsync(fd)
        finally:
            os.close(fd)
        return _claim_backup_name(target, lambda candidate: _move_onto_new_name(copy, candidate))
    except BaseException:
        copy.unlink(missing_ok=True)
        raise


def _claim_backup_name(target: Path, put: Callable[[Path], None]) -> Path:
    for i in range(_MAX_BACKUPS):
        candidate = target.with_name(f"{target.name}{BACKUP_SUFFIX}{f'.{i}' if i else ''}")
        try:
            put(candidate)
        except FileExistsError:
            continue
        return candidate
    raise _Failure(
        f"every backup name from {target.name}{BACKUP_SUFFIX} to .{_MAX_BACKUPS - 1} is taken"
    )


def _move_onto_new_name(source: Path, name: Path) -> None:
    """Rename `source` to `name`, raising FileExistsError rather than replace an existing file."""
    os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # reserve the name
    try:
        source.replace(name)
    except BaseException:
        name.unlink(missing_ok=True)
        raise


def _discard(fd: int, tmp: Path | None, kept: Path | None) -> str:
    """Clean up after a failure before the replace; describe anything that could not be removed."""
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)
    left: list[str] = []
    for path in (tmp, kept):
        if path is None:
            continue
        try:
            path.unlink(missing_ok=True)
        except OSError:
            left.append(path.name)
    return f" (could not remove {', '.join(left)})" if left else ""


def _sync_dir(folder: Path) -> None:
    """fsync the folder so the rename itself is on disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        _fsync(fd)
    except OSError as e:
        if e.errno not in _DIR_SYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)


def _check_target(target: Path) -> os.stat_result | None:
    """The file's stat, None if it does not exist, or _Failure if we must not replace it."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise _Failure(f"cannot look at the file ({_describe(e)})") from e
    if stat.S_ISLNK(st.st_mode):
        # Replacing the link would detach it from its target; rewriting the target in place would,
        # in a Hugging Face cache, change a content-addressed blob other snapshots share.
        raise _Failure(
            f"it is a symbolic link (to {target.readlink()}); in a Hugging Face cache the file it "
            "points to is shared by other revisions, so never fix it in place: copy the folder "
            "with its links resolved (`cp -rL SNAPSHOT COPY`) and fix the copy"
        )
    if not stat.S_ISREG(st.st_mode):
        raise _Failure("it is not a regular file")
    if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
        # Even root could rename over it; a write-protected file says "do not change me".
        raise _Failure(f"the file is read-only (mode {stat.S_IMODE(st.st_mode):04o})")
    return st


def _check_free_space(target: Path, needed: int) -> None:
    """Refuse up front rather than fill the disk and fail after writing most of a huge file.

    `f_bavail` (what non-root may use) even for root: a fix should not eat the reserved blocks.
    Where the filesystem cannot say, the write itself will fail cleanly on ENOSPC instead.
    """
    if not hasattr(os, "statvfs"):
        return
    try:
        vfs = os.statvfs(target.parent)
    except OSError:
        return
    free = vfs.f_bavail * vfs.f_frsize
    if needed > free:
        raise _Failure(
            f"the new file needs {needed:,} bytes but only {free:,} are free in {target.parent}"
        )


def _describe(e: OSError) -> str:
    code = errno.errorcode.get(e.errno) if e.errno is not None else None
    text = e.strerror or str(e)
    return f"{text} ({code})" if code else text


def _one_line(text: str) -> str:
    # Tensor names and paths may hold newlines or other control characters; escape them so the
    # message stays one line.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
