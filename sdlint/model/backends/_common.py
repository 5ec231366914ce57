"""What every backend does the same way: the config object, the meta state dict, the model build,
calling private functions by parameter name, and the wording of version and internal failures."""

from __future__ import annotations

import copy
import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sdlint.dtypes import TORCH_NAMES
from sdlint.model._text import describe_exception, missing_package
from sdlint.model.backends.classes import ModelClass, resolve_class
from sdlint.model.verdict import (
    CANNOT_INSTANTIATE,
    INVALID_CONFIG,
    LOAD_FAILED,
    MISSING_DEPENDENCY,
    UNSUPPORTED_VERSION,
    ConfigProblem,
    ConversionError,
    LoadVerdict,
    Mismatch,
    Missing,
    Outcome,
    Shadowed,
    TensorSpec,
    Unexpected,
)
from sdlint.record import record

# The transformers versions the backends reproduce (held by the differential tests on the
# versions in README's table; `select` in __init__.py picks the backend from these ranges).
SUPPORTED = "4.54 to 4.57 and 5.0 to 5.24"
INSTALL_SUPPORTED = "pip install 'transformers>=4.54,<5.25'"

# safetensors dtype -> torch dtype name: the one table (sdlint/dtypes.py).
TORCH_DTYPES = TORCH_NAMES
# What safetensors does with the rest: F6_* fail when the tensor is opened (`get_slice`, which
# the loaders call for every key, so the whole load fails); F4 opens but fails when the tensor is
# read (only keys the model loads are read).
FAILS_ON_OPEN = frozenset({"F6_E2M3", "F6_E3M2"})
FAILS_ON_READ = frozenset({"F4"})


@record
class Request:
    """One question to a backend: what `model_class.from_pretrained` reports for a checkpoint of
    `tensors` with this config.json (`config_name` words messages)."""

    model_class: ModelClass
    document: Mapping[str, Any]
    config_name: str
    tensors: Mapping[str, TensorSpec]
    # A shard index's `weight_map` keys where they differ from the shards' own: 4.x loads by them.
    index_keys: Sequence[str] | None = None


class Backend:
    """One transformers loading code, bound to the imported transformers and torch.

    A backend reproduces `cls.from_pretrained(dir, output_loading_info=True,
    ignore_mismatched_sizes=True)` of the installed transformers on meta tensors shaped from the
    headers; each major's loading code is a subclass's `_verdict`.
    """

    def __init__(self, transformers: Any, torch: Any) -> None:
        self.transformers = transformers
        self.torch = torch
        self.version = str(transformers.__version__)

    def resolve_class(
        self, config: Mapping[str, Any], architecture: str | None
    ) -> ModelClass | ConfigProblem:
        """The class from_pretrained would be called on (the caller's `architecture`, else the
        config's `architectures[0]`, else the base class of its `model_type`)."""
        return resolve_class(self.transformers, config, architecture)

    def predict(
        self,
        model_class: ModelClass,
        config: Mapping[str, Any],
        config_name: str,
        tensors: Mapping[str, TensorSpec],
        index_keys: Sequence[str] | None = None,
    ) -> Outcome:
        """What `model_class.from_pretrained` reports for a checkpoint with `tensors` and this
        config.json (`config_name` words messages); `index_keys` are a shard index's keys where
        they differ from the shards'. Never raises on bad input."""
        return self._verdict(Request(model_class, config, config_name, tensors, index_keys))

    def _verdict(self, request: Request) -> Outcome:
        raise NotImplementedError


# A shape mismatch as a backend found it: (model key, (checkpoint shape, model shape), the file key
# reported, the file keys behind it, which earlier shard copy of the key it is: `Mismatch`).
FoundMismatch = tuple[str, tuple[Any, Any], str | None, tuple[str, ...], int | None]


