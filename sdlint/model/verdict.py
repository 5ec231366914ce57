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

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

# Bump when a field is added, removed or changes meaning: older cache entries then stop decoding.
FORMAT_VERSION = 2

_T = TypeVar("_T")


@dataclass(frozen=True)
class TensorSpec:
    """One tensor as its safetensors header gives it: dtype name ("F32", "BF16", ...) and shape."""

    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Missing:
    """A model key no checkpoint tensor was loaded into (transformers initialises it randomly)."""

    model_key: str
    # Inside the base model (`base_model_prefix.`), or the model has no separate base model. False
    # only for a head's own keys (`classifier.*`, `lm_head.*`, `score.*`): missing head keys are the
    # expected outcome of fine-tuning from a base checkpoint, missing base keys are not.
    in_base_model: bool
    shape: tuple[int, ...] = ()  # the model's shape for it, so a fix can initialise it


@dataclass(frozen=True)
class Unexpected:
    """A checkpoint tensor the model has no place for. One entry per file key.

    `model_key` is the name transformers reports (after renaming, R15). A file key a converter
    splits into several targets (a fused `qkv` into `q`, `k`, `v`) gives one entry per target.
    """

    file_key: str
    model_key: str


@dataclass(frozen=True)
class Mismatch:
    """A model key whose checkpoint tensor has another shape (it is re-initialised, R19).

    `file_keys` are the checkpoint tensors that fed it: one for a plain or renamed key, several for
    a fused target (MoE experts stacked into one tensor), in which case `checkpoint_shape` is the
    shape after fusion. `file_key` is set when exactly one tensor fed it.
    """

    model_key: str
    file_key: str | None
    checkpoint_shape: tuple[int, ...]
    model_shape: tuple[int, ...]
    in_base_model: bool
    file_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConversionError:
    """A converter (MoE expert fusion, qkv split, ...) failed on the checkpoint's tensors.

    transformers raises on these even with `ignore_mismatched_sizes=True` (R20, R28), so they are
    errors. `message` is transformers' own explanation without its traceback.
    """

    model_key: str
    message: str
    file_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shadowed:
    """A file key dropped silently because another file key maps to the same model key (R14).

    transformers keeps `winner` (the first in its natural sort order) and never reports the other:
    the linter should, since the surviving copy may not be the one the user meant.
    """

    file_key: str
    model_key: str
    winner: str


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class LoadVerdict:
    """What `from_pretrained(dir, output_loading_info=True, ignore_mismatched_sizes=True)` reports.

    `missing`, `unexpected` (by model key) and `mismatched` equal transformers' `missing_keys`,
    `unexpected_keys` and `mismatched_keys` exactly; tuples are sorted so equal verdicts compare
    and serialise equal.
    """

    architecture: str  # the model class the verdict is for
    architecture_source: str  # ARCHITECTURE_SOURCES: where the class name came from
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
        return {"format": FORMAT_VERSION, "type": "load_verdict", "value": _verdict_to_obj(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> LoadVerdict:
        result = decode(text)
        if not isinstance(result, LoadVerdict):
            raise ValueError("the JSON holds a ConfigProblem, not a LoadVerdict")
        return result


# `LoadVerdict.architecture_source` values.
ARCHITECTURE_SOURCES = (
    "argument",  # the caller named the class (`--architecture`)
    "config",  # `architectures[0]` of config.json
    # `architectures[0]` is not a transformers class; the class of the same task for model_type
    "config-task",
    "model_type",  # config.json has no `architectures`; the base model class for its model_type
)

# `ConfigProblem.kind` values. All are SD107 for the rules (the expected model cannot be built),
# except QUANTIZED, which is a deliberate skip the rules may report as info.
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


@dataclass(frozen=True)
class ConfigProblem:
    """The expected model cannot be built, so no key verdict exists (SD107, or info for QUANTIZED).

    `message` reads "what failed: why. What to do."
    """

    kind: str
    message: str

    @property
    def cacheable(self) -> bool:
        """Whether the answer depends only on the cache key (config, versions, signature)."""
        return self.kind not in _ENVIRONMENT_KINDS

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "type": "config_problem",
            "value": {"kind": self.kind, "message": self.message},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ConfigProblem:
        result = decode(text)
        if not isinstance(result, ConfigProblem):
            raise ValueError("the JSON holds a LoadVerdict, not a ConfigProblem")
        return result


Outcome = LoadVerdict | ConfigProblem


def decode(text: str | bytes) -> Outcome:
    """Read what `to_json` wrote. Raises ValueError on anything else, including other versions."""
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"not JSON: {e}") from None
    return from_dict(document)


def from_dict(document: Any) -> Outcome:
    """Read what `to_dict` returned. Raises ValueError on anything else."""
    obj = _as_dict(document, "document")
    if obj.get("format") != FORMAT_VERSION:
        raise ValueError(f"format {obj.get('format')!r}, expected {FORMAT_VERSION}")
    kind = obj.get("type")
    value = _as_dict(obj.get("value"), "value")
    if kind == "load_verdict":
        return _verdict_from_obj(value)
    if kind == "config_problem":
        _exact_fields(value, ("kind", "message"), "config_problem")
        return ConfigProblem(_str(value["kind"]), _str(value["message"]))
    raise ValueError(f"unknown type {kind!r}")


# ---------------------------------------------------------------------------------------------
# Encoding. Written out field by field (not `dataclasses.asdict`) so the decoder can check every
# field and a renamed field breaks the round-trip test instead of silently dropping data.


def _verdict_to_obj(v: LoadVerdict) -> dict[str, Any]:
    return {
        "architecture": v.architecture,
        "architecture_source": v.architecture_source,
        "model_type": v.model_type,
        "base_model_prefix": v.base_model_prefix,
        "has_base_model": v.has_base_model,
        "transformers_version": v.transformers_version,
        "dtype": v.dtype,
        "config_dtype": v.config_dtype,
        "missing": [[m.model_key, m.in_base_model, list(m.shape)] for m in v.missing],
        "unexpected": [[u.file_key, u.model_key] for u in v.unexpected],
        "mismatched": [
            [
                m.model_key,
                m.file_key,
                list(m.checkpoint_shape),
                list(m.model_shape),
                m.in_base_model,
                list(m.file_keys),
            ]
            for m in v.mismatched
        ],
        "conversion_errors": [
            [c.model_key, c.message, list(c.file_keys)] for c in v.conversion_errors
        ],
        "shadowed": [[s.file_key, s.model_key, s.winner] for s in v.shadowed],
        "wrapper_prefix": None
        if v.wrapper_prefix is None
        else {
            "prefix": v.wrapper_prefix.prefix,
            "keys": v.wrapper_prefix.keys,
            "verdict": _verdict_to_obj(v.wrapper_prefix.verdict),
        },
        "notes": list(v.notes),
    }


_VERDICT_FIELDS = (
    "architecture",
    "architecture_source",
    "model_type",
    "base_model_prefix",
    "has_base_model",
    "transformers_version",
    "dtype",
    "config_dtype",
    "missing",
    "unexpected",
    "mismatched",
    "conversion_errors",
    "shadowed",
    "wrapper_prefix",
    "notes",
)


def _verdict_from_obj(obj: dict[str, Any]) -> LoadVerdict:
    _exact_fields(obj, _VERDICT_FIELDS, "load_verdict")
    wrapper = None
    if obj["wrapper_prefix"] is not None:
        w = _as_dict(obj["wrapper_prefix"], "wrapper_prefix")
        _exact_fields(w, ("prefix", "keys", "verdict"), "wrapper_prefix")
        wrapper = WrapperPrefix(
            _str(w["prefix"]), _int(w["keys"]), _verdict_from_obj(_as_dict(w["verdict"], "verdict"))
        )
    return LoadVerdict(
        architecture=_str(obj["architecture"]),
        architecture_source=_str(obj["architecture_source"]),
        model_type=_opt_str(obj["model_type"]),
        base_model_prefix=_str(obj["base_model_prefix"]),
        has_base_model=_bool(obj["has_base_model"]),
        transformers_version=_str(obj["transformers_version"]),
        dtype=_str(obj["dtype"]),
        config_dtype=_opt_str(obj["config_dtype"]),
        missing=_rows(obj["missing"], 3, lambda r: Missing(_str(r[0]), _bool(r[1]), _shape(r[2]))),
        unexpected=_rows(obj["unexpected"], 2, lambda r: Unexpected(_str(r[0]), _str(r[1]))),
        mismatched=_rows(
            obj["mismatched"],
            6,
            lambda r: Mismatch(
                _str(r[0]),
                _opt_str(r[1]),
                _shape(r[2]),
                _shape(r[3]),
                _bool(r[4]),
                _strs(r[5]),
            ),
        ),
        conversion_errors=_rows(
            obj["conversion_errors"],
            3,
            lambda r: ConversionError(_str(r[0]), _str(r[1]), _strs(r[2])),
        ),
        shadowed=_rows(obj["shadowed"], 3, lambda r: Shadowed(_str(r[0]), _str(r[1]), _str(r[2]))),
        wrapper_prefix=wrapper,
        notes=_strs(obj["notes"]),
    )


def _as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not an object")
    return value


def _exact_fields(obj: Mapping[str, Any], fields: tuple[str, ...], what: str) -> None:
    if set(obj) != set(fields):
        raise ValueError(f"{what} has fields {sorted(obj)}, expected {sorted(fields)}")


def _rows(value: Any, width: int, make: Callable[[list[Any]], _T]) -> tuple[_T, ...]:
    if not isinstance(value, list):
        raise ValueError("expected a list")
    out = []
    for row in value:
        if not isinstance(row, list) or len(row) != width:
            raise ValueError(f"expected a list of {width} items")
        out.append(make(row))
    return tuple(out)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected a boolean, got {type(value).__name__}")
    return value


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("expected a non-negative integer")
    return value


def _shape(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise ValueError("expected a shape")
    return tuple(_int(d) for d in value)


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError("expected a list of strings")
    return tuple(_str(s) for s in value)
