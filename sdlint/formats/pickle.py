"""torch.save checkpoints (`pytorch_model.bin`, `*.pt`, `*.pth`, `*.ckpt`), read without running.

A torch.save file is a pickle: loading it with `torch.load(weights_only=False)` (or any torch
before 2.6) runs whatever the pickle calls. This reader never unpickles. It walks the pickle's
opcodes (`pickletools.genops`) and simulates the unpickler's stack, giving the globals torch writes
for tensors and plain containers stand-ins that describe instead of build, and recording every other
global as unsafe (the pickle is still walked to the end, so every such global is named). Tensor
storages are never read: their records (zip entries, or the legacy format's size words) are only
measured. torch is not imported.

Two layouts exist (torch/serialization.py): the zip archive torch writes since 1.6
(`<folder>/data.pkl` plus one `<folder>/data/<key>` entry per storage), and the legacy stream of
pickles (magic number, protocol version, system info, the main pickle, the storage keys) followed
by the raw storages, each after an 8-byte element count.
"""

from __future__ import annotations

import _compat_pickle
import io
import itertools
import math
import pickletools
import re
import struct
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

from sdlint.dtypes import TORCH_DTYPES, TORCH_STORAGE_DTYPES
from sdlint.formats import PICKLE, LfsPointer, Tensor, Unreadable
from sdlint.formats.names import add_variant, index_name, plain_name
from sdlint.formats.safetensors import LFS_SIGNATURE, _parse_lfs_pointer
from sdlint.record import field, record, replace
from sdlint.sources import FileRef, Reader, ReadError, Source
from sdlint.sources.local import LocalFile

# Bounds on what one file may make the reader do.
MAX_PICKLE_BYTES = 100_000_000
MAX_OPCODES = 10_000_000
MAX_MEMO = 2_000_000
MAX_STACK = 1_000_000
MAX_DIMS = 64
MAX_WRAPPER_DEPTH = 4
MAX_ZIP_ENTRIES = 1_000_000
_DIM_LIMIT = 2**63

# The legacy format's first pickle (torch/serialization.py MAGIC_NUMBER).
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
ZIP_MAGIC = b"PK\x03\x04"
# Keys under which state dicts are commonly wrapped: Lightning `.ckpt`, DeepSpeed, training scripts.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module")

Layout = Literal["zip", "legacy"]
ProblemKind = Literal["unreadable", "not-state-dict", "storage", "unsupported-tensor"]


@record
class PickleGlobal:
    """A global the pickle imports that is not on the allow-list: loading the file imports it."""

    module: str
    name: str
    position: int  # byte offset of the opcode in its pickle
    opcode: str  # GLOBAL, STACK_GLOBAL, INST, EXT1, ...
    called: bool  # the pickle calls it (REDUCE, INST, OBJ, NEWOBJ), not only names it
    written: str | None = None  # the name as written, when Python's fix_imports renames it
    where: str = ""  # "byte 120 of archive/data.pkl", "byte 4,096 of the file"

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}" if self.name else self.module


@record
class PickleTensor:
    """One tensor of the state dict, as the pickle describes it; its bytes are never read."""

    name: str
    dtype: str | None  # safetensors dtype name ("F32"); None when safetensors has none
    torch_dtype: str  # torch's name ("float32", "complex128")
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    storage: str  # the storage key
    storage_offset: int  # in elements of the tensor's dtype
    itemsize: int  # bytes per element

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def storage_bytes_needed(self) -> int:
        """Bytes of the storage the tensor reaches: up to its last element."""
        if self.numel == 0:
            return 0
        span = 1 + sum((d - 1) * s for d, s in zip(self.shape, self.stride, strict=True))
        return (self.storage_offset + span) * self.itemsize


@record
class StorageRecord:
    """A storage the pickle refers to, and what the file holds for it."""

    key: str
    storage_type: str  # "FloatStorage", "UntypedStorage", ...
    numel: int  # elements the pickle declares
    element_size: int
    location: str  # "cpu", "cuda:0", ...
    entry: str | None  # the zip entry (zip layout); None for the legacy layout
    data_offset: int | None  # where its bytes start in the file; None when it has no record
    size: int | None  # bytes the file holds for it; None when its record is missing
    compressed: bool = False  # a compressed zip entry (torch never writes one)

    @property
    def declared_bytes(self) -> int:
        return self.numel * self.element_size


@record
class PickleProblem:
    kind: ProblemKind
    message: str
    tensor: str | None = None


@record
class PickleCheckpoint:
    """What a torch.save file holds, as far as can be known without running it.

    `entries` is empty unless the pickle was read to its end and holds a state dict (at the top,
    or under one of WRAPPER_KEYS, named in `wrapper`). `unsafe` lists every global outside the
    allow-list, whatever else the file holds.
    """

    path: FileRef
    layout: Layout | None  # None: neither a zip archive nor a pickle stream
    file_size: int
    entries: tuple[PickleTensor, ...] = ()
    storages: tuple[StorageRecord, ...] = ()
    wrapper: tuple[str, ...] = ()
    other_entries: tuple[str, ...] = ()  # state dict keys whose values are not tensors
    unsafe: tuple[PickleGlobal, ...] = ()
    problems: tuple[PickleProblem, ...] = ()
    pickle_name: str = ""  # "archive/data.pkl", or "main pickle" for the legacy layout
    byteorder: str | None = None  # "little" or "big" as the file says; None when it does not

    @property
    def readable(self) -> bool:
        """The pickle was read to its end and a state dict was found in it."""
        return not any(p.kind in ("unreadable", "not-state-dict") for p in self.problems)

    @property
    def safe(self) -> bool:
        return not self.unsafe

    @property
    def format(self) -> str:
        return PICKLE

    @property
    def tensors(self) -> dict[str, Tensor]:
        """The described tensors with a safetensors dtype, by name (a `FileDescription`)."""
        return {t.name: Tensor(t.name, t.dtype, t.shape) for t in self.entries if t.dtype}

    def storage(self, key: str) -> StorageRecord | None:
        return next((s for s in self.storages if s.key == key), None)


@record
class UnreadablePickle(Unreadable):
    """A torch.save file whose tensors cannot be handed to the model checks (unreadable, no state
    dict, tensors sdlint does not describe). Its description still goes along: SD006 names its
    globals whatever else is wrong."""

    description: PickleCheckpoint | None = None