@record
class Built:
    """The model a backend built on meta, and what every verdict about it says the same way."""

    model: Any
    prefix: str  # base_model_prefix
    has_base_model: bool
    dtype: Any
    config_dtype: str | None
    version: str  # transformers'

    def in_base(self, model_key: str) -> bool:
        """The key belongs to the base model (every key does in a model without a head)."""
        return not self.has_base_model or model_key.startswith(self.prefix + ".")

    def verdict(
        self,
        request: Request,
        meta_state_dict: Mapping[str, Any],
        found: tuple[Iterable[str], Iterable[str], Mapping[str, list[str]]],
        mismatched: Iterable[FoundMismatch],
        errors: tuple[Iterable[ConversionError], Iterable[Shadowed]],
    ) -> LoadVerdict:
        """The LoadVerdict of transformers' key decisions: `found` is (missing model keys,
        unexpected model keys, the file keys reported under each unexpected name), `errors`
        (conversion errors, shadowed file keys)."""
        missing, unexpected, unexpected_from = found
        conversion_errors, shadowed = errors

        def shape(model_key: str) -> tuple[int, ...]:
            return tuple(int(d) for d in getattr(meta_state_dict.get(model_key), "shape", ()))

        # A name no file key produced cannot happen with native classes; report it under itself.
        unexpected_pairs = {
            Unexpected(file_key, model_key)
            for model_key in unexpected
            for file_key in unexpected_from.get(model_key, [model_key])
        }
        return LoadVerdict(
            architecture=request.model_class.cls.__name__,
            architecture_source=request.model_class.source,
            model_type=getattr(self.model.config, "model_type", None) or None,
            base_model_prefix=self.prefix,
            has_base_model=self.has_base_model,
            transformers_version=self.version,
            dtype=dtype_name(self.dtype) or str(self.dtype),
            config_dtype=self.config_dtype,
            missing=tuple(Missing(k, self.in_base(k), shape(k)) for k in sorted(set(missing))),
            unexpected=tuple(sorted(unexpected_pairs, key=lambda u: (u.model_key, u.file_key))),
            mismatched=tuple(
                Mismatch(
                    model_key=model_key,
                    file_key=file_key,
                    checkpoint_shape=tuple(int(d) for d in ckpt_shape),
                    model_shape=tuple(int(d) for d in model_shape),
                    in_base_model=self.in_base(model_key),
                    file_keys=sources,
                    earlier_copy=copy,
                )
                for model_key, (ckpt_shape, model_shape), file_key, sources, copy in sorted(
                    mismatched, key=lambda m: (m[0], _copy_order(m[4]))
                )
            ),
            conversion_errors=tuple(
                sorted(
                    conversion_errors,
                    key=lambda c: (c.model_key, _copy_order(c.earlier_copy), c.message),
                )
            ),
            shadowed=tuple(sorted(shadowed, key=lambda s: s.file_key)),
            notes=request.model_class.notes,
        )


def _copy_order(earlier_copy: int | None) -> int:
    """A key's shard copies in load order: the earlier ones (0, 1, ...), then the last (None)."""
    return sys.maxsize if earlier_copy is None else earlier_copy


class Unsupported(Exception):
    """The installed transformers lacks a loading function, or asks for an unknown argument."""


def module(name: str) -> Any:
    """`transformers.<name>`, through import_module so the type checker sees Any at this boundary:
    these are private functions, pinned by the differential tests rather than by types."""
    return importlib.import_module(f"transformers.{name}")


def call(function: Any, values: Mapping[str, Any]) -> Any:
    """`function(**values)` limited to the parameters it takes; each required one must be known.

    This is the feature detection: a loading function that gained or lost a parameter between
    minors is called the way the installed version declares it, and one that requires something
    sdlint has no value for raises `Unsupported` instead of a TypeError from inside transformers.
    """
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError) as e:
        raise Unsupported(f"cannot inspect {_qualname(function)}: {e}") from e
    arguments: dict[str, Any] = {}
    for name, parameter in parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name in values:
            arguments[name] = values[name]
        elif parameter.default is parameter.empty:
            raise Unsupported(
                f"{_qualname(function)}() requires `{name}`, which sdlint does not know"
            )
    return function(**arguments)


def _qualname(function: Any) -> str:
    return str(getattr(function, "__qualname__", function))


def unsupported_version(version: str, why: str) -> ConfigProblem:
    """SD107 for a transformers whose loading code sdlint does not reproduce: a usage fact."""
    return ConfigProblem(
        UNSUPPORTED_VERSION,
        f"transformers {version} is not supported: {why}. sdlint's model checks reproduce the "
        f"loading code of transformers {SUPPORTED}; install one of those (`{INSTALL_SUPPORTED}`).",
    )


def internal_failure(version: str, doing: str, e: Exception) -> ConfigProblem:
    """An exception inside transformers' own loading code: neither the config's nor the user's."""
    if isinstance(e, Unsupported):
        return unsupported_version(version, f"its loading code differs ({e})")
    return ConfigProblem(
        LOAD_FAILED,
        f"transformers {version} raised an unexpected exception inside its own loading code "
        f"while {doing}: {describe_exception(e)}. This is not a fault sdlint can point to in "
        "config.json; from_pretrained likely fails the same way. If it does not, report it to "
        "sdlint with the transformers version.",
    )


def dtype_name(dtype: Any) -> str | None:
    """The name torch gives a dtype ("float32") for a torch.dtype or a string; None for None."""
    if dtype is None:
        return None
    return str(dtype).removeprefix("torch.")


