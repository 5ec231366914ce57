"""The transformers 4.x backend of the oracle: 4.x `from_pretrained` key matching on meta tensors.

transformers 4.x (modeling_utils.py `_load_pretrained_model`, 4.57) decides keys without the
5.x conversion registry (design doc §11): a *global* base-model prefix decision (add the prefix to
every key, or drop every key outside it), `_fix_state_dict_key_on_load` renames (LayerNorm
`gamma`/`beta`, `weight_g`/`weight_v`), a VLM's `_checkpoint_conversion_mapping` as `key_mapping`,
every model buffer removed from UNEXPECTED, tied parameter groups, the `_keys_to_ignore_on_load_*`
lists, and shape mismatches reported by name. This module calls those same functions
(`_get_key_renaming_mapping`, `_find_missing_and_unexpected_keys`, `_find_mismatched_keys`,
`_adjust_missing_and_unexpected_keys`) on a state dict of empty meta tensors, so the verdict is
transformers' own. Their signatures are matched by name (`_call`): the loader has this structure
from 4.54 on.

Imported only by oracle.py, after torch and transformers imported fine.
"""

from __future__ import annotations

from typing import Any

from sdlint.model._text import describe_exception
from sdlint.model.backends._common import (
    FAILS_ON_OPEN,
    TORCH_DTYPES,
    Backend,
    Built,
    Request,
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
    LOAD_FAILED,
    ConfigProblem,
    ConversionError,
    Outcome,
    Shadowed,
)


