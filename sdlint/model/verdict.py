"""What `from_pretrained` would report for a checkpoint, as plain values.

These are the oracle's results (sdlint/model/oracle.py) and the input of the model rules
(SD101-SD107). They import neither torch nor transformers, because they are also what a warm run
reads back from the disk cache (sdlint/model/cache.py): `to_json`/`from_json` round-trip them
exactly, and `from_json` rejects anything it did not write (another format version, a truncated
file, a foreign object) with a ValueError, so the cache can treat such an entry as a miss.

Names follow transformers' own report (design doc R15, R26): keys are *model-side* names after
renaming; the file's own names are kept beside them where the rules need them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping

from sdlint.formats import TensorSpec as TensorSpec  # the model layer's input, from the read stage
from sdlint.record import Field, fields, is_record, record

TYPE_CHECKING = False  # typing is not imported at run time (a warm run has no use for it)
if TYPE_CHECKING:
    from typing import Any

# The one on-disk format version of verdicts and their cache (sdlint/model/cache.py). Bump it when
# a field keeps its name and type but changes meaning: older entries then stop decoding. Adding,
# removing, renaming, reordering or retyping a field needs no bump (`schema()` covers it).
FORMAT_VERSION = 3
# The fingerprint of the field layout (`schema()`): what `layout_fingerprint()` computes, kept as a
# constant so that a run does not import typing and hashlib to derive it. A test fails when a
# field changes until this is set to the new fingerprint.
SCHEMA = "765954fb01bb3cd6"


@record
class Missing:
    """A model key no checkpoint tensor was loaded into (transformers initialises it randomly)."""

    model_key: str
    # Inside the base model (`base_model_prefix.`), or the model has no separate base model. False
    # only for a head's own keys (`classifier.*`, `lm_head.*`, `score.*`): missing head keys are the
    # expected outcome of fine-tuning from a base checkpoint, missing base keys are not.
    in_base_model: bool
    shape: tuple[int, ...] = ()  # the model's shape for it, so a fix can initialise it


@record
class Unexpected:
    """A checkpoint tensor the model has no place for. One entry per file key.

    `model_key` is the name transformers reports (after renaming, R15). A file key a converter
    splits into several targets (a fused `qkv` into `q`, `k`, `v`) gives one entry per target.
    """

    file_key: str
    model_key: str


@record
class Mismatch:
    """A model key whose checkpoint tensor has another shape (it is re-initialised, R19).

    `file_keys` are the checkpoint tensors that fed it: one for a plain or renamed key, several for
    a fused target (MoE experts stacked into one tensor), in which case `checkpoint_shape` is the
    shape after fusion. `file_key` is set when exactly one tensor fed it.

    `earlier_copy` is set for a key in several shards whose *earlier* copy has this shape
    (transformers 4.x compares every copy with the model): its index in the key's
    `TensorSpec.earlier`, so the finding names the shard that holds that copy. None: the last copy,
    the one loaded.
    """

    model_key: str
    file_key: str | None
    checkpoint_shape: tuple[int, ...]
    model_shape: tuple[int, ...]
    in_base_model: bool
    file_keys: tuple[str, ...] = ()
    earlier_copy: int | None = None


@record
class ConversionError:
    """A converter (MoE expert fusion, qkv split, ...) failed on the checkpoint's tensors.

    transformers raises on these even with `ignore_mismatched_sizes=True` (R20, R28), so they are
    errors. `message` is transformers' own explanation without its traceback. `earlier_copy` is as
    in `Mismatch`: the error is about an earlier shard's copy of the key (a dtype 4.x cannot load).
    """

    model_key: str
    message: str
    file_keys: tuple[str, ...] = ()
    earlier_copy: int | None = None


@record
class Shadowed:
    """A file key dropped silently because another file key maps to the same model key (R14).

    transformers keeps `winner` (the first in its natural sort order) and never reports the other:
    the linter should, since the surviving copy may not be the one the user meant.
    """

    file_key: str
    model_key: str
    winner: str


@record
class WrapperPrefix:
    """Nearly every key carries a leading component transformers does not strip (SD106, R13).

    `module.` (DistributedDataParallel), `_orig_mod.` (torch.compile), or a doubled prefix. `prefix`
    ends with a dot and may hold several components (`module._orig_mod.`). `keys` is how many file
    keys carry it. `verdict` is the verdict for the same checkpoint with the prefix stripped, so a
    rule can report what would remain after the fix.
    """

    prefix: str
    keys: int
    verdict: LoadVerdict


@record
class LoadVerdict:
    """What `from_pretrained(dir, output_loading_info=True, ignore_mismatched_sizes=True)` reports.

    `missing`, `unexpected` (by model key) and `mismatched` equal transformers' `missing_keys`,
    `unexpected_keys` and `mismatched_keys` exactly; tuples are sorted so equal verdicts compare
    and serialise equal.
    """

    architecture: str  # the model class the verdict is for
    # Where the class name came from: "argument" (the caller named it, `--architecture`), "config"
    # (`architectures[0]`), "config-task" (`architectures[0]` is not a transformers class: the class
    # of the same task for model_type), "model_type" (no `architectures`: the base model class).
    architecture_source: str
    model_type: str | None
    base_model_prefix: str
    # The model holds its base model under `base_model_prefix` (a task head such as
    # `RobertaForSequenceClassification`). When False there is no head/base split and every key
    # counts as base model.
    has_base_model: bool
    transformers_version: str
    dtype: str  # the dtype the model is built in ("float32", "bfloat16", ...), R29
    config_dtype: str | None  # the config's own `dtype`/`torch_dtype`, None when it sets none
    missing: tuple[Missing, ...] = ()
    unexpected: tuple[Unexpected, ...] = ()
    mismatched: tuple[Mismatch, ...] = ()
    conversion_errors: tuple[ConversionError, ...] = ()
    shadowed: tuple[Shadowed, ...] = ()
    wrapper_prefix: WrapperPrefix | None = None
    # Facts a rule may print as info: a guessed class, an `auto_map` the native class overrides.
    notes: tuple[str, ...] = ()

    @property
    def missing_keys(self) -> frozenset[str]:
        return frozenset(m.model_key for m in self.missing)

    @property
    def unexpected_keys(self) -> frozenset[str]:
        """transformers' `unexpected_keys`: model-side names."""
        return frozenset(u.model_key for u in self.unexpected)

    @property
    def mismatched_keys(self) -> frozenset[tuple[str, tuple[int, ...], tuple[int, ...]]]:
        """transformers' `mismatched_keys`: (model key, checkpoint shape, model shape)."""
        return frozenset((m.model_key, m.checkpoint_shape, m.model_shape) for m in self.mismatched)

    @property
    def is_clean(self) -> bool:
        """Loads with nothing missing, unexpected, mismatched or failing to convert."""
        return not (self.missing or self.unexpected or self.mismatched or self.conversion_errors)

    def to_dict(self) -> dict[str, Any]:
        return _document("load_verdict", self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> LoadVerdict:
        result = decode(text)
        if not isinstance(result, LoadVerdict):
            raise ValueError("the JSON holds a ConfigProblem, not a LoadVerdict")
        return result


# `ConfigProblem.kind` values. All are SD107 for the rules (the expected model cannot be built),
# QUANTIZED included: a deliberate skip, which SD107 reports as info.
NOT_INSTALLED = "not-installed"  # torch or transformers absent or broken
UNSUPPORTED_VERSION = "unsupported-version"  # a transformers this oracle has no backend for
UNREADABLE_CONFIG = "unreadable-config"  # config.json missing, not JSON, not an object
QUANTIZED = "quantized"  # `quantization_config`: the module tree changes, key checks are skipped
REMOTE_CODE = "remote-code"  # the model's code lives in the repository; never executed
UNKNOWN_MODEL_TYPE = "unknown-model-type"  # model_type unknown to transformers, or none at all
UNKNOWN_ARCHITECTURE = "unknown-architecture"  # the class name is not a transformers model class
INVALID_CONFIG = "invalid-config"  # transformers rejects a config value
MISSING_DEPENDENCY = "missing-dependency"  # the model class needs an optional package (timm, ...)
CANNOT_INSTANTIATE = "cannot-instantiate"  # building the model from the config fails
LOAD_FAILED = "load-failed"  # transformers' key matching itself fails on this checkpoint

CONFIG_PROBLEM_KINDS = (
    NOT_INSTALLED,
    UNSUPPORTED_VERSION,
    UNREADABLE_CONFIG,
    QUANTIZED,
    REMOTE_CODE,
    UNKNOWN_MODEL_TYPE,
    UNKNOWN_ARCHITECTURE,
    INVALID_CONFIG,
    MISSING_DEPENDENCY,
    CANNOT_INSTANTIATE,
    LOAD_FAILED,
)

# Kinds whose answer changes when the environment does, which the cache key does not cover:
# installing transformers, timm or PIL must take effect on the next run.
_ENVIRONMENT_KINDS = frozenset({NOT_INSTALLED, MISSING_DEPENDENCY})


@record
class ConfigProblem:
    """The expected model cannot be built, so no key verdict exists (SD107; info for QUANTIZED).

    `message` reads "what failed: why. What to do."
    """

    kind: str  # one of CONFIG_PROBLEM_KINDS
    message: str

    def __post_init__(self) -> None:
        # A kind outside the list is a typo in sdlint (a bug) or, from the cache or a recorded
        # verdicts folder, an entry sdlint did not write: decoding it fails, and it is a miss.
        if self.kind not in CONFIG_PROBLEM_KINDS:
            raise ValueError(f"unknown config problem kind {self.kind!r}")

    @property
    def cacheable(self) -> bool:
        """Whether the answer depends only on the cache key (config, versions, signature)."""
        return self.kind not in _ENVIRONMENT_KINDS

    def to_dict(self) -> dict[str, Any]:
        return _document("config_problem", self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ConfigProblem:
        result = decode(text)
        if not isinstance(result, ConfigProblem):
            raise ValueError("the JSON holds a LoadVerdict, not a ConfigProblem")
        return result


@record
class AdapterMissing:
    """An adapter tensor peft expects and the adapter file lacks (peft leaves it initialised).

    `model_key` is peft's in-memory name (with the adapter name, `...lora_A.default.weight`);
    `file_key` the name the adapter file would hold it under (`...lora_A.weight`).
    """

    model_key: str
    file_key: str
    shape: tuple[int, ...]


@record
class AdapterMismatch:
    """An adapter tensor whose shape differs from the one peft builds for it on the base model.

    `in_head` marks a `modules_to_save` copy of a base-model module (a task head such as
    `classifier.out_proj`); otherwise it is an adapter weight (`lora_A`, `lora_B`, `ia3_l`, ...).
    """

    model_key: str
    file_key: str
    checkpoint_shape: tuple[int, ...]
    model_shape: tuple[int, ...]
    in_head: bool


@record
class AdapterVerdict:
    """What `PeftModel.from_pretrained(base, adapter_dir)` reports for a PEFT adapter.

    `missing` (peft's adapter-filtered `missing_keys`), `unexpected` (its `unexpected_keys`, by
    model key) and `mismatched` (the size mismatches it raises on, or drops with
    `ignore_mismatched_sizes=True`) are peft's own answer on a meta-device base model.
    `unknown_targets` are `target_modules` entries that name no module of the base model.
    `load_error` is what peft raises while loading besides a size mismatch (None: nothing).
    """

    peft_type: str
    task_type: str | None
    architecture: str  # the base model class
    peft_version: str
    transformers_version: str
    missing: tuple[AdapterMissing, ...] = ()
    unexpected: tuple[Unexpected, ...] = ()
    mismatched: tuple[AdapterMismatch, ...] = ()
    unknown_targets: tuple[str, ...] = ()
    load_error: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def is_clean(self) -> bool:
        return not (
            self.missing
            or self.unexpected
            or self.mismatched
            or self.unknown_targets
            or self.load_error
        )

    def to_dict(self) -> dict[str, Any]:
        return _document("adapter_verdict", self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> AdapterVerdict:
        result = decode(text)
        if not isinstance(result, AdapterVerdict):
            raise ValueError("the JSON holds no AdapterVerdict")
        return result


Outcome = LoadVerdict | ConfigProblem
AdapterOutcome = AdapterVerdict | ConfigProblem
# Everything a verdict document (and so a cache entry) can hold.
Stored = LoadVerdict | ConfigProblem | AdapterVerdict


def decode(text: str | bytes) -> Stored:
    """Read what `to_json` wrote. Raises ValueError on anything else, including other versions."""
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"not JSON: {e}") from None
    return from_dict(document)


def from_dict(document: Any) -> Stored:
    """Read what `to_dict` returned. Raises ValueError on anything else."""
    obj = _as_dict(document, "document")
    if obj.get("format") != FORMAT_VERSION:
        raise ValueError(f"format {obj.get('format')!r}, expected {FORMAT_VERSION}")
    if obj.get("schema") != schema():
        raise ValueError(f"schema {obj.get('schema')!r}, expected {schema()}")
    kind = obj.get("type")
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown type {kind!r}")
    result: Stored = _decoder(cls, positional=False)(obj.get("value"))
    return result


_TYPES: dict[str, type] = {
    "load_verdict": LoadVerdict,
    "config_problem": ConfigProblem,
    "adapter_verdict": AdapterVerdict,
}


# ---------------------------------------------------------------------------------------------
# Encoding, derived from the records' own fields and type hints: adding a field is one edit
# (the record), and the decoder still checks every field's presence and type. A record at a
# field of its own (the verdict, a wrapper prefix) is an object keyed by field name; the records
# of a tuple (missing keys, mismatches, ...) are positional rows, which keeps a 1,000-key verdict
# small. `schema()` describes the layout; it is written into every document, so a changed field
# set or order makes older entries stop decoding without anyone bumping FORMAT_VERSION.

if TYPE_CHECKING:
    _Codec = Callable[[Any], Any]


def schema() -> str:
    """A short fingerprint of the field layout of everything a document can hold."""
    return SCHEMA


def layout_fingerprint() -> str:
    """`SCHEMA` as the records' fields and type hints make it (tests/model/test_verdict.py holds
    the constant to it): each record as `Name(field:type,...)`, sorted, sha256'd."""
    import hashlib
    import types
    import typing

    seen: dict[type, str] = {}

    def describe(tp: Any) -> str:
        if is_record(tp) and isinstance(tp, type):
            if tp not in seen:
                seen[tp] = ""  # recursion guard (a wrapper prefix holds a verdict)
                hints = typing.get_type_hints(tp)
                fields = ",".join(f"{f.name}:{describe(hints[f.name])}" for f in _fields(tp))
                seen[tp] = f"{tp.__name__}({fields})"
            return tp.__name__
        args = typing.get_args(tp)
        if not args:
            return getattr(tp, "__name__", repr(tp))
        origin = typing.get_origin(tp)
        name = "union" if origin in (types.UnionType, typing.Union) else origin.__name__
        return f"{name}[{','.join(describe(a) for a in args)}]"

    describe(LoadVerdict)
    describe(ConfigProblem)
    describe(AdapterVerdict)
    text = ";".join(seen[tp] for tp in sorted(seen, key=lambda t: t.__name__))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _document(kind: str, value: Stored) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "schema": schema(),
        "type": kind,
        "value": _encoder(_TYPES[kind], positional=False)(value),
    }


def _fields(cls: type) -> tuple[Field, ...]:
    return fields(cls)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """Each field's type as the codec reads it (see `_field_type`)."""
    return {f.name: _field_type(f.type) for f in _fields(cls)}


_TUPLE, _OPTIONAL = "tuple", "optional"


def _field_type(annotation: Any) -> Any:
    """A field's annotation as written (a string, under `from __future__ import annotations`) as
    the codec reads it: str, int, bool or a record class of this module; `(_TUPLE, item)` for
    `tuple[X, ...]`; `(_OPTIONAL, inner)` for `X | None`. Read by hand rather than by
    `typing.get_type_hints`: importing typing and evaluating every annotation cost each run that
    reads a verdict several milliseconds, and these are the only forms a verdict field takes
    (anything else is a TypeError when the codec is first built; tests/model/test_verdict.py holds
    the reading to typing's for every field)."""
    text = str(annotation).replace(" ", "")
    if text.endswith("|None"):
        return (_OPTIONAL, _field_type(text[: -len("|None")]))
    if text.startswith("tuple[") and text.endswith(",...]"):
        return (_TUPLE, _field_type(text[len("tuple[") : -len(",...]")]))
    found = {"str": str, "int": int, "bool": bool}.get(text) or globals().get(text)
    if found is None or not (found in _SCALARS or is_record(found)):
        raise TypeError(f"cannot encode {annotation!r}")  # a bug: a type the codec does not know
    return found


@functools.cache
def _encoder(tp: Any, *, positional: bool = True) -> _Codec:
    if is_record(tp) and isinstance(tp, type):
        hints = _hints(tp)
        names = tuple(f.name for f in _fields(tp))
        encoders: list[_Codec] = []  # resolved on first use, as in `_record_decoder`

        def parts() -> zip[tuple[str, _Codec]]:
            if not encoders:
                encoders[:] = [_encoder(hints[name], positional=False) for name in names]
            return zip(names, encoders, strict=True)

        if positional:
            return lambda value: [encode(getattr(value, name)) for name, encode in parts()]
        return lambda value: {name: encode(getattr(value, name)) for name, encode in parts()}
    if isinstance(tp, tuple) and tp[0] == _TUPLE:
        item = _encoder(tp[1])
        return lambda value: [item(x) for x in value]
    if isinstance(tp, tuple):  # _OPTIONAL
        encode = _encoder(tp[1], positional=False)
        return lambda value: None if value is None else encode(value)
    return lambda value: value  # str, int, bool


@functools.cache
def _decoder(tp: Any, *, positional: bool = True) -> _Codec:
    if is_record(tp) and isinstance(tp, type):
        return _record_decoder(tp, positional)
    if isinstance(tp, tuple) and tp[0] == _TUPLE:
        return _tuple_decoder(_decoder(tp[1]))
    if isinstance(tp, tuple):  # _OPTIONAL
        decode_inner = _decoder(tp[1], positional=False)
        return lambda value: None if value is None else decode_inner(value)
    if tp in _SCALARS:
        return _SCALARS[tp]
    raise TypeError(f"cannot decode {tp!r}")  # a bug: a field of a type the codec does not know


def _record_decoder(cls: type, positional: bool) -> _Codec:
    hints = _hints(cls)
    names = tuple(f.name for f in _fields(cls))
    # Resolved on first use: a record may hold itself (a wrapper prefix holds a verdict).
    decoders: list[_Codec] = []

    def field_decoders() -> list[_Codec]:
        if not decoders:
            decoders[:] = [_decoder(hints[name], positional=False) for name in names]
        return decoders

    def decode_row(value: Any) -> Any:
        if not isinstance(value, list) or len(value) != len(names):
            raise ValueError(f"expected a list of {len(names)} items")
        fields = decoders or field_decoders()
        return cls(*(decode(v) for decode, v in zip(fields, value, strict=True)))

    def decode_object(value: Any) -> Any:
        obj = _as_dict(value, cls.__name__)
        _exact_fields(obj, names, cls.__name__)
        fields = decoders or field_decoders()
        return cls(*(decode(obj[name]) for decode, name in zip(fields, names, strict=True)))

    return decode_row if positional else decode_object


def _tuple_decoder(item: _Codec) -> _Codec:
    def decode(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise ValueError("expected a list")
        return tuple(item(x) for x in value)

    return decode


def _as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not an object")
    return value


def _exact_fields(obj: Mapping[str, Any], fields: tuple[str, ...], what: str) -> None:
    if len(obj) != len(fields) or not all(name in obj for name in fields):
        raise ValueError(f"{what} has fields {sorted(obj)}, expected {sorted(fields)}")


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected a boolean, got {type(value).__name__}")
    return value


def _int(value: Any) -> int:
    # Every integer in a verdict is a size or a count.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("expected a non-negative integer")
    return value


_SCALARS: dict[Any, _Codec] = {str: _str, bool: _bool, int: _int}
