"""The transformers 5.x backend of the oracle: every call into transformers' private loading code.

This module reproduces `PreTrainedModel.from_pretrained` (modeling_utils.py:3903, transformers
5.24) step for step, minus reading tensor data: the checkpoint becomes a state dict of empty *meta*
tensors with the header shapes and dtypes, which transformers' own renaming, converter ops (MoE
expert fusion runs on meta tensors too), tie resolution and ignore lists then classify exactly as
they would real tensors (design doc §10). The calls are private API, pinned by
tests/model/test_differential.py on 5.0, 5.12 and 5.24; their differences between minors are
detected in `_LoadingCalls`, nowhere else.

Imported only through `backends.select`, after torch and transformers imported fine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from sdlint.model._text import describe_exception
from sdlint.model.backends._common import (
    Backend,
    Built,
    Request,
    Unsupported,
    build_config,
    build_model,
    call,
    dtype_name,
    internal_failure,
    meta_checkpoint,
    module,
    unsupported_version,
)
from sdlint.model.verdict import (
    INVALID_CONFIG,
    ConfigProblem,
    ConversionError,
    Outcome,
    Shadowed,
)
from sdlint.record import record

_TRACEBACK_HEAD = "Traceback (most recent call last):"


def _predict(backend: TransformersV5, request: Request) -> Outcome:
    """The verdict of `cls.from_pretrained(dir, ...)` for `request`'s checkpoint."""
    version, torch, cls = backend.version, backend.torch, request.model_class.cls
    config_name, tensors = request.config_name, request.tensors
    try:
        calls = _LoadingCalls.detect()
    except Unsupported as e:
        return unsupported_version(version, f"its loading code differs ({e})")

    name = cls.__name__
    # 1. The config, as from_pretrained loads it: the class's own config class, which extracts a
    #    sub-config (`text_config`, ...) when that is what the class takes (R9, R33).
    built = build_config(cls, request.document, config_name)
    if isinstance(built, ConfigProblem):
        return built
    config, _ = built
    config_dtype = dtype_name(getattr(config, "dtype", None))

    # 2. The checkpoint as meta tensors, in safe_open's (sorted) key order, which is the order
    #    `get_state_dict_dtype` scans for the first floating dtype (R29).
    checkpoint = meta_checkpoint(torch, tensors)
    if isinstance(checkpoint, ConfigProblem):
        return checkpoint
    meta_tensors = checkpoint.tensors

    # 3. The load dtype: the config's, else the first floating dtype of the checkpoint (R29).
    try:
        config, dtype = calls.get_dtype("auto", None, config, None, meta_tensors, True)
    except Exception as e:
        return ConfigProblem(
            INVALID_CONFIG,
            f"{name} cannot be built in dtype {config_dtype or '(from the checkpoint)'}: "
            f"{describe_exception(e)}. Set `dtype` in config.json to a floating-point torch dtype "
            'such as "float32" or "bfloat16".',
        )

    if not dtype.is_floating_point:  # from_pretrained raises the same in `local_torch_dtype`
        origin = (
            f"the config's dtype {config_dtype}"
            if config_dtype
            else f"{dtype_name(dtype)}, the checkpoint's first dtype (it has no floating tensor)"
        )
        return ConfigProblem(
            INVALID_CONFIG,
            f"{name} cannot be built in {origin}: models are built in a floating-point dtype. "
            'Set `dtype` in config.json to one, such as "float32" or "bfloat16".',
        )

    # 4. The model, on meta, inside the contexts from_pretrained uses (R5-R7).
    model = build_model(cls, config, config_name, lambda: calls.init_contexts(cls, dtype), version)
    if isinstance(model, ConfigProblem):
        return model

    # 5. transformers' own matching: renaming, prefix handling, converters, shape checks (R10-R20),
    #    then _finalize_model_loading without the weight initialisation: ties (R21-R23) and the
    #    ignore lists (R25).
    prefix = model.base_model_prefix or ""
    has_base_model = bool(prefix) and hasattr(model, prefix)
    try:
        meta_state_dict = model.state_dict()
        result = calls.load(model, meta_tensors, dtype)
    except Exception as e:
        return internal_failure(version, f"matching the checkpoint's keys to {name}", e)

    # The key map the rules report file names with (R15): the renames transformers computed
    # during the load, in its (dot_natural_key) order.
    pattern_targets = {
        p: list(c.target_patterns) for c in result.converters for p in c.source_patterns
    }
    feeds: dict[str, list[str]] = {}  # model key -> file keys that fed it
    unexpected_from: dict[str, list[str]] = {}  # reported unexpected name -> file keys
    first_plain: dict[str, str] = {}  # model key -> the file key a plain rename kept (R14)
    shadowed: list[Shadowed] = []
    renamed_of: dict[str, str] = {}
    for key, (renamed, pattern) in result.renames.items():
        renamed_of[key] = renamed
        if pattern is None:
            targets = [renamed]
        else:
            # A converter reports every target of an unloadable key (:1961).
            first = pattern_targets[pattern][0]
            targets = list(
                dict.fromkeys(renamed.replace(first, t) for t in pattern_targets[pattern])
            )
        if renamed not in meta_state_dict:
            for target in targets:
                unexpected_from.setdefault(target, []).append(key)
        elif pattern is None and renamed in first_plain:
            shadowed.append(Shadowed(key, renamed, first_plain[renamed]))
        else:
            if pattern is None:
                first_plain[renamed] = key
            for target in targets:
                feeds.setdefault(target, []).append(key)

    conversion_errors = [
        ConversionError(k, _strip_traceback(msg), tuple(feeds.get(k, ())))
        for k, msg in result.conversion_errors.items()
    ]
    for key in checkpoint.unloadable:
        conversion_errors.append(
            ConversionError(
                renamed_of.get(key, key),
                f"safetensors cannot open dtype {tensors[key].dtype} (tensor {key!r}), so "
                "from_pretrained fails on the whole file",
                (key,),
            )
        )
    for key in sorted(checkpoint.unreadable):
        if renamed_of.get(key) in meta_state_dict:
            conversion_errors.append(
                ConversionError(
                    renamed_of[key],
                    f"safetensors cannot read dtype {tensors[key].dtype} into a torch tensor "
                    f"(tensor {key!r}), so from_pretrained fails when it loads it",
                    (key,),
                )
            )

    mismatched = []
    for model_key, ckpt_shape, model_shape in result.mismatched:
        sources = tuple(feeds.get(model_key, ()))
        file_key = sources[0] if len(sources) == 1 else None
        mismatched.append((model_key, (ckpt_shape, model_shape), file_key, sources, None))
    facts = Built(model, prefix, has_base_model, dtype, config_dtype, version)
    found = (result.missing, result.unexpected, unexpected_from)
    return facts.verdict(request, meta_state_dict, found, mismatched, (conversion_errors, shadowed))