PickleResult = PickleCheckpoint | UnreadablePickle | LfsPointer
_BLOCKING: tuple[ProblemKind, ...] = ("unreadable", "not-state-dict", "unsupported-tensor")


def read_pickle(source: Source | Path) -> PickleResult:
    """What discovery keeps for a torch.save file: its description when the model checks can use
    it, else an `UnreadablePickle` carrying it (or an `LfsPointer`). Never raises on bad input."""
    result = read_pickle_checkpoint(source)
    if isinstance(result, LfsPointer):
        return result
    blocking = next((p for p in result.problems if p.kind in _BLOCKING), None)
    if blocking is None:
        return result
    return UnreadablePickle(result.path, blocking.message, PICKLE, result)


# ---------------------------------------------------------------------------------------------
# The allow-list: what torch.save writes for tensors and plain containers (a subset of torch's own
# `weights_only` allow-list, torch/_weights_only_unpickler.py). Nothing here is ever imported.

_STORAGE_MODULES = ("torch", "torch.cuda", "torch.storage")
_DESCRIBED_REBUILDS = {
    "_rebuild_tensor",
    "_rebuild_tensor_v2",
    "_rebuild_tensor_v3",
    "_rebuild_parameter",
    "_rebuild_parameter_with_state",
}
# Allowed by torch's weights_only unpickler and harmless, but not described here.
_OPAQUE_REBUILDS = {
    "_rebuild_qtensor": "a quantized tensor",
    "_rebuild_sparse_tensor": "a sparse tensor",
    "_rebuild_nested_tensor": "a nested tensor",
    "_rebuild_meta_tensor_no_storage": "a meta tensor (no data)",
    "_rebuild_device_tensor_from_cpu_tensor": "a tensor of another device",
}
_QSCHEMES = {
    "per_tensor_affine",
    "per_tensor_symmetric",
    "per_channel_affine",
    "per_channel_symmetric",
    "per_channel_affine_float_qparams",
}
_PLAIN = {
    ("collections", "OrderedDict"),
    ("collections", "Counter"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch", "Tensor"),
    ("torch.nn.parameter", "Parameter"),
    ("torch.serialization", "_get_layout"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("_codecs", "encode"),
    ("builtins", "bytearray"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
}


def is_allowed(module: str, name: str) -> bool:
    if (module, name) in _PLAIN:
        return True
    if module == "torch._utils":
        return name in _DESCRIBED_REBUILDS or name in _OPAQUE_REBUILDS
    if module in _STORAGE_MODULES and name in TORCH_STORAGE_DTYPES:
        return module != "torch.cuda" or name != "UntypedStorage"
    return module == "torch" and (name in TORCH_DTYPES or name in _QSCHEMES)


# ---------------------------------------------------------------------------------------------
# Values on the simulated stack. Everything the pickle builds is a plain container (tuple, list,
# dict, set), a Python scalar, or one of these; they hash by identity, so no hashing recurses.


@record(frozen=False, eq=False)
class _Ref:
    module: str
    name: str
    allowed: bool
    written: str | None = None


@record(frozen=False, eq=False)
class _Storage:
    key: str
    storage_type: str
    torch_dtype: str


@record(frozen=False, eq=False)
class _Tensor:
    torch_dtype: str
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    storage: str
    offset: int


@record(frozen=False, eq=False)
class _Opaque:
    what: str  # "a call of os.system", "a sparse tensor", ...


class _Malformed(Exception):
    """The pickle does something the real unpickler would fail on (or that makes no sense)."""


@record(frozen=False)
class _PickleRun:
    """The outcome of walking one pickle."""

    value: object = None
    error: str | None = None  # why the walk stopped early; None when it reached STOP
    end: int = 0  # byte offset after STOP
    unsafe: list[PickleGlobal] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: object) -> str:
    """A value in a message: short strings and numbers as they are, anything else by its type
    (never `repr` of a container, which may be nested arbitrarily deep)."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if type(value) in (int, bool) or value is None:
        text = repr(value)
        return text if len(text) <= 60 else "a large integer"
    return f"a {type(value).__name__}"


def _int_arg(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value < _DIM_LIMIT:
        raise _Malformed(f"{what} is not a non-negative integer")
    return value


def _dims(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or len(value) > MAX_DIMS:
        raise _Malformed(f"{what} is not a tuple of at most {MAX_DIMS} integers")
    return tuple(_int_arg(v, what) for v in value)


class _Interpreter:
    """Walks one pickle's opcodes, simulating the unpickler without ever importing or calling."""

    def __init__(self, persistent_load: Callable[[object], object] | None) -> None:
        self.persistent_load = persistent_load
        self.stack: list[object] = []
        self.marks: list[list[object]] = []
        self.memo: dict[int, object] = {}
        self.proto = 0
        self.run = _PickleRun()
        self._named: set[tuple[str, str, bool]] = set()
        self._strings: list[str] = []  # recent string pushes, for STACK_GLOBAL after a failure

    # -- the walk --------------------------------------------------------------------------

    def walk(self, stream: BinaryIO) -> _PickleRun:
        ops = pickletools.genops(stream)
        count = 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pickletools warns on odd string escapes
            while True:
                try:
                    opcode, arg, pos = next(ops)
                except StopIteration:
                    break
                # pickletools parses hostile bytes: whatever it raises means "not a pickle here".
                except Exception as e:
                    self._fail(f"not a valid pickle: {_clip(str(e))}")
                    break
                count += 1
                if count > MAX_OPCODES:
                    self._fail(f"pickle has more than {MAX_OPCODES:,} opcodes")
                    break
                position = pos if pos is not None else 0
                if self.run.error is not None:
                    self._scan(opcode.name, arg, position)
                    continue
                try:
                    self._step(opcode.name, arg, position)
                except _Malformed as e:
                    self._fail(f"{e} (opcode {opcode.name} at byte {position})")
                    self._scan(opcode.name, arg, position)
                if opcode.name == "STOP":
                    self.run.end = stream.tell()
        return self.run

    def _fail(self, reason: str) -> None:
        if self.run.error is None:
            self.run.error = reason

    def _scan(self, name: str, arg: object, position: int) -> None:
        """After the simulation has stopped: still name every global the rest refers to."""
        if name in ("GLOBAL", "INST") and isinstance(arg, str):
            module, _, attr = arg.partition(" ")
            self._global(module, attr, name, position, called=name == "INST")
        elif name == "STACK_GLOBAL" and len(self._strings) >= 2:
            self._global(self._strings[-2], self._strings[-1], name, position, called=False)
        elif name in ("EXT1", "EXT2", "EXT4"):
            self._extension(name, arg, position)
        if isinstance(arg, str):
            self._strings = [*self._strings[-1:], arg]

    # -- globals ---------------------------------------------------------------------------

    def _global(self, module: str, name: str, opcode: str, position: int, called: bool) -> _Ref:
        written = None
        if self.proto < 3:  # Python's fix_imports, as pickle.Unpickler applies it
            if (module, name) in _compat_pickle.NAME_MAPPING:
                written = f"{module}.{name}"
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                written = f"{module}.{name}"
                module = _compat_pickle.IMPORT_MAPPING[module]
        allowed = is_allowed(module, name)
        if not allowed:
            self._unsafe(PickleGlobal(module, name, position, opcode, called, written))
        return _Ref(module, name, allowed, written)

    def _unsafe(self, found: PickleGlobal) -> None:
        key = (found.module, found.name, found.called)
        if key in self._named:
            return
        if found.called:  # a call supersedes an earlier mere reference
            self.run.unsafe = [
                u
                for u in self.run.unsafe
                if (u.module, u.name) != (found.module, found.name) or u.called
            ]
        elif (found.module, found.name, True) in self._named:
            return
        self._named.add(key)
        self.run.unsafe.append(found)

    def _extension(self, opcode: str, code: object, position: int) -> None:
        # The copyreg extension registry maps a number to a global; which one is only known at
        # load time, so the reference itself is the finding.
        self._unsafe(PickleGlobal(f"copyreg extension {code}", "", position, opcode, False))

    # -- stack -----------------------------------------------------------------------------

    def _push(self, value: object) -> None:
        if len(self.stack) >= MAX_STACK:
            raise _Malformed(f"stack grows beyond {MAX_STACK:,} items")
        self.stack.append(value)

    def _pop(self) -> object:
        if not self.stack:
            raise _Malformed("stack underflow")
        return self.stack.pop()

    def _top(self) -> object:
        if not self.stack:
            raise _Malformed("stack underflow")
        return self.stack[-1]

    def _pop_mark(self) -> list[object]:
        """MARK saves the stack aside (as pickle.py's metastack does); this returns what was
        pushed since and restores it."""
        if not self.marks:
            raise _Malformed("no mark to pop to")
        items = self.stack
        self.stack = self.marks.pop()
        return items

    @staticmethod
    def _key(value: object) -> object:
        """A dict key or set item that hashes without recursion: scalars and flat tuples as they
        are; anything else stands in as an opaque value."""
        if value is None or type(value) in (str, int, float, bool, bytes, complex):
            return value
        if isinstance(value, (_Ref, _Storage, _Tensor, _Opaque)):
            return value
        if isinstance(value, tuple) and all(
            v is None or type(v) in (str, int, float, bool, bytes) for v in value
        ):
            return value
        return _Opaque("a key that is a container")

    # -- one opcode ------------------------------------------------------------------------

    def _step(self, op: str, arg: object, position: int) -> None:
        if isinstance(arg, str):
            self._strings = [*self._strings[-1:], arg]
        if op in _SIMPLE_PUSH:
            self._push(arg)
        elif op == "NONE":
            self._push(None)
        elif op == "NEWTRUE":
            self._push(True)
        elif op == "NEWFALSE":
            self._push(False)
        elif op == "PROTO":
            self.proto = arg if isinstance(arg, int) else 0
        elif op in ("FRAME", "STOP"):
            if op == "STOP":
                self.run.value = self._pop()
        elif op == "MARK":
            self.marks.append(self.stack)
            self.stack = []
        elif op == "POP":  # as pickle.py: on an empty stack, POP discards the mark
            if self.stack:
                self.stack.pop()
            else:
                self._pop_mark()
        elif op == "POP_MARK":
            self._pop_mark()
        elif op == "DUP":
            self._push(self._top())
        elif op in ("EMPTY_LIST",):
            self._push([])
        elif op == "EMPTY_TUPLE":
            self._push(())
        elif op == "EMPTY_DICT":
            self._push({})
        elif op == "EMPTY_SET":
            self._push(set())
        elif op == "LIST":
            self._push(self._pop_mark())
        elif op == "TUPLE":
            self._push(tuple(self._pop_mark()))
        elif op in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(op[-1])
            items = [self._pop() for _ in range(n)]
            self._push(tuple(reversed(items)))
        elif op == "DICT":
            items = self._pop_mark()
            self._push(self._dict_items({}, items))
        elif op == "FROZENSET":
            self._push(frozenset(self._key(v) for v in self._pop_mark()))
        elif op == "APPEND":
            value = self._pop()
            self._append(self._top(), [value])
        elif op == "APPENDS":
            items = self._pop_mark()
            self._append(self._top(), items)
        elif op == "SETITEM":
            value = self._pop()
            key = self._pop()
            self._setitems(self._top(), [key, value])
        elif op == "SETITEMS":
            items = self._pop_mark()
            self._setitems(self._top(), items)
        elif op == "ADDITEMS":
            items = self._pop_mark()
            target = self._top()
            if not isinstance(target, set):
                raise _Malformed("ADDITEMS on something that is not a set")
            target.update(self._key(v) for v in items)
        elif op in ("GET", "BINGET", "LONG_BINGET"):
            if not isinstance(arg, int) or arg not in self.memo:
                raise _Malformed(f"memo key {arg!r} was never set")
            self._push(self.memo[arg])
        elif op in ("PUT", "BINPUT", "LONG_BINPUT"):
            self._memoize(arg)
        elif op == "MEMOIZE":
            self._memoize(len(self.memo))
        elif op == "GLOBAL":
            module, _, name = str(arg).partition(" ")
            self._push(self._global(module, name, op, position, called=False))
        elif op == "STACK_GLOBAL":
            name_value = self._pop()
            module_value = self._pop()
            if not isinstance(module_value, str) or not isinstance(name_value, str):
                raise _Malformed("STACK_GLOBAL operands are not strings")
            self._push(self._global(module_value, name_value, op, position, called=False))
        elif op in ("EXT1", "EXT2", "EXT4"):
            self._extension(op, arg, position)
            self._push(_Opaque(f"copyreg extension {arg}"))
        elif op == "REDUCE":
            args = self._pop()
            func = self._pop()
            self._push(self._call(func, args, op, position))
        elif op == "INST":
            module, _, name = str(arg).partition(" ")
            ref = self._global(module, name, op, position, called=True)
            self._push(self._call(ref, tuple(self._pop_mark()), op, position))
        elif op == "OBJ":
            items = self._pop_mark()
            if not items:
                raise _Malformed("OBJ without a class")
            self._push(self._call(items[0], tuple(items[1:]), op, position))
        elif op == "NEWOBJ":
            args = self._pop()
            cls = self._pop()
            self._push(self._call(cls, args, op, position))
        elif op == "NEWOBJ_EX":
            self._pop()  # kwargs
            args = self._pop()
            cls = self._pop()
            self._push(self._call(cls, args, op, position))
        elif op == "BUILD":
            state = self._pop()
            self._build(self._top(), state, position)
        elif op == "BINPERSID":
            self._push(self._persistent(self._pop()))
        elif op == "PERSID":
            self._push(self._persistent(arg))
        else:  # NEXT_BUFFER, READONLY_BUFFER: out-of-band buffers, which torch never writes
            raise _Malformed(f"opcode {op} is not supported")

    def _memoize(self, key: object) -> None:
        if not isinstance(key, int):
            raise _Malformed("memo key is not an integer")
        if key not in self.memo and len(self.memo) >= MAX_MEMO:
            raise _Malformed(f"memo grows beyond {MAX_MEMO:,} entries")
        self.memo[key] = self._top()

    def _append(self, target: object, items: list[object]) -> None:
        if isinstance(target, list):
            target.extend(items)
        elif isinstance(target, _Opaque):
            pass
        else:
            raise _Malformed("APPEND to something that is not a list")

    def _setitems(self, target: object, items: list[object]) -> None:
        if isinstance(target, dict):
            self._dict_items(target, items)
        elif not isinstance(target, _Opaque):
            raise _Malformed("SETITEM on something that is not a dict")

    def _dict_items(
        self, target: dict[object, object], items: list[object]
    ) -> dict[object, object]:
        if len(items) % 2:
            raise _Malformed("odd number of items for a dict")
        for i in range(0, len(items), 2):
            target[self._key(items[i])] = items[i + 1]
        return target

    def _build(self, target: object, state: object, position: int) -> None:
        """BUILD sets state: harmless on the containers torch writes (an OrderedDict's
        `_metadata`); on anything else it would call `__setstate__`, which the allow-list never
        produces."""
        if isinstance(target, (dict, _Tensor, _Opaque)):
            return
        raise _Malformed("BUILD on an object that is not a container")

    # -- calls -----------------------------------------------------------------------------

    def _call(self, func: object, args: object, op: str, position: int) -> object:
        if isinstance(func, _Opaque):
            return _Opaque(func.what)
        if not isinstance(func, _Ref):
            raise _Malformed("calls something that is not a global")
        if not func.allowed:
            self._unsafe(
                PickleGlobal(
                    func.module, func.name, position, op, called=True, written=func.written
                )
            )
            return _Opaque(f"a call of {func.module}.{func.name}")
        if not isinstance(args, tuple):
            raise _Malformed(f"arguments of {func.module}.{func.name} are not a tuple")
        return _CALLS.get((func.module, func.name), _call_other)(self, func, args)

    def _persistent(self, pid: object) -> object:
        if self.persistent_load is None:
            raise _Malformed("persistent id outside the main pickle")
        return self.persistent_load(pid)


_SIMPLE_PUSH = {
    "INT",
    "BININT",
    "BININT1",
    "BININT2",
    "LONG",
    "LONG1",
    "LONG4",
    "FLOAT",
    "BINFLOAT",
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
    "BINBYTES",
    "SHORT_BINBYTES",
    "BINBYTES8",
    "UNICODE",
    "BINUNICODE",
    "SHORT_BINUNICODE",
    "BINUNICODE8",
}


def _rebuild_tensor(interp: _Interpreter, func: _Ref, args: tuple[object, ...]) -> object:
    """`_rebuild_tensor(storage, offset, size, stride)`, `_rebuild_tensor_v2(..., requires_grad,
    backward_hooks[, metadata])`, `_rebuild_tensor_v3(..., backward_hooks, dtype[, metadata])`."""
    expected = {
        "_rebuild_tensor": (4, 4),
        "_rebuild_tensor_v2": (6, 7),
        "_rebuild_tensor_v3": (7, 8),
    }
    low, high = expected[func.name]
    if not low <= len(args) <= high:
        raise _Malformed(f"{func.name} takes {low} to {high} arguments, not {len(args)}")
    storage = args[0]
    if isinstance(storage, _Opaque):
        return _Opaque(storage.what)
    if not isinstance(storage, _Storage):
        raise _Malformed(f"{func.name}: the first argument is not a storage")
    dtype = storage.torch_dtype
    if func.name == "_rebuild_tensor_v3":
        ref = args[6]
        if not isinstance(ref, _Ref) or ref.module != "torch" or ref.name not in TORCH_DTYPES:
            raise _Malformed("_rebuild_tensor_v3: the dtype argument is not a torch dtype")
        dtype = ref.name
    shape = _dims(args[2], "tensor size")
    stride = _dims(args[3], "tensor stride")
    if len(stride) != len(shape):
        raise _Malformed(f"tensor size {list(shape)} and stride {list(stride)} differ in length")
    return _Tensor(dtype, shape, stride, storage.key, _int_arg(args[1], "storage offset"))


def _rebuild_parameter(interp: _Interpreter, func: _Ref, args: tuple[object, ...]) -> object:
    if not args:
        raise _Malformed(f"{func.name} without arguments")
    if not isinstance(args[0], (_Tensor, _Opaque)):
        raise _Malformed(f"{func.name}: the first argument is not a tensor")
    return args[0]


def _rebuild_from_type(interp: _Interpreter, func: _Ref, args: tuple[object, ...]) -> object:
    """`_rebuild_from_type_v2(func, new_type, args, state)`: a tensor of a subclass, or with
    attributes. `new_type` is a global (named unsafe unless it is Tensor or Parameter); the
    inner call goes through the same allow-list."""
    if len(args) != 4 or not isinstance(args[2], tuple):
        raise _Malformed("_rebuild_from_type_v2 takes (func, type, args, state)")
    return interp._call(args[0], args[2], "REDUCE", 0)


def _ordered_dict(interp: _Interpreter, func: _Ref, args: tuple[object, ...]) -> object:
    if not args:
        return {}
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        out: dict[object, object] = {}
        for pair in args[0]:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise _Malformed(f"{func.name}: items are not pairs")
            out[interp._key(pair[0])] = pair[1]
        return out
    if len(args) == 1 and isinstance(args[0], dict):
        return dict(args[0])
    raise _Malformed(f"{func.module}.{func.name}: unexpected arguments")


def _size(interp: _Interpreter, func: _Ref, args: tuple[object, ...]) -> object:
    if len(args) != 1 or not isinstance(args[0], (tuple, list)):
        raise _Malformed("torch.Size takes one sequence")
    return tuple(args[0])


def _encode(interp: _Interpreter, func: _Ref, args: tuple[object, ...]) -> object:
    """`_codecs.encode(text, "latin1")`: how protocol 2 pickles write bytes."""
    if len(args) not in (1, 2) or not isinstance(args[0], str):
        raise _Malformed("_codecs.encode takes a string and an encoding")
    encoding = args[1] if len(args) == 2 else "utf-8"
    if encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise _Malformed(f"_codecs.encode with encoding {encoding!r}")
    try:
        return args[0].encode(str(encoding))
    except UnicodeEncodeError as e:
        raise _Malformed(f"_codecs.encode: {e}") from None


def _call_other(interp: _Interpreter, func: _Ref, args: tuple[object, ...]) -> object:
    if func.module == "torch._utils":
        return _Opaque(_OPAQUE_REBUILDS.get(func.name, func.name))
    if func.module == "builtins" and func.name in ("set", "frozenset"):
        items = args[0] if args and isinstance(args[0], (list, tuple)) else ()
        return {interp._key(v) for v in items}
    if func.module == "torch" and func.name == "device":
        return args[0] if args and isinstance(args[0], str) else "device"
    # Calling a dtype, a storage class or a type: nothing torch.save writes.
    return _Opaque(f"{func.module}.{func.name}(...)")


_CALLS: dict[tuple[str, str], Callable[[_Interpreter, _Ref, tuple[object, ...]], object]] = {
    **{("torch._utils", n): _rebuild_tensor for n in _DESCRIBED_REBUILDS if "tensor" in n},
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("collections", "OrderedDict"): _ordered_dict,
    ("collections", "Counter"): _ordered_dict,
    ("torch", "Size"): _size,
    ("_codecs", "encode"): _encode,
}


# ---------------------------------------------------------------------------------------------
# Persistent ids: torch's storages.


@record(frozen=False)
class _StorageTable:
    """Storages the main pickle declares, by key, in the order they are first named."""

    legacy: bool
    declared: dict[str, tuple[str, int, str, str]] = field(default_factory=dict)
    # key -> (storage type, numel, location, torch dtype)

    def load(self, pid: object) -> object:
        if not isinstance(pid, tuple) or not pid:
            raise _Malformed("persistent id is not a tuple")
        if pid[0] == "module" and self.legacy and len(pid) == 4:
            return pid[1]  # a pickled nn.Module's class: already named as a global
        if pid[0] != "storage" or len(pid) != (6 if self.legacy else 5):
            raise _Malformed(f"persistent id {_show(pid[0])} is not a storage")
        storage_type, key, location, numel = pid[1], pid[2], pid[3], pid[4]
        if isinstance(storage_type, _Opaque):
            return storage_type
        if not isinstance(storage_type, _Ref) or storage_type.name not in TORCH_STORAGE_DTYPES:
            raise _Malformed("persistent id names no storage type")
        if not storage_type.allowed:
            return _Opaque(f"a storage of type {storage_type.module}.{storage_type.name}")
        if not isinstance(key, str) or not isinstance(location, str):
            raise _Malformed("storage key or location is not a string")
        numel = _int_arg(numel, "storage size")
        if self.legacy and pid[5] is not None:
            return _Opaque("a view of a storage (pre-1.0 format)")
        torch_dtype = TORCH_STORAGE_DTYPES[storage_type.name]
        self.declared.setdefault(key, (storage_type.name, numel, location, torch_dtype))
        return _Storage(key, storage_type.name, torch_dtype)


# ---------------------------------------------------------------------------------------------
# Files.


class _Bounded(io.RawIOBase):
    """A read-only view of a file that ends after `limit` bytes from where it starts."""

    def __init__(self, f: BinaryIO, limit: int) -> None:
        self._f, self._start, self._limit = f, f.tell(), limit

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._f.tell() - self._start

    def read(self, size: int | None = -1) -> bytes:
        left = self._limit - self.tell()
        size = left if size is None or size < 0 else min(size, left)
        return self._f.read(max(size, 0))

    def readline(self, size: int | None = -1) -> bytes:
        left = self._limit - self.tell()
        size = left if size is None or size < 0 else min(size, left)
        return self._f.readline(max(size, 0))


class _SourceFile(io.RawIOBase):
    """A `Reader` (reads at an offset) as the seekable file zipfile and pickletools expect."""

    def __init__(self, reader: Reader) -> None:
        self._reader, self._position = reader, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        end = self._reader.size or 0
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: end}
        self._position = max(0, base[whence] + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        data = self._reader.read(self._position, len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


def read_pickle_checkpoint(source: Source | Path) -> PickleCheckpoint | LfsPointer:
    """Describe a torch.save file. Never raises for bad input: problems are in the result.

    Anything that is not a zip archive is read as the legacy layout, as torch.load does: it
    unpickles whatever the file starts with (a protocol 0 pickle has no header to recognise)."""
    if isinstance(source, Path):
        source = LocalFile(source)
    path = source.ref
    try:
        with source.open() as reader:
            size = reader.size
            if size is None:
                problem = _unreadable("the file's size is unknown, so it is not read")
                return PickleCheckpoint(path, None, 0, problems=(problem,))
            start = reader.read(0, len(LFS_SIGNATURE))
            if start == LFS_SIGNATURE and size <= 1024:
                return _parse_lfs_pointer(path, reader.read(0, 1024))
            f = cast(BinaryIO, io.BufferedReader(_SourceFile(reader), 1 << 16))
            if start.startswith(ZIP_MAGIC):
                return _read_zip(path, f, size)
            if reader.read(257, 5) == b"ustar":
                return _read_tar(path, f, size)
            if size:
                return _read_legacy(path, f, size)
    except (ReadError, OSError) as e:
        reason = e.reason if isinstance(e, ReadError) else f"cannot read the file: {e}"
        return PickleCheckpoint(path, None, 0, problems=(_unreadable(reason),))
    return PickleCheckpoint(
        path, None, 0, problems=(_unreadable("not a torch.save file: the file is empty"),)
    )


def _unreadable(message: str) -> PickleProblem:
    return PickleProblem("unreadable", message)


def _read_zip(path: FileRef, f: BinaryIO, size: int) -> PickleCheckpoint:
    def fail(message: str, unsafe: tuple[PickleGlobal, ...] = ()) -> PickleCheckpoint:
        return PickleCheckpoint(path, "zip", size, unsafe=unsafe, problems=(_unreadable(message),))

    # zipfile parses hostile bytes: whatever it raises means the archive cannot be read.
    try:
        archive = zipfile.ZipFile(f)
        infos = archive.infolist()
    except Exception as e:
        return fail(f"not a readable zip archive (truncated download?): {e}")
    if len(infos) > MAX_ZIP_ENTRIES:
        return fail(f"zip archive has more than {MAX_ZIP_ENTRIES:,} entries")
    # torch reads the records under the folder of the archive's first entry.
    first = infos[0].filename if infos else ""
    if "/" not in first:
        return fail("zip archive is not a torch.save archive: its first entry is not in a folder")
    folder = first.split("/", 1)[0]
    pickle_name = f"{folder}/data.pkl"
    entries = {i.filename: i for i in infos}
    info = entries.get(pickle_name)
    if info is None:
        other = " (a TorchScript archive?)" if f"{folder}/constants.pkl" in entries else ""
        return fail(f"zip archive has no {pickle_name}: not a torch.save archive{other}")
    if info.file_size > MAX_PICKLE_BYTES:
        return fail(f"{pickle_name} is {info.file_size:,} bytes, more than the reader's limit")
    try:
        with archive.open(info) as member:
            data = member.read(MAX_PICKLE_BYTES + 1)
    except Exception as e:
        return fail(f"cannot read {pickle_name} from the zip archive (truncated download?): {e}")
    table = _StorageTable(legacy=False)
    run = _Interpreter(table.load).walk(io.BytesIO(data))
    run.unsafe = [replace(u, where=f"byte {u.position:,} of {pickle_name}") for u in run.unsafe]
    unsafe = tuple(run.unsafe)
    if run.error is not None:
        return fail(f"{pickle_name}: {run.error}", unsafe)

    storages = []
    for key, (storage_type, numel, location, torch_dtype) in table.declared.items():
        name = f"{folder}/data/{key}"
        entry = entries.get(name)
        element_size = TORCH_DTYPES[torch_dtype][1]
        offset = _zip_data_offset(f, entry, size) if entry is not None else None
        if entry is not None and offset is not None:
            held: int | None = max(0, min(entry.file_size, size - offset))
        else:
            held = None
        compressed = entry is not None and entry.compress_type != zipfile.ZIP_STORED
        storages.append(
            StorageRecord(
                key, storage_type, numel, element_size, location, name, offset, held, compressed
            )
        )
    described = _describe(path, "zip", size, run, tuple(storages), pickle_name)
    return replace(described, byteorder=_zip_byteorder(archive, entries.get(f"{folder}/byteorder")))


def _zip_byteorder(archive: zipfile.ZipFile, info: zipfile.ZipInfo | None) -> str | None:
    """The archive's `byteorder` record ("little" or "big"); torch before 2.1 wrote none."""
    if info is None or info.file_size > 16:
        return None
    try:
        with archive.open(info) as member:
            text = member.read(16).decode("ascii").strip()
    except Exception:  # zipfile parses hostile bytes
        return None
    return text if text in ("little", "big") else None


def _read_tar(path: FileRef, f: BinaryIO, size: int) -> PickleCheckpoint:
    """torch before 0.4 wrote a tar archive of pickles (`sys_info`, `storages`, `tensors`,
    `pickle`). Its tensors are not listed; its main pickle is still searched for globals."""
    problem = _unreadable(
        "legacy tar format of torch before 0.4: sdlint does not list its tensors, and torch.load "
        "only loads it with weights_only=False, which runs its pickles"
    )
    unsafe: tuple[PickleGlobal, ...] = ()
    # tarfile parses hostile bytes: whatever it raises means the main pickle cannot be found.
    try:
        with tarfile.open(fileobj=f, mode="r:") as archive:
            member = archive.getmember("pickle")
            stream = archive.extractfile(member) if member.size <= MAX_PICKLE_BYTES else None
            if stream is not None:
                run = _Interpreter(lambda pid: _Opaque("a tar-format storage")).walk(
                    cast(BinaryIO, io.BytesIO(stream.read(MAX_PICKLE_BYTES)))
                )
                unsafe = tuple(
                    replace(u, where=f"byte {u.position:,} of tar member pickle")
                    for u in run.unsafe
                )
    except Exception:
        pass
    return PickleCheckpoint(path, "legacy", size, unsafe=unsafe, problems=(problem,))


def _zip_data_offset(f: BinaryIO, info: zipfile.ZipInfo, size: int) -> int | None:
    """Where an entry's bytes start, from its local header; None when the header is not there."""
    try:
        f.seek(info.header_offset)
        header = f.read(30)
    except (OSError, ValueError, OverflowError):
        return None
    if len(header) < 30 or not header.startswith(ZIP_MAGIC):
        return None
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    offset = info.header_offset + 30 + name_length + extra_length
    return offset if offset <= size else None


def _read_legacy(path: FileRef, f: BinaryIO, size: int) -> PickleCheckpoint:
    """The legacy layout: magic number, protocol version, system info, main pickle, storage
    keys, then each storage as an 8-byte element count and its bytes. torch.load unpickles them
    in this order, so every one of them is checked for unsafe globals."""
    unsafe: list[PickleGlobal] = []
    table = _StorageTable(legacy=True)
    names = ("magic number", "protocol version", "system info", "main pickle", "storage keys")
    values: list[object] = []
    main: _PickleRun | None = None
    offset = 0
    for index, name in enumerate(names):
        f.seek(offset)
        stream = _Bounded(f, min(MAX_PICKLE_BYTES, size - offset))
        run = _Interpreter(table.load if name == "main pickle" else None).walk(
            cast(BinaryIO, stream)
        )
        for u in run.unsafe:
            at = offset + u.position
            unsafe.append(replace(u, position=at, where=f"byte {at:,} of the file"))
        if run.error is not None:
            reason = f"{name} (the pickle at byte {offset:,}): {run.error}"
            if index == 0:
                return PickleCheckpoint(
                    path,
                    None,
                    size,
                    unsafe=tuple(unsafe),
                    problems=(_unreadable(f"not a torch.save file: {run.error}"),),
                )
            return _legacy_fail(path, size, reason, unsafe)
        values.append(run.value)
        if name == "main pickle":
            main = run
        offset += run.end
        if index == 0 and run.value != LEGACY_MAGIC:
            return _legacy_fail(
                path, size, "a pickle, but not a torch.save file (no torch magic number)", unsafe
            )
    assert main is not None
    main.unsafe = unsafe
    keys = values[-1]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return _legacy_fail(path, size, "the storage key list is not a list of strings", unsafe)
    storages = []
    position = offset
    for key in keys:
        declared = table.declared.get(key)
        if declared is None:
            return _legacy_fail(
                path, size, f"the storage key list names {_show(key)}, which no tensor uses", unsafe
            )
        storage_type, numel, location, torch_dtype = declared
        element_size = TORCH_DTYPES[torch_dtype][1]
        f.seek(position)
        count_bytes = f.read(8)
        if len(count_bytes) < 8:
            storages.append(
                StorageRecord(key, storage_type, numel, element_size, location, None, None, None)
            )
            position = size
            continue
        (count,) = struct.unpack("<q", count_bytes)
        data_offset = position + 8
        stored = max(count, 0) * element_size
        held = max(0, min(stored, size - data_offset))
        storages.append(
            StorageRecord(key, storage_type, numel, element_size, location, None, data_offset, held)
        )
        position = data_offset + stored
    listed = set(keys)
    storages.extend(
        StorageRecord(k, d[0], d[1], TORCH_DTYPES[d[3]][1], d[2], None, None, None)
        for k, d in table.declared.items()
        if k not in listed
    )
    described = _describe(path, "legacy", size, main, tuple(storages), "main pickle")
    info = values[2]
    little = info.get("little_endian") if isinstance(info, dict) else None
    byteorder = None if type(little) is not bool else "little" if little else "big"
    return replace(described, byteorder=byteorder)


def _legacy_fail(
    path: FileRef, size: int, message: str, unsafe: list[PickleGlobal]
) -> PickleCheckpoint:
    return PickleCheckpoint(
        path, "legacy", size, unsafe=tuple(unsafe), problems=(_unreadable(message),)
    )


# ---------------------------------------------------------------------------------------------
# From the pickle's value to a state dict.


def _is_state_dict(value: object) -> bool:
    return (
        isinstance(value, dict)
        and all(isinstance(k, str) for k in value)
        and all(isinstance(v, (_Tensor, _Opaque)) or _scalar(v) for v in value.values())
        and (not value or any(isinstance(v, (_Tensor, _Opaque)) for v in value.values()))
    )


def _scalar(value: object) -> bool:
    return value is None or type(value) in (str, int, float, bool, bytes)


def _find_state_dict(value: object) -> tuple[dict[object, object], tuple[str, ...]] | None:
    path: tuple[str, ...] = ()
    for _ in range(MAX_WRAPPER_DEPTH):
        if _is_state_dict(value):
            assert isinstance(value, dict)
            return value, path
        if not isinstance(value, dict):
            return None
        key = next((k for k in WRAPPER_KEYS if isinstance(value.get(k), dict)), None)
        if key is None:
            return None
        value, path = value[key], (*path, key)
    return None


def _kind_of(value: object) -> str:
    if isinstance(value, dict):
        keys = [k for k in value if isinstance(k, str)][:5]
        shown = ", ".join(_show(k) for k in keys)
        return (
            f"a dict without tensors at its top or under {'/'.join(WRAPPER_KEYS)} (keys: {shown})"
        )
    if isinstance(value, _Tensor):
        return "a single tensor"
    if isinstance(value, _Opaque):
        return value.what
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def _describe(
    path: FileRef,
    layout: Layout,
    size: int,
    run: _PickleRun,
    storages: tuple[StorageRecord, ...],
    pickle_name: str,
) -> PickleCheckpoint:
    unsafe = tuple(run.unsafe)
    found = _find_state_dict(run.value)
    if found is None:
        problem = PickleProblem(
            "not-state-dict", f"not a state dict: the pickle holds {_kind_of(run.value)}"
        )
        return PickleCheckpoint(
            path,
            layout,
            size,
            storages=storages,
            unsafe=unsafe,
            problems=(problem,),
            pickle_name=pickle_name,
        )
    state, wrapper = found
    tensors, others, problems = [], [], []
    for key, value in state.items():
        assert isinstance(key, str)
        if isinstance(value, _Tensor):
            safetensors_dtype, itemsize = TORCH_DTYPES[value.torch_dtype]
            tensors.append(
                PickleTensor(
                    key,
                    safetensors_dtype,
                    value.torch_dtype,
                    value.shape,
                    value.stride,
                    value.storage,
                    value.offset,
                    itemsize,
                )
            )
            if safetensors_dtype is None:
                problems.append(
                    PickleProblem(
                        "unsupported-tensor",
                        f"`{key}` has dtype {value.torch_dtype}, which has no safetensors name: "
                        "sdlint does not compare it with the model",
                        key,
                    )
                )
        elif isinstance(value, _Opaque):
            if not value.what.startswith("a call of"):
                problems.append(
                    PickleProblem(
                        "unsupported-tensor",
                        f"`{key}` is {value.what}, which sdlint does not describe",
                        key,
                    )
                )
        else:
            others.append(key)
    problems.extend(_storage_problems(tensors, storages, layout))
    return PickleCheckpoint(
        path,
        layout,
        size,
        tuple(tensors),
        storages,
        wrapper,
        tuple(others),
        unsafe,
        tuple(problems),
        pickle_name,
    )


def _storage_problems(
    tensors: list[PickleTensor], storages: tuple[StorageRecord, ...], layout: Layout
) -> Iterator[PickleProblem]:
    by_key = {s.key: s for s in storages}
    for s in storages:
        if s.size is None:
            where = f"zip entry {s.entry}" if s.entry else "its bytes after the pickles"
            users = [t.name for t in tensors if t.storage == s.key]
            shown = ", ".join(f"`{n}`" for n in users[:3]) + (" ..." if len(users) > 3 else "")
            yield PickleProblem(
                "storage",
                f"storage `{s.key}` has no record ({where} is missing; truncated file?)"
                + (f"; tensors affected: {shown}" if users else ""),
            )
        elif s.size < s.declared_bytes:
            yield PickleProblem(
                "storage",
                f"storage `{s.key}` holds {s.size:,} bytes, but the pickle declares "
                f"{s.numel:,} elements of {s.element_size} bytes ({s.declared_bytes:,} bytes)"
                + ("" if layout == "zip" else "; truncated file?"),
            )
    for t in tensors:
        record = by_key.get(t.storage)
        if record is None or record.size is None:
            continue
        needed = t.storage_bytes_needed
        if needed > record.size:
            yield PickleProblem(
                "storage",
                f"tensor `{t.name}` ({t.torch_dtype}, shape {list(t.shape)}, offset "
                f"{t.storage_offset:,}) needs {needed:,} bytes of storage `{t.storage}`, which "
                f"holds {record.size:,}",
                t.name,
            )


# ---------------------------------------------------------------------------------------------
# Conversion to safetensors (SD010's fix): which file it makes, whether the file may be
# converted, and where each tensor's bytes are. The bytes are copied by sdlint/rewrite.py.

# The names transformers and peft give the same weights as safetensors.
_SAFETENSORS_NAMES = {
    "pytorch_model.bin": "model.safetensors",
    "adapter_model.bin": "adapter_model.safetensors",
}
# A shard as transformers' `save_pretrained` names it: `pytorch_model-00001-of-00003.bin`, or a
# variant's, `pytorch_model.fp16-00001-of-00003.bin`.
_PYTORCH_SHARD = re.compile(r"pytorch_model((?:\.[^/]+)?-\d+-of-\d+\.)bin")


def safetensors_name(path: Path) -> Path:
    """The file a converted checkpoint is written to: transformers' `model.safetensors` for
    `pytorch_model.bin` (and `model-00001-of-00003.safetensors` for its shard
    `pytorch_model-00001-of-00003.bin`), peft's `adapter_model.safetensors` for
    `adapter_model.bin`, else the same stem with `.safetensors` (`model.pt` ->
    `model.safetensors`). A variant keeps its place (`pytorch_model.fp16.bin` ->
    `model.fp16.safetensors`, `pytorch_model.fp16-00001-of-00003.bin` ->
    `model.fp16-00001-of-00003.safetensors`), as `save_pretrained(variant=...)` names them."""
    shard = _PYTORCH_SHARD.fullmatch(path.name)
    if shard is not None:
        return path.with_name(f"model{shard.group(1)}safetensors")
    found = plain_name(path.name, _SAFETENSORS_NAMES)
    if found is not None:
        plain, variant = found
        return path.with_name(add_variant(_SAFETENSORS_NAMES[plain], variant))
    return path.with_name(f"{path.stem}.safetensors")


def safetensors_index_name(index: Path) -> Path:
    """The index of a converted sharded checkpoint: transformers' `model.safetensors.index.json`
    for `pytorch_model.bin.index.json`, else `<stem>.safetensors.index.json` for
    `<stem>.bin.index.json`; a variant's likewise (`pytorch_model.bin.index.fp16.json` ->
    `model.safetensors.index.fp16.json`)."""
    parts = index_name(index.name)
    if parts is None or not parts.pickle:  # named by hand: it only keeps its stem
        return index.with_name(f"{index.name.removesuffix('.json')}.safetensors.index.json")
    stem = "model" if parts.stem == "pytorch_model" else parts.stem
    if parts.legacy:  # its shards keep the legacy names too (`<stem>-00001-of-00002.fp16.bin`)
        return index.with_name(f"{stem}.safetensors.{parts.variant}.index.json")
    return index.with_name(add_variant(f"{stem}.safetensors.index.json", parts.variant))


def conversion_problem(checkpoint: PickleCheckpoint) -> str | None:
    """Why the file's tensors cannot be copied to safetensors losing nothing, or None.

    Only a file read to its end whose pickle names nothing outside the allow-list, holding a flat
    state dict of tensors (no wrapper beside other content, no non-tensor entries) with every
    storage whole, uncompressed and little-endian, is converted."""
    if checkpoint.unsafe:
        return "its pickle imports globals outside the allow-list (SD006)"
    if checkpoint.problems:
        return checkpoint.problems[0].message
    if checkpoint.wrapper:
        where = "/".join(checkpoint.wrapper)
        return f"its state dict is wrapped under `{where}`, beside content safetensors cannot hold"
    if checkpoint.other_entries:
        shown = ", ".join(f"`{k}`" for k in checkpoint.other_entries[:3])
        return f"its state dict holds entries that are not tensors ({shown})"
    if not checkpoint.entries:
        return "it holds no tensors"
    if checkpoint.byteorder == "big":
        return "its storages are big-endian; safetensors is little-endian"
    if any(t.dtype is None for t in checkpoint.entries):
        return "a tensor has a dtype safetensors has no name for"
    if "__metadata__" in {t.name for t in checkpoint.entries}:
        return "a tensor is named `__metadata__`, which safetensors reserves"
    for t in checkpoint.entries:
        record = checkpoint.storage(t.storage)
        if record is None or record.data_offset is None or record.size is None:
            return f"storage `{t.storage}` of `{t.name}` has no record"
        if record.compressed:
            return f"storage `{t.storage}` is a compressed zip entry"
    return None


def tensor_spans(tensor: PickleTensor, record: StorageRecord) -> Iterator[tuple[int, int]]:
    """The tensor's bytes as (file offset, length) runs, in row-major order: one run for a
    contiguous tensor; for a view with other strides (a transpose, an expanded dimension) one run
    per stretch of its innermost dimensions that is contiguous in the storage."""
    if tensor.numel == 0:
        return
    assert record.data_offset is not None
    item = tensor.itemsize
    dims = [(d, s) for d, s in zip(tensor.shape, tensor.stride, strict=True) if d != 1]
    run = 1
    while dims and dims[-1][1] == run:
        run *= dims.pop()[0]
    base = record.data_offset + tensor.storage_offset * item
    for index in itertools.product(*(range(d) for d, _ in dims)):
        offset = sum(i * s for i, (_, s) in zip(index, dims, strict=True))
        yield base + offset * item, run * item
