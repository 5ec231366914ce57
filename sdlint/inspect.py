"""What a checkpoint holds, and how two checkpoints differ: pure functions over the read stage's
checkpoint description, for `sdlint show` and `sdlint diff`.

    contents = describe(checkpoint)          # tensors, modules, metadata, shards
    difference = compare(describe(a), describe(b))

Header-only like everything else: sizes come from dtype and shape, never from reading data. Both
results are plain records with a JSON form (`to_dict`) that scripts can rely on; rendering as
text is the commands' job.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

from sdlint.checkpoint import Checkpoint
from sdlint.dtypes import DTYPE_BITS, shape_text
from sdlint.formats import LfsPointer, Unreadable
from sdlint.formats.safetensors import Header
from sdlint.record import field, record
from sdlint.sources import FileRef

DEFAULT_DEPTH = 2  # `roberta.encoder`, `classifier.out_proj`, `model.layers`


@record
class TensorRow:
    """One tensor as `show` lists it. `shard` is the file it is read from, for sharded
    checkpoints only (its name relative to the index's folder)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    shard: str | None = None

    @property
    def parameters(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def nbytes(self) -> int | None:
        """Size of the data, from dtype and shape; None for a dtype of unknown size."""
        bits = DTYPE_BITS.get(self.dtype)
        return None if bits is None else (self.parameters * bits + 7) // 8

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "parameters": self.parameters,
            "bytes": self.nbytes,
        }
        if self.shard is not None:
            row["shard"] = self.shard
        return row


@record
class ModuleTotal:
    """The tensors under one module prefix, summed."""

    module: str  # "" for tensors at the top level
    tensors: int
    parameters: int
    nbytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "tensors": self.tensors,
            "parameters": self.parameters,
            "bytes": self.nbytes,
        }


@record
class Contents:
    """What one checkpoint holds. `problems` name the files that could not be read: their
    tensors are not listed (`sdlint check` says why)."""

    path: str
    tensors: tuple[TensorRow, ...]
    metadata: Mapping[str, str] | None = None  # `__metadata__` (of the first shard for an index)
    index_metadata: Mapping[str, object] | None = None  # an index's `metadata`
    files: tuple[str, ...] = ()  # the weights files read, for an index
    problems: tuple[str, ...] = ()

    @property
    def parameters(self) -> int:
        return sum(t.parameters for t in self.tensors)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes or 0 for t in self.tensors)

    def modules(self, depth: int = DEFAULT_DEPTH) -> list[ModuleTotal]:
        groups: dict[str, list[TensorRow]] = {}
        for tensor in self.tensors:
            groups.setdefault(module_of(tensor.name, depth), []).append(tensor)
        return [
            ModuleTotal(
                name,
                len(rows),
                sum(r.parameters for r in rows),
                sum(r.nbytes or 0 for r in rows),
            )
            for name, rows in sorted(groups.items(), key=lambda item: name_order(item[0]))
        ]

    def to_dict(self, depth: int = DEFAULT_DEPTH) -> dict[str, Any]:
        return {
            "path": self.path,
            "tensors": len(self.tensors),
            "parameters": self.parameters,
            "bytes": self.nbytes,
            "metadata": dict(self.metadata) if self.metadata is not None else None,
            "index_metadata": (
                dict(self.index_metadata) if self.index_metadata is not None else None
            ),
            "files": list(self.files),
            "problems": list(self.problems),
            "modules": [m.to_dict() for m in self.modules(depth)],
            "tensor_list": [t.to_dict() for t in self.tensors],
        }


def module_of(name: str, depth: int = DEFAULT_DEPTH) -> str:
    """The module a tensor belongs to, cut to `depth` levels: `roberta.encoder` for
    `roberta.encoder.layer.0.attention.self.query.weight` at depth 2, `classifier` for
    `classifier.weight`, "" for a top-level `weight`."""
    parts = name.split(".")[:-1]
    return ".".join(parts[:depth])


def name_order(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key: numbered layers in numeric order (`layer.2` before `layer.10`)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in name.split("."))


def describe(checkpoint: Checkpoint) -> Contents:
    """The contents of a checkpoint as the read stage described it (no further reads)."""
    sharded = checkpoint.index is not None
    file_of = checkpoint.file_of
    rows = tuple(
        TensorRow(
            info.name,
            info.dtype,
            info.shape,
            _relative(file_of[name], checkpoint.path) if sharded else None,
        )
        for name, info in sorted(checkpoint.tensors.items(), key=lambda item: name_order(item[0]))
    )
    headers = checkpoint.headers
    metadata = headers[0].metadata if headers else None  # the one format that has it
    problems = [_problem(result) for result in checkpoint.files]
    problems.extend(f"{name}: listed in the index, not found" for name in checkpoint.missing_shards)
    if checkpoint.index is not None and checkpoint.index.problem is not None:
        problems.append(f"{checkpoint.index.path.display}: {checkpoint.index.problem}")
    return Contents(
        path=checkpoint.display_path,
        tensors=rows,
        metadata=metadata,
        index_metadata=checkpoint.index.metadata if checkpoint.index is not None else None,
        files=tuple(_relative(h.path, checkpoint.path) for h in checkpoint.files)
        if sharded
        else (),
        problems=tuple(p for p in problems if p),
    )