class TransformersV5(Backend):
    """transformers 5.0 to 5.24 (and later 5.x minors whose loading calls keep their shape)."""

    _verdict = _predict


def _strip_traceback(message: str) -> str:
    """transformers' conversion messages embed a full traceback; keep the explanation after it."""
    if _TRACEBACK_HEAD not in message:
        return message.strip()
    # format_exception output: the traceback, then "ExcType: text", then transformers' own lines.
    tail = message.split(_TRACEBACK_HEAD)[-1]
    lines = [line for line in tail.splitlines() if line and not line.startswith(" ")]
    # The first unindented line is the exception line; transformers repeats its text after it.
    exception_line, *rest = lines or [""]
    kept = [exception_line] + [r for r in rest if r not in exception_line]
    return re.sub(r"\s+", " ", " ".join(kept)).strip()


# ---------------------------------------------------------------------------------------------
# The private loading calls, as the installed 5.x minor offers them (feature detection).
#
# Between 5.0 and 5.24 these changed shape: `get_init_context` gained `allow_all_kernels`;
# `convert_and_load_state_dict_in_model` dropped `dtype_plan` (the dtype plan moved into
# `LoadStateDictConfig`), then `tp_plan`, and returns a `LoadStateDictInfo` instead of a 5-tuple;
# `mark_tied_weights_as_initialized` and `_adjust_missing_and_unexpected_keys` take that info
# instead of key sets; `rename_source_key` is wrapped by a prefix-only fallback from some minor
# on. Each call passes what the installed signature asks for, by name (`call`), and the renames
# are recorded as transformers computes them rather than recomputed.

# The values sdlint gives the parameters of transformers' loading functions, by name, as
# from_pretrained does for a local, unquantized, single-process load.
_NOT_QUANTIZED = {"is_quantized": False, "_is_ds_init_called": False, "allow_all_kernels": None}


@record
class _Loaded:
    """transformers' verdict on the meta state dict, after ties and ignore lists."""

    missing: frozenset[str]
    unexpected: frozenset[str]
    mismatched: tuple[tuple[str, Any, Any], ...]
    conversion_errors: Mapping[str, str]
    converters: tuple[Any, ...]
    # file key -> (renamed key, converter source pattern or None), as the load computed them
    renames: Mapping[str, tuple[str, str | None]]