def _predict(backend: TransformersV4, request: Request) -> Outcome:
    """The verdict of `cls.from_pretrained(dir, ...)` for `request`'s checkpoint."""
    version, torch, cls = backend.version, backend.torch, request.model_class.cls
    config_name, tensors = request.config_name, request.tensors
    try:
        modeling_utils = module("modeling_utils")
        find_missing_and_unexpected = modeling_utils._find_missing_and_unexpected_keys
        find_mismatched = modeling_utils._find_mismatched_keys
        # `load_state_dict(..., map_location="meta")` raises on any other dtype.
        loadable = frozenset(modeling_utils.str_to_torch_dtype)
        vlm_names = list(getattr(modeling_utils, "VLMS", []))
        context_managers = module("utils").ContextManagers
        cls._get_key_renaming_mapping  # noqa: B018 (present from 4.48 on)
    except (ImportError, AttributeError) as e:
        return unsupported_version(version, f"it lacks a loading function sdlint calls ({e})")

    name = cls.__name__
    # 1. The config, as from_pretrained loads it (R9, R33).
    built = build_config(cls, request.document, config_name)
    if isinstance(built, ConfigProblem):
        return built
    config, _ = built
    config_dtype = dtype_name(
        getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    )

    # 2. The checkpoint as meta tensors, in safe_open's (sorted) key order; a key in several
    #    shards also as its earlier copies, one state dict per copy, earliest first.
    fatal = FAILS_ON_OPEN | (frozenset(TORCH_DTYPES) - loadable) | {"F4"}
    checkpoint = meta_checkpoint(torch, tensors, fatal)
    if isinstance(checkpoint, ConfigProblem):
        return checkpoint
    meta_tensors = checkpoint.tensors
    earlier = []
    depth = max((len(spec.earlier) for spec in tensors.values()), default=0)
    for i in range(depth):
        copies = {k: s.earlier[i] for k, s in tensors.items() if len(s.earlier) > i}
        copy = meta_checkpoint(torch, copies, fatal)
        if isinstance(copy, ConfigProblem):
            return copy
        earlier.append(copy)

    # 3. The model, on meta, as from_pretrained builds it. 4.x loads in torch's default dtype
    #    unless the caller passes one (the config's dtype is not used before v5).
    dtype = torch.get_default_dtype()

    def contexts() -> list[Any]:
        found = call(
            cls.get_init_context,
            {"dtype": dtype, "is_quantized": False, "_is_ds_init_called": False},
        )
        return [context_managers(found)]

    model = build_model(cls, config, config_name, contexts, version)
    if isinstance(model, ConfigProblem):
        return model
    try:
        model.tie_weights()
    except Exception as e:
        return internal_failure(version, f"tying the weights of {name}", e)

    # 4. `_load_pretrained_model`'s key decisions (4.57 :5309-5346, :5507).
    key_mapping = None
    if any(v in c.__name__.lower() for c in cls.__mro__[:-1] for v in vlm_names):
        key_mapping = getattr(cls, "_checkpoint_conversion_mapping", None)
    # The checkpoint's keys: a sharded checkpoint's are its index's `weight_map` keys (4.57
    # `get_checkpoint_shard_files` -> `all_checkpoint_keys`), so a key the index lists but its shard
    # lacks counts as present and a shard's key the index omits is never loaded; its shapes are
    # compared shard by shard for the indexed keys only.
    keys = list(meta_tensors) if request.index_keys is None else list(request.index_keys)
    prefix = model.base_model_prefix or ""
    has_prefix_module = any(k.startswith(prefix) for k in keys) if prefix else False
    expects_prefix_module = hasattr(model, prefix) if prefix else False
    task_from_base = not has_prefix_module and expects_prefix_module
    base_from_task = has_prefix_module and not expects_prefix_module
    try:
        renaming: dict[str, str] = call(
            model._get_key_renaming_mapping,
            {
                "checkpoint_keys": keys,
                "key_mapping": key_mapping,
                "loading_base_model_from_task_state_dict": base_from_task,
                "loading_task_model_from_base_state_dict": task_from_base,
            },
        )
    except ValueError as e:  # "The state dictionary of the model ... is corrupted"
        return ConfigProblem(
            LOAD_FAILED,
            f"transformers {version} refuses this checkpoint for {name}: "
            f"{describe_exception(e)} (a checkpoint without the `{prefix}.` prefix has a key "
            "only the task head has). from_pretrained raises the same; check the tensor names.",
        )
    except Exception as e:
        return internal_failure(version, f"renaming the checkpoint's keys for {name}", e)
    try:
        meta_state_dict = model.state_dict()
        missing, unexpected = call(
            find_missing_and_unexpected,
            {
                "cls": cls,
                "model": model,
                "original_checkpoint_keys": keys,
                "checkpoint_keys": list(renaming.values()),
                "loading_base_model_from_task_state_dict": base_from_task,
                "hf_quantizer": None,
                "device_map": None,
            },
        )
        # Every shard is compared with the model (4.57 :1450): a key in two shards is mismatched
        # once per copy of another shape, and then not loaded from either.
        found_mismatches: list[tuple[str, Any, int | None]] = []  # and which copy: `Mismatch`
        state_dicts: list[tuple[int | None, dict[str, Any]]] = [
            *((i, copy.tensors) for i, copy in enumerate(earlier)),
            (None, meta_tensors),
        ]
        for copy_index, state_dict in state_dicts:
            found_keys, found_shapes = call(
                find_mismatched,
                {
                    "model": model,
                    "state_dict": state_dict,
                    "checkpoint_files": None,
                    "ignore_mismatched_sizes": True,
                    "keys_to_rename_mapping": renaming,
                    "is_quantized": False,
                    "weights_only": True,
                },
            )
            found_mismatches += [
                (key, shapes, copy_index)
                for key, shapes in zip(found_keys, found_shapes, strict=True)
            ]
        # 4.57 applies the ignore lists here; 4.54-4.56 did inside the function above.
        if hasattr(model, "_adjust_missing_and_unexpected_keys"):
            missing, unexpected = call(
                model._adjust_missing_and_unexpected_keys,
                {
                    "missing_keys": missing,
                    "unexpected_keys": unexpected,
                    "loading_task_model_from_base_state_dict": task_from_base,
                },
            )
    except Exception as e:
        return internal_failure(version, f"matching the checkpoint's keys to {name}", e)

    # The file keys behind each reported name (R15): the renaming transformers computed, and the
    # name an unexpected key is reported under (a task checkpoint's keys outside the base model
    # keep their own names).
    feeds: dict[str, list[str]] = {}
    unexpected_from: dict[str, list[str]] = {}
    for key in keys:
        renamed = renaming.get(key)
        if renamed is None:  # dropped: outside the base model of a base-model load
            unexpected_from.setdefault(key, []).append(key)
            continue
        # 4.57 reports the prefix it added removed again; 4.54-4.56 keep it.
        for shown in dict.fromkeys(
            (renamed, renamed.removeprefix(prefix + ".") if task_from_base else renamed)
        ):
            unexpected_from.setdefault(shown, []).append(key)
        if renamed in meta_state_dict:
            feeds.setdefault(renamed, []).append(key)
    # Several file keys renamed to one model key: the last one in the file is loaded.
    shadowed = [
        Shadowed(file_key, model_key, sources[-1])
        for model_key, sources in feeds.items()
        for file_key in sources[:-1]
    ]

    # A dtype 4.x cannot load fails the whole load, in whichever shard's copy it is: each
    # offending copy is an error, about the shard that holds it.
    unloadable: list[tuple[str, str, int | None]] = [
        (key, tensors[key].earlier[i].dtype, i)
        for i, copy in enumerate(earlier)
        for key in copy.unloadable
    ]
    unloadable += [(key, tensors[key].dtype, None) for key in checkpoint.unloadable]
    conversion_errors = [
        ConversionError(
            renaming.get(key, key),
            f"transformers {version} cannot load safetensors dtype {unloadable_dtype} "
            f"(tensor {key!r}), so from_pretrained fails on the whole file",
            (key,),
            copy_index,
        )
        for key, unloadable_dtype, copy_index in unloadable
    ]
    mismatched = []
    for model_key, shapes, copy_index in found_mismatches:
        sources = tuple(feeds.get(model_key, ()))[-1:]  # the last file key is the one loaded
        mismatched.append((model_key, shapes, sources[0] if sources else None, sources, copy_index))
    facts = Built(model, prefix, expects_prefix_module, dtype, config_dtype, version)
    return facts.verdict(
        request,
        meta_state_dict,
        (missing, unexpected, unexpected_from),
        mismatched,
        (conversion_errors, shadowed),
    )


class TransformersV4(Backend):
    """transformers 4.54 to 4.57."""

    _verdict = _predict
