"""The transformers 5.x backend of the oracle: every call into transformers' private loading code.

This module reproduces `PreTrainedModel.from_pretrained` (modeling_utils.py:3903, transformers
5.24) step for step, minus reading tensor data: the checkpoint becomes a state dict of empty *meta*
tensors with the header shapes and dtypes, which transformers' own renaming, converter ops (MoE
expert fusion runs on meta tensors too), tie resolution and ignore lists then classify exactly as
they would real tensors (design doc §10). The calls are private API, pinned by
tests/model/test_differential.py; another transformers major gets its own module beside this one
(see oracle.py `_backend`).

Imported only by oracle.py, after torch and transformers imported fine.
"""

from __future__ import annotations

import copy
import importlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sdlint.dtypes import TORCH_NAMES
from sdlint.model._text import describe_exception, missing_package
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

# What safetensors does with the rest: F6_* fail when the tensor is opened (`get_slice`, which
# `_load_pretrained_model` calls for every key, so the whole load fails); F4 opens but fails when
# the tensor is read (only keys the model loads are read).
_FAILS_ON_OPEN = frozenset({"F6_E2M3", "F6_E3M2"})
_FAILS_ON_READ = frozenset({"F4"})
_TRACEBACK_HEAD = "Traceback (most recent call last):"