@record
class _LoadingCalls:
    """transformers' private loading functions, bound to the installed version's signatures."""

    get_dtype: Any
    context_managers: Any
    conversion_mapping: Any
    loading: Any  # the core_model_loading module
    load_config_class: Any
    load_info_class: Any

    @classmethod
    def detect(cls) -> _LoadingCalls:
        try:
            # Through import_module, so the type checker sees Any at this boundary: these are
            # private functions, pinned by the differential tests rather than by types.
            modeling_utils = module("modeling_utils")
            loading = module("core_model_loading")
            calls = cls(
                get_dtype=modeling_utils._get_dtype,
                context_managers=module("utils").ContextManagers,
                conversion_mapping=module("conversion_mapping").get_model_conversion_mapping,
                loading=loading,
                load_config_class=modeling_utils.LoadStateDictConfig,
                load_info_class=getattr(modeling_utils, "LoadStateDictInfo", None),
            )
            for name in (
                "convert_and_load_state_dict_in_model",
                "rename_source_key",
                "WeightConverter",
                "WeightRenaming",
            ):
                getattr(loading, name)
        except (ImportError, AttributeError) as e:
            raise Unsupported(f"it lacks a loading function sdlint calls: {e}") from e
        return calls

    def init_contexts(self, model_class: Any, dtype: Any) -> list[Any]:
        """What from_pretrained enters before building the model: dtype, meta device, patches."""
        contexts = call(model_class.get_init_context, {"dtype": dtype, **_NOT_QUANTIZED})
        return list(contexts)

    def load(self, model: Any, meta_tensors: dict[str, Any], dtype: Any) -> _Loaded:
        """convert_and_load_state_dict_in_model, then ties and ignore lists, as from_pretrained."""
        weight_mapping = call(
            self.conversion_mapping, {"model": model, "key_mapping": None, "hf_quantizer": None}
        )
        converters = tuple(t for t in weight_mapping if isinstance(t, self.loading.WeightConverter))
        # 5.0-5.x keep the model's dtype plan on the model or compute it on demand.
        if hasattr(model, "_get_dtype_plan"):
            dtype_plan = model._get_dtype_plan(dtype)
        else:
            dtype_plan = getattr(model, "dtype_plan", None) or {}
        config_fields = {f.name for f in dataclasses.fields(self.load_config_class)}
        load_config = self.load_config_class(
            **{
                k: v
                for k, v in {
                    "ignore_mismatched_sizes": True,
                    "device_map": {"": "meta"},  # materialising a meta tensor on meta reads nothing
                    "dtype": dtype,
                    "dtype_plan": dtype_plan,
                    "weight_mapping": weight_mapping,
                }.items()
                if k in config_fields
            }
        )
        renames: dict[str, tuple[str, str | None]] = {}
        original_rename = self.loading.rename_source_key

        def recording_rename(source_key: str, *args: Any, **kwargs: Any) -> Any:
            renamed = original_rename(source_key, *args, **kwargs)
            if not kwargs.get("reverse", False):
                renames[source_key] = renamed  # the prefix-only fallback overrides the first try
            return renamed

        with _PATCH_LOCK:
            self.loading.rename_source_key = recording_rename
            try:
                returned = call(
                    self.loading.convert_and_load_state_dict_in_model,
                    {
                        "model": model,
                        "state_dict": meta_tensors,
                        "load_config": load_config,
                        "tp_plan": None,
                        "dtype_plan": dtype_plan,
                        "disk_offload_index": None,
                    },
                )
            finally:
                self.loading.rename_source_key = original_rename
        info = _load_info(returned, self.load_info_class)
        # _finalize_model_loading without the weight initialisation.
        call(model.mark_tied_weights_as_initialized, {"loading_info": info})
        with _meta_tensors_compare_equal():
            model.tie_weights(missing_keys=info.missing_keys, recompute_mapping=False)
        adjusted = call(
            model._adjust_missing_and_unexpected_keys,
            {
                "loading_info": info,
                "missing_keys": info.missing_keys,
                "unexpected_keys": info.unexpected_keys,
            },
        )
        missing, unexpected = (
            adjusted if adjusted is not None else (info.missing_keys, info.unexpected_keys)
        )
        return _Loaded(
            missing=frozenset(missing),
            unexpected=frozenset(unexpected),
            mismatched=tuple(info.mismatched_keys),
            conversion_errors=dict(info.conversion_errors or {}),
            converters=converters,
            renames=renames,
        )


_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def _meta_tensors_compare_equal() -> Iterator[None]:
    """`torch.equal` answers True for meta tensors while ties are resolved.

    With a tied pair both in the checkpoint, 5.x before 5.24 compares their values
    (`torch.equal`, which has no meta kernel) to decide whether to tie them; 5.24 skips the
    comparison for meta tensors. Either answer leaves the reported keys unchanged: both are
    present, so neither is missing.
    """
    torch: Any = importlib.import_module("torch")
    original = torch.equal

    def equal(a: Any, b: Any) -> Any:
        if getattr(a, "is_meta", False) or getattr(b, "is_meta", False):
            return True
        return original(a, b)

    with _PATCH_LOCK:
        torch.equal = equal
        try:
            yield
        finally:
            torch.equal = original


def _load_info(returned: Any, info_class: Any) -> Any:
    """The LoadStateDictInfo a load returned (5.x later) or built from its 5-tuple (5.0 on)."""
    if hasattr(returned, "missing_keys"):
        return returned
    if isinstance(returned, tuple) and hasattr(returned[0], "missing_keys"):
        return returned[0]
    if isinstance(returned, tuple) and len(returned) == 5 and info_class is not None:
        missing, unexpected, mismatched, offload, conversion_errors = returned
        fields = {f.name for f in dataclasses.fields(info_class)}
        values = {
            "missing_keys": missing,
            "unexpected_keys": unexpected,
            "mismatched_keys": mismatched,
            "disk_offload_index": offload,
            "error_msgs": [],
            "conversion_errors": conversion_errors,
        }
        return info_class(**{k: v for k, v in values.items() if k in fields})
    raise Unsupported(
        f"convert_and_load_state_dict_in_model returned a {type(returned).__name__}, "
        "which sdlint does not know"
    )