def _relative(file: FileRef, index: FileRef) -> str:
    """`file` named relative to the folder of `index` (a shard beside its index), else whole."""
    folder = posixpath.dirname(index.display)
    prefix = folder if not folder or folder.endswith("/") else folder + "/"
    return file.display[len(prefix) :] if file.display.startswith(prefix) else file.display


def _problem(result: object) -> str:
    if isinstance(result, Header):
        bad = [e.name for e in result.entries if e.errors]
        if bad:
            return f"{result.path.display}: {len(bad)} malformed tensor entries not listed"
        return ""
    if isinstance(result, Unreadable):
        return f"{result.path.display}: cannot be read: {result.reason}"
    if isinstance(result, LfsPointer):
        return f"{result.path.display}: a Git LFS pointer, not the weights (run `git lfs pull`)"
    return ""


# --- diff --------------------------------------------------------------------------------------


@record
class Change:
    """A tensor both checkpoints hold, with another dtype or shape in each."""

    name: str
    before: TensorRow
    after: TensorRow

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "a": {"dtype": self.before.dtype, "shape": list(self.before.shape)},
            "b": {"dtype": self.after.dtype, "shape": list(self.after.shape)},
        }


@record
class Difference:
    """How checkpoint `b` differs from `a`, by tensor name, dtype and shape (never data)."""

    a: str
    b: str
    only_in_a: tuple[TensorRow, ...] = ()
    only_in_b: tuple[TensorRow, ...] = ()
    changed: tuple[Change, ...] = ()
    same: int = 0  # tensors equal in name, dtype and shape
    metadata_changed: bool = False

    @property
    def differs(self) -> bool:
        """Whether the tensors differ (`__metadata__` alone does not count)."""
        return bool(self.only_in_a or self.only_in_b or self.changed)

    def by_module(self, depth: int = DEFAULT_DEPTH) -> list[ModuleDifference]:
        groups: dict[str, ModuleDifference] = {}

        def group(name: str) -> ModuleDifference:
            module = module_of(name, depth)
            return groups.setdefault(module, ModuleDifference(module))

        for row in self.only_in_a:
            group(row.name).only_in_a.append(row)
        for row in self.only_in_b:
            group(row.name).only_in_b.append(row)
        for change in self.changed:
            group(change.name).changed.append(change)
        return [groups[name] for name in sorted(groups, key=name_order)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "differs": self.differs,
            "only_in_a": [_spec(r) for r in self.only_in_a],
            "only_in_b": [_spec(r) for r in self.only_in_b],
            "changed": [c.to_dict() for c in self.changed],
            "same": self.same,
            "metadata_changed": self.metadata_changed,
        }


@record(frozen=False)
class ModuleDifference:
    module: str
    only_in_a: list[TensorRow] = field(default_factory=list)
    only_in_b: list[TensorRow] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.only_in_a) + len(self.only_in_b) + len(self.changed)


def compare(a: Contents, b: Contents) -> Difference:
    """The tensors only in `a`, only in `b`, and in both with another dtype or shape."""
    left = {t.name: t for t in a.tensors}
    right = {t.name: t for t in b.tensors}
    changed = tuple(
        Change(name, left[name], right[name])
        for name in sorted(left.keys() & right.keys(), key=name_order)
        if (left[name].dtype, left[name].shape) != (right[name].dtype, right[name].shape)
    )
    common = len(left.keys() & right.keys())
    return Difference(
        a=a.path,
        b=b.path,
        only_in_a=_rows(left, left.keys() - right.keys()),
        only_in_b=_rows(right, right.keys() - left.keys()),
        changed=changed,
        same=common - len(changed),
        metadata_changed=(a.metadata or {}) != (b.metadata or {}),
    )


def _rows(rows: Mapping[str, TensorRow], names: Iterable[str]) -> tuple[TensorRow, ...]:
    return tuple(rows[name] for name in sorted(names, key=name_order))


def _spec(row: TensorRow) -> dict[str, Any]:
    return {"name": row.name, "dtype": row.dtype, "shape": list(row.shape)}


def shape_change(change: Change) -> str:
    """`[2, 768] -> [5, 768]`; with the dtypes when they differ: `F32 [2] -> BF16 [2]`."""
    before, after = change.before, change.after
    if before.dtype == after.dtype:
        return f"{shape_text(before.shape)} -> {shape_text(after.shape)}"
    return f"{before.dtype} {shape_text(before.shape)} -> {after.dtype} {shape_text(after.shape)}"