def predict(
    transformers: Any,
    torch: Any,
    cls: Any,
    config_path: Path,
    tensors: Mapping[str, TensorSpec],
    *,
    architecture_source: str,
    notes: tuple[str, ...] = (),
) -> Outcome:
    """The verdict of `cls.from_pretrained(config_path.parent, ...)` for a checkpoint `tensors`."""
    try:
        # Through import_module, so the type checker sees Any at this boundary: these are
        # private functions, pinned by the differential tests rather than by types.
        get_model_conversion_mapping = _module("conversion_mapping").get_model_conversion_mapping
        loading = _module("core_model_loading")
        weight_converter, weight_renaming = loading.WeightConverter, loading.WeightRenaming
        convert_and_load = loading.convert_and_load_state_dict_in_model
        dot_natural_key, rename_source_key = loading.dot_natural_key, loading.rename_source_key
        modeling_utils = _module("modeling_utils")
        load_state_dict_config, get_dtype = (
            modeling_utils.LoadStateDictConfig,
            modeling_utils._get_dtype,
        )
        context_managers = _module("utils").ContextManagers
    except (ImportError, AttributeError) as e:
        return ConfigProblem(
            UNSUPPORTED_VERSION,
            f"transformers {transformers.__version__} lacks the loading functions sdlint calls "
            f"({e}): sdlint's model checks follow transformers 5.24. "
            "Install transformers 5.24 (`pip install 'transformers==5.24.*'`).",
        )

    name = cls.__name__
    # 1. The config, as from_pretrained loads it: the class's own config class, which extracts a
    #    sub-config (`text_config`, ...) when that is what the class takes (R9, R33).
    config_class = getattr(cls, "config_class", None)
    if config_class is None:
        return ConfigProblem(
            CANNOT_INSTANTIATE,
            f"{name} cannot be built: it declares no config class. "
            "Pass a concrete model class with --architecture.",
        )
    try:
        # A concrete config class never runs repository code; False says so regardless (R32).
        config = config_class.from_pretrained(
            str(config_path), local_files_only=True, trust_remote_code=False
        )
    except Exception as e:  # transformers validates configs with many exception types
        return ConfigProblem(
            INVALID_CONFIG,
            f"{config_path.name} is not a valid {config_class.__name__} for {name}: "
            f"{describe_exception(e)}. Fix the value in config.json.",
        )
    config_dtype = _dtype_name(getattr(config, "dtype", None))

    # 2. The checkpoint as meta tensors, in safe_open's (sorted) key order, which is the order
    #    `get_state_dict_dtype` scans for the first floating dtype (R29).
    meta_tensors: dict[str, Any] = {}
    open_failures: list[str] = []
    read_failures: set[str] = set()
    for key in sorted(tensors):
        spec = tensors[key]
        if spec.dtype in _FAILS_ON_OPEN:
            open_failures.append(key)
        elif spec.dtype in _FAILS_ON_READ:
            read_failures.add(key)
        # An unloadable dtype still has a place in the key/shape verdict; uint8 stands in.
        torch_dtype = getattr(torch, TORCH_NAMES.get(spec.dtype, "uint8"))
        try:
            meta_tensors[key] = torch.empty(spec.shape, dtype=torch_dtype, device="meta")
        except Exception as e:  # an absurd shape torch cannot represent
            return ConfigProblem(
                LOAD_FAILED,
                f"tensor {key!r} cannot be represented by torch (shape {list(spec.shape)}): "
                f"{describe_exception(e)}. Fix the tensor's header entry.",
            )

    # 3. The load dtype: the config's, else the first floating dtype of the checkpoint (R29).
    try:
        config, dtype = get_dtype("auto", None, config, None, meta_tensors, True)
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
            else f"{_dtype_name(dtype)}, the checkpoint's first dtype (it has no floating tensor)"
        )
        return ConfigProblem(
            INVALID_CONFIG,
            f"{name} cannot be built in {origin}: models are built in a floating-point dtype. "
            'Set `dtype` in config.json to one, such as "float32" or "bfloat16".',
        )

    # 4. The model, on meta, inside the contexts from_pretrained uses (R5-R7).
    config = copy.deepcopy(config)  # from_pretrained does not build on the config it returns
    try:
        with context_managers(cls.get_init_context(dtype, False, False, None)):
            model = cls(config)
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
            f"{name} cannot be built from {config_path.name}: {describe_exception(e)}. "
            "Fix the config values it names, or pass the right class with --architecture.",
        )

    # 5. transformers' own matching: renaming, prefix handling, converters, shape checks (R10-R20).
    prefix = model.base_model_prefix or ""
    has_base_model = bool(prefix) and hasattr(model, prefix)
    try:
        weight_mapping = get_model_conversion_mapping(model, None, None)
        renamings = [t for t in weight_mapping if isinstance(t, weight_renaming)]
        converters = [t for t in weight_mapping if isinstance(t, weight_converter)]
        pattern_targets = {
            p: list(c.target_patterns) for c in converters for p in c.source_patterns
        }
        load_config = load_state_dict_config(
            ignore_mismatched_sizes=True,
            device_map={"": "meta"},  # materialising a meta tensor on meta reads nothing
            dtype=dtype,
            dtype_plan=model._get_dtype_plan(dtype),
            weight_mapping=weight_mapping,
        )
        # The key map the rules report file names with (R15), computed as
        # `convert_and_load_state_dict_in_model` does (:1884-1896); the load recomputes it.
        meta_state_dict = model.state_dict()
        feeds: dict[str, list[str]] = {}  # model key -> file keys that fed it
        unexpected_from: dict[str, list[str]] = {}  # reported unexpected name -> file keys
        first_plain: dict[str, str] = {}  # model key -> the file key a plain rename kept (R14)
        shadowed: list[Shadowed] = []
        renamed_of: dict[str, str] = {}
        for key in sorted(meta_tensors, key=dot_natural_key):
            renamed, pattern = rename_source_key(
                key, renamings, converters, prefix, meta_state_dict
            )
            if renamed not in meta_state_dict and key in meta_state_dict:
                renamed, pattern = rename_source_key(key, [], [], prefix, meta_state_dict)
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

        info, _ = convert_and_load(model=model, state_dict=meta_tensors, load_config=load_config)
        # 6. _finalize_model_loading (:4605) without the weight initialisation: ties (R21-R23),
        #    then the ignore lists (R25).
        model.mark_tied_weights_as_initialized(info)
        model.tie_weights(missing_keys=info.missing_keys, recompute_mapping=False)
        model._adjust_missing_and_unexpected_keys(info)
    except Exception as e:
        return ConfigProblem(
            LOAD_FAILED,
            f"transformers {transformers.__version__} fails while matching the checkpoint's keys "
            f"to {name}: {describe_exception(e)}. from_pretrained fails the same way; check the "
            "tensor names.",
        )

    def in_base(model_key: str) -> bool:
        return not has_base_model or model_key.startswith(prefix + ".")

    conversion_errors = [
        ConversionError(k, _strip_traceback(msg), tuple(feeds.get(k, ())))
        for k, msg in info.conversion_errors.items()
    ]
    for key in open_failures:
        conversion_errors.append(
            ConversionError(
                renamed_of[key],
                f"safetensors cannot open dtype {tensors[key].dtype} (tensor {key!r}), so "
                "from_pretrained fails on the whole file",
                (key,),
            )
        )
    for key in sorted(read_failures):
        if renamed_of[key] in meta_state_dict:
            conversion_errors.append(
                ConversionError(
                    renamed_of[key],
                    f"safetensors cannot read dtype {tensors[key].dtype} into a torch tensor "
                    f"(tensor {key!r}), so from_pretrained fails when it loads it",
                    (key,),
                )
            )

    mismatched = []
    for model_key, ckpt_shape, model_shape in info.mismatched_keys:
        sources = tuple(feeds.get(model_key, ()))
        mismatched.append(
            Mismatch(
                model_key=model_key,
                file_key=sources[0] if len(sources) == 1 else None,
                checkpoint_shape=tuple(int(d) for d in ckpt_shape),
                model_shape=tuple(int(d) for d in model_shape),
                in_base_model=in_base(model_key),
                file_keys=sources,
            )
        )
    unexpected = [
        # A name no file key produced cannot happen with native classes; report it under itself.
        Unexpected(file_key, model_key)
        for model_key in info.unexpected_keys
        for file_key in unexpected_from.get(model_key, [model_key])
    ]
    return LoadVerdict(
        architecture=name,
        architecture_source=architecture_source,
        model_type=getattr(model.config, "model_type", None) or None,
        base_model_prefix=prefix,
        has_base_model=has_base_model,
        transformers_version=str(transformers.__version__),
        dtype=_dtype_name(dtype) or str(dtype),
        config_dtype=config_dtype,
        missing=tuple(
            Missing(
                k, in_base(k), tuple(int(d) for d in getattr(meta_state_dict.get(k), "shape", ()))
            )
            for k in sorted(info.missing_keys)
        ),
        unexpected=tuple(sorted(unexpected, key=lambda u: (u.model_key, u.file_key))),
        mismatched=tuple(sorted(mismatched, key=lambda m: m.model_key)),
        conversion_errors=tuple(sorted(conversion_errors, key=lambda c: (c.model_key, c.message))),
        shadowed=tuple(sorted(shadowed, key=lambda s: s.file_key)),
        notes=notes,
    )


def _dtype_name(dtype: Any) -> str | None:
    """The name torch gives a dtype ("float32") for a torch.dtype or a string; None for None."""
    if dtype is None:
        return None
    return str(dtype).removeprefix("torch.")


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


def _module(name: str) -> Any:
    return importlib.import_module(f"transformers.{name}")