def build_config(
    cls: Any, document: Mapping[str, Any], config_name: str
) -> tuple[Any, str] | ConfigProblem:
    """The config object `cls.from_pretrained` loads from this config.json, and its class name.

    As `PretrainedConfig.from_pretrained` does (4.54 to 5.24 alike): a sub-config class
    (`text_config`, ...) takes its part of the document (`base_config_key`, R9/R33), else the
    sub-config of its own `model_type`, then `from_dict`. A concrete config class
    never runs repository code (R32).
    """
    name = cls.__name__
    config_class = getattr(cls, "config_class", None)
    if config_class is None:
        return ConfigProblem(
            CANNOT_INSTANTIATE,
            f"{name} cannot be built: it declares no config class. "
            "Pass a concrete model class with --architecture.",
        )
    values: Any = copy.deepcopy(dict(document))
    # 5.x writes a non-finite float as `{"__float__": "Infinity"}` and decodes it when it reads
    # config.json (`_dict_from_json_file`); 4.x writes and reads JSON's own `Infinity`.
    decode = getattr(config_class, "_decode_special_floats", None)
    if decode is not None:
        values = decode(values)
    key = getattr(config_class, "base_config_key", None)
    if key and key in values:
        values = values[key]
    # A config of another model_type: the sub-config of the class's own model_type, if any
    # (`LlamaConfig` reads `text_config` of a Llava config this way where it has no base key).
    model_type = getattr(config_class, "model_type", None)
    if isinstance(values, dict) and values.get("model_type", model_type) != model_type:
        for value in list(values.values()):
            if isinstance(value, dict) and value.get("model_type") == model_type:
                values = value
    try:
        if not isinstance(values, dict):
            raise TypeError(f"`{key}` is a {type(values).__name__}, not an object")
        config = config_class.from_dict(values)
    except Exception as e:  # transformers validates configs with many exception types
        return ConfigProblem(
            INVALID_CONFIG,
            f"{config_name} is not a valid {config_class.__name__} for {name}: "
            f"{describe_exception(e)}. Fix the value in config.json.",
        )
    return config, config_class.__name__


@record
class MetaCheckpoint:
    """The checkpoint as empty meta tensors, in safe_open's (sorted) key order."""

    tensors: dict[str, Any]
    unloadable: tuple[str, ...]  # keys whose dtype fails the whole load
    unreadable: frozenset[str]  # keys whose dtype fails when the model loads them


def meta_checkpoint(
    torch: Any, tensors: Mapping[str, TensorSpec], fails_on_open: Iterable[str] = FAILS_ON_OPEN
) -> MetaCheckpoint | ConfigProblem:
    fatal = frozenset(fails_on_open)
    meta: dict[str, Any] = {}
    unloadable: list[str] = []
    unreadable: set[str] = set()
    for key in sorted(tensors):
        spec = tensors[key]
        if spec.dtype in fatal:
            unloadable.append(key)
        elif spec.dtype in FAILS_ON_READ:
            unreadable.add(key)
        # An unloadable dtype still has a place in the key/shape verdict; uint8 stands in.
        torch_dtype = getattr(torch, TORCH_DTYPES.get(spec.dtype, "uint8"))
        try:
            meta[key] = torch.empty(spec.shape, dtype=torch_dtype, device="meta")
        except Exception as e:  # an absurd shape torch cannot represent
            return ConfigProblem(
                LOAD_FAILED,
                f"tensor {key!r} cannot be represented by torch (shape {list(spec.shape)}): "
                f"{describe_exception(e)}. Fix the tensor's header entry.",
            )
    return MetaCheckpoint(meta, tuple(unloadable), frozenset(unreadable))


def build_model(
    cls: Any,
    config: Any,
    config_name: str,
    contexts: Callable[[], Iterable[Any]],
    version: str,
) -> Any | ConfigProblem:
    """`cls(config)` on meta inside the contexts from_pretrained enters (R5-R7).

    An exception while preparing the contexts is transformers' own; one from the model's
    `__init__` comes from the config values (R7) or a missing optional package.
    """
    import contextlib

    name = cls.__name__
    config = copy.deepcopy(config)  # from_pretrained does not build on the config it returns
    with contextlib.ExitStack() as stack:
        try:
            for context in contexts():
                stack.enter_context(context)
        except Exception as e:
            return internal_failure(version, f"preparing to build {name}", e)
        try:
            return cls(config)
        except ImportError as e:
            package = missing_package(e)
            what = f"the package `{package}`" if package else "an optional package"
            return ConfigProblem(
                MISSING_DEPENDENCY,
                f"{name} cannot be built: it needs {what} ({describe_exception(e)}). "
                f"Install it{f' (`pip install {package}`)' if package else ''} to check this "
                "checkpoint.",
            )
        except Exception as e:
            return ConfigProblem(
                CANNOT_INSTANTIATE,
                f"{name} cannot be built from {config_name}: {describe_exception(e)}. "
                "Fix the config values it names, or pass the right class with --architecture.",
            )
