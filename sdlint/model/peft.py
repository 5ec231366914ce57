"""What `PeftModel.from_pretrained(base_model, adapter_dir)` reports for a PEFT adapter, from the
adapter's header and two configs alone.

`predict_adapter` builds the base model on the meta device (the class the base config.json names,
resolved as the model oracle resolves it), lets peft itself inject the adapter described by
adapter_config.json, and runs peft's own loading code (`set_peft_model_state_dict`: its key
renames, transformers 5 weight conversion, `modules_to_save` load map and size checks) on empty
meta tensors with the header's shapes. So LoRA, DoRA, IA3, AdaLoRA and `modules_to_save` heads are
judged as peft judges them (tests/model/test_peft_differential.py holds the verdict to the real
`PeftModel.from_pretrained`). Nothing is downloaded, no tensor data is read, no repository code is
run.

`adapter_verdict` answers from the verdict cache when it can (the key covers both configs, the
signature and the transformers, torch and peft versions), so a warm run imports none of them.
Like oracle.py, this module imports torch, transformers and peft only inside functions (through
sdlint/model/runtime.py, which both share).
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sdlint.config_fields import ConfigFile
from sdlint.dtypes import TORCH_NAMES
from sdlint.model._text import describe_exception
from sdlint.model.runtime import (
    ConfigKind,
    collector_paused,
    config_document,
    import_modules,
    quiet,
    silence_transformers,
)
from sdlint.model.verdict import (
    CANNOT_INSTANTIATE,
    INVALID_CONFIG,
    LOAD_FAILED,
    NOT_INSTALLED,
    QUANTIZED,
    AdapterMismatch,
    AdapterMissing,
    AdapterOutcome,
    AdapterVerdict,
    ConfigProblem,
    TensorSpec,
    Unexpected,
)
from sdlint.record import replace
from sdlint.runcache import untrusted

INSTALL_HINT = "pip install 'sdlint[peft]'"
ADAPTER_NAME = "default"  # the name PeftModel.from_pretrained loads an adapter under


def adapter_verdict(
    base: ConfigFile,
    adapter: ConfigFile,
    tensors: Mapping[str, TensorSpec],
    architecture: str | None = None,
    *,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    notes: list[str] | None = None,
) -> AdapterOutcome:
    """`predict_adapter`, cached on disk like the model verdicts (sdlint/model/cache.py); a
    cache that cannot be written adds its one note to `notes`."""
    from sdlint.model.cache import VerdictCache, cache_root, installed_version

    if not use_cache or base.document is None or adapter.document is None:
        return predict_adapter(base, adapter, tensors, architecture)
    versions = {name: installed_version(name) for name in ("transformers", "torch", "peft")}
    key = adapter_cache_key(base, adapter, tensors, architecture, versions)
    root = cache_root(cache_dir)
    cache = VerdictCache(root)
    hit = cache.get_adapter(key)
    if hit is not None:
        return hit
    result = predict_adapter(base, adapter, tensors, architecture)
    if not isinstance(result, ConfigProblem) or result.cacheable:
        recorded = recorded_adapter_key(base, adapter, tensors, architecture)
        cache.keep(root, key, recorded, result, notes)  # as for models: one note, said once
    else:
        untrusted()  # what the environment lacks: the run cache does not keep the run
    return result


def known_adapter_verdict(
    base: ConfigFile,
    adapter: ConfigFile,
    tensors: Mapping[str, TensorSpec],
    architecture: str | None,
    *,
    model_checks: str,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    shared: Path | None = None,
    notes: list[str] | None = None,
) -> AdapterOutcome | None:
    """The adapter verdict the model-checks mode allows: in "cached" mode only a recorded one (None
    when there is none), else `adapter_verdict` (built on a cache miss)."""
    if model_checks == "cached":
        return cached_adapter_verdict(
            base, adapter, tensors, architecture, cache_dir=cache_dir, shared=shared
        )
    return adapter_verdict(
        base, adapter, tensors, architecture, cache_dir=cache_dir, use_cache=use_cache, notes=notes
    )


def cached_adapter_verdict(
    base: ConfigFile,
    adapter: ConfigFile,
    tensors: Mapping[str, TensorSpec],
    architecture: str | None = None,
    *,
    cache_dir: Path | None = None,
    shared: Path | None = None,
) -> AdapterOutcome | None:
    """The verdict a run with peft recorded for exactly these configs and signature, from any
    versions, or None. Imports none of torch, transformers, peft (the light pre-commit hook).
    `shared` is a folder of verdicts recorded for a team (sdlint/verdicts.py), read after the
    cache."""
    from sdlint.model.cache import VerdictCache, find_recorded

    key = recorded_adapter_key(base, adapter, tensors, architecture)
    return find_recorded(VerdictCache.get_adapter, key, cache_dir, shared)


def recorded_adapter_key(
    base: ConfigFile,
    adapter: ConfigFile,
    tensors: Mapping[str, TensorSpec],
    architecture: str | None,
) -> str:
    """The key of the last adapter verdict built for these inputs, whatever the versions."""
    return adapter_cache_key(base, adapter, tensors, architecture, _ANY_VERSION)


_ANY_VERSION: Mapping[str, str | None] = {
    "transformers": "recorded:any",
    "torch": "recorded:any",
    "peft": "recorded:any",
}


def adapter_cache_key(
    base: ConfigFile,
    adapter: ConfigFile,
    tensors: Mapping[str, TensorSpec],
    architecture: str | None,
    versions: Mapping[str, str | None],
) -> str:
    """Everything an adapter verdict depends on: both configs' bytes, the adapter's signature, the
    base class, and the transformers, torch and peft versions."""
    from sdlint.environment import sha256
    from sdlint.model.cache import cache_key

    return cache_key(
        base.raw,
        tensors,
        architecture,
        transformers_version=versions["transformers"],
        torch_version=versions["torch"],
        extra={
            "kind": "peft-adapter",
            "adapter_config_sha256": sha256(adapter.raw),
            "peft": versions["peft"],
        },
    )


def predict_adapter(
    base: ConfigFile,
    adapter: ConfigFile,
    tensors: Mapping[str, TensorSpec],
    architecture: str | None = None,
) -> AdapterOutcome:
    """What peft reports loading an adapter with `tensors` and `adapter` (adapter_config.json) onto
    the model `base` (its base model's config.json) describes. Never raises on bad input."""
    adapter_object = adapter_document(adapter)
    if isinstance(adapter_object, ConfigProblem):
        return adapter_object
    base_document = config_document(base)
    if isinstance(base_document, ConfigProblem):
        return base_document
    if base_document.get("quantization_config") is not None:
        return ConfigProblem(
            QUANTIZED,
            f"{base.path.name} has a `quantization_config`: quantization replaces the modules an "
            "adapter attaches to, which sdlint does not model, so the adapter checks are skipped.",
        )
    with quiet(), collector_paused():
        imported = import_modules(
            ("torch", "transformers", "peft"),
            checks="adapter checks",
            without="without them the adapter cannot be built on its base model",
            install_hint=INSTALL_HINT,
        )
        if isinstance(imported, ConfigProblem):
            return imported
        torch, transformers, peft = imported
        restore = silence_transformers(transformers)
        try:
            return _predict(
                transformers, torch, peft, base, base_document, adapter, adapter_object,
                tensors, architecture,
            )  # fmt: skip
        finally:
            restore()


_ADAPTER_CONFIG = ConfigKind(
    "a PEFT adapter config",
    "peft_model.save_pretrained(dir)",
    "Save the adapter again with `peft_model.save_pretrained(dir)`.",
)


def adapter_document(adapter: ConfigFile) -> dict[str, Any] | ConfigProblem:
    """adapter_config.json's object, or why peft cannot read it (needs neither peft nor a base)."""
    document = config_document(adapter, _ADAPTER_CONFIG)
    if isinstance(document, ConfigProblem):
        return document
    peft_type = document.get("peft_type")
    if not isinstance(peft_type, str):
        return ConfigProblem(
            INVALID_CONFIG,
            f"{adapter.path.name} has no `peft_type` string: peft cannot tell which adapter it "
            "describes. Regenerate it with `peft_model.save_pretrained(dir)`.",
        )
    return document


def _predict(
    transformers: Any,
    torch: Any,
    peft: Any,
    base: ConfigFile,
    base_document: dict[str, Any],
    adapter: ConfigFile,
    adapter_object: dict[str, Any],
    tensors: Mapping[str, TensorSpec],
    architecture: str | None,
) -> AdapterOutcome:

    # 1. The adapter config, as PeftConfig.from_pretrained reads it.
    try:
        mapping = importlib.import_module("peft.mapping")
        save_and_load = importlib.import_module("peft.utils.save_and_load")
        set_state_dict = save_and_load.set_peft_model_state_dict
        get_state_dict = save_and_load.get_peft_model_state_dict
        find_mismatched = save_and_load._find_mismatched_keys
        prefixes = mapping.PEFT_TYPE_TO_PREFIX_MAPPING
        config_classes = mapping.PEFT_TYPE_TO_CONFIG_MAPPING
        model_classes = importlib.import_module("peft.peft_model")
        peft_model_classes = peft.MODEL_TYPE_TO_PEFT_MODEL_MAPPING
    except (ImportError, AttributeError) as e:
        return ConfigProblem(
            NOT_INSTALLED,
            f"peft {peft.__version__} lacks the loading functions sdlint calls ({e}): sdlint's "
            "adapter checks follow peft 0.21. Install it with `pip install 'peft==0.21.*'`.",
        )
    peft_type = adapter_object["peft_type"]
    config_class = config_classes.get(peft_type)
    if config_class is None:
        return ConfigProblem(
            INVALID_CONFIG,
            f"{adapter.path.name}: peft_type {peft_type!r} is unknown to peft {peft.__version__}. "
            "Fix `peft_type`, or upgrade peft.",
        )
    try:
        document = {k: v for k, v in adapter_object.items() if k != "runtime_config"}
        kwargs = config_class.check_kwargs(**document)
        peft_config = config_class.from_peft_type(**kwargs)
        peft_config.inference_mode = True  # from_pretrained: not is_trainable
    except Exception as e:
        return ConfigProblem(
            INVALID_CONFIG,
            f"{adapter.path.name} is not a valid {config_class.__name__}: "
            f"{describe_exception(e)}. Fix the value in adapter_config.json.",
        )

    # 2. The base model on meta, of the class the model oracle would check the base config with,
    # its config built from the parsed document as the model oracle builds it (the file is not
    # read again).
    from sdlint.model.backends._common import build_config
    from sdlint.model.backends.classes import resolve_class

    resolved = resolve_class(transformers, base_document, architecture)
    if isinstance(resolved, ConfigProblem):
        return resolved
    cls, notes = resolved.cls, resolved.notes
    built = build_config(cls, base_document, base.path.name)
    if isinstance(built, ConfigProblem):
        return built
    model_config, _ = built
    try:
        with torch.device("meta"):
            model = cls(copy.deepcopy(model_config))
    except Exception as e:
        return ConfigProblem(
            CANNOT_INSTANTIATE,
            f"{cls.__name__} cannot be built from {base.path.name}: {describe_exception(e)}.",
        )

    # 3. The adapter injected by peft, as from_pretrained does (the PeftModel class of the task).
    unknown = _unknown_targets(peft, peft_config, model)
    peft_model_class = peft_model_classes.get(peft_config.task_type, model_classes.PeftModel)
    verdict = AdapterVerdict(
        peft_type=str(peft_type),
        task_type=peft_config.task_type if isinstance(peft_config.task_type, str) else None,
        architecture=cls.__name__,
        peft_version=str(peft.__version__),
        transformers_version=str(transformers.__version__),
        unknown_targets=unknown,
        notes=tuple(notes),
    )
    try:
        with torch.device("meta"):
            peft_model = peft_model_class(model, peft_config, ADAPTER_NAME)
    except Exception as e:
        if unknown:  # peft refuses an adapter none of whose targets exist: SD1xx says which
            return _with(verdict, load_error=describe_exception(e))
        return ConfigProblem(
            CANNOT_INSTANTIATE,
            f"peft cannot attach the {peft_type} adapter of {adapter.path.name} to "
            f"{cls.__name__}: {describe_exception(e)}.",
        )

    # 4. peft's own loading on meta tensors of the header shapes.
    file_tensors: dict[str, Any] = {}
    for key in sorted(tensors):
        spec = tensors[key]
        dtype = getattr(torch, TORCH_NAMES.get(spec.dtype, "float32"))  # peft compares shapes
        try:
            file_tensors[key] = torch.empty(spec.shape, dtype=dtype, device="meta")
        except Exception as e:
            return ConfigProblem(
                LOAD_FAILED,
                f"tensor {key!r} cannot be represented by torch (shape {list(spec.shape)}): "
                f"{describe_exception(e)}.",
            )
    # What save_pretrained would write: the expected tensors. Without a base model name, peft does
    # not look the base up (on the Hub, or in a local folder) to see whether the vocabulary was
    # resized; sdlint never downloads, and judges the adapter against the base config it is given.
    peft_model.peft_config[ADAPTER_NAME].base_model_name_or_path = None
    try:
        saved = get_state_dict(peft_model)
    except Exception as e:
        return ConfigProblem(
            CANNOT_INSTANTIATE,
            f"peft cannot list the tensors of the {peft_type} adapter of {adapter.path.name} on "
            f"{cls.__name__}: {describe_exception(e)}.",
        )
    expected = {k: tuple(v.shape) for k, v in saved.items()}
    # A prompt-learning adapter's tensors (`prompt_embeddings`) are loaded into the prompt encoder
    # after `load_state_dict`, whose result still calls them unexpected: they are what peft itself
    # saves, and it loads them. One of another shape makes that load raise a size mismatch, with
    # `ignore_mismatched_sizes=True` too: recorded as a mismatch, and loaded in the shape peft
    # builds so that the rest of the adapter is still judged.
    loaded_apart = set(expected) if getattr(peft_config, "is_prompt_learning", False) else set()
    apart_mismatched = [
        AdapterMismatch(k, k, tuple(file_tensors[k].shape), expected[k], False)
        for k in sorted(loaded_apart & set(file_tensors))
        if tuple(file_tensors[k].shape) != expected[k]
    ]
    for m in apart_mismatched:
        dtype = file_tensors[m.file_key].dtype
        file_tensors[m.file_key] = torch.empty(m.model_shape, dtype=dtype, device="meta")
    captured: dict[str, Any] = {}
    original_load = peft_model.load_state_dict

    def recording_load(
        state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        # What `ignore_mismatched_sizes=True` drops is what `False` raises on: record both ways.
        kept, mismatched = find_mismatched(peft_model, dict(state_dict), True)
        captured["mismatched"] = mismatched
        captured["sources"] = {k: id(v) for k, v in state_dict.items()}
        return original_load(kept, strict=strict, assign=assign)

    def load(state_dict: dict[str, Any]) -> tuple[Any, dict[str, str]]:
        """peft's load result, and the file key each model key came from."""
        file_key_of = {id(t): k for k, t in state_dict.items()}
        result = set_state_dict(peft_model, state_dict, adapter_name=ADAPTER_NAME)
        sources: dict[str, int] = captured.get("sources", {})
        return result, {k: file_key_of[i] for k, i in sources.items() if i in file_key_of}

    peft_model.load_state_dict = recording_load  # this model only: nothing global is patched
    absent: list[str] = []
    load_error: str | None = None
    try:
        _, names = load(dict(saved))  # peft's own renames, learnt on the tensors it would save
        try:
            result, file_keys = load(dict(file_tensors))
        except KeyError as e:
            # A `modules_to_save` tensor the file lacks: peft's load map looks it up and raises.
            load_error = describe_exception(e)
            absent = [k for k in expected if k not in file_tensors]
            filled = dict(file_tensors)
            filled.update({k: torch.empty(expected[k], device="meta") for k in absent})
            result, file_keys = load(filled)
    except Exception as e:
        return _with(verdict, load_error=describe_exception(e))
    finally:
        del peft_model.load_state_dict

    model_shapes = {k: tuple(v.shape) for k, v in peft_model.state_dict().items()}
    prefix = prefixes.get(peft_config.peft_type, "")
    model_key_of = {file_key: model_key for model_key, file_key in names.items()}
    missing = [
        AdapterMissing(k, names.get(k, k), model_shapes.get(k, ()))
        for k in result.missing_keys
        if prefix in k and ADAPTER_NAME in k and not _shared_parameter(k)
    ]
    missing += [AdapterMissing(model_key_of.get(k, k), k, expected[k]) for k in absent]
    unexpected = [
        Unexpected(file_keys.get(k, k), k)
        for k in result.unexpected_keys
        if file_keys.get(k, k) not in loaded_apart and k not in absent
    ]
    mismatched = [
        AdapterMismatch(
            k,
            file_keys.get(k, k),
            tuple(checkpoint_shape),
            tuple(model_shape),
            ".modules_to_save." in k,
        )
        for k, checkpoint_shape, model_shape in captured.get("mismatched", [])
    ]
    mismatched += apart_mismatched
    return _with(
        verdict,
        missing=tuple(sorted(missing, key=lambda m: m.model_key)),
        unexpected=tuple(sorted(unexpected, key=lambda u: (u.model_key, u.file_key))),
        mismatched=tuple(sorted(mismatched, key=lambda m: m.model_key)),
        load_error=load_error,
    )


def _with(verdict: AdapterVerdict, **changes: Any) -> AdapterVerdict:
    return replace(verdict, **changes)


def _unknown_targets(peft: Any, peft_config: Any, model: Any) -> tuple[str, ...]:
    """`target_modules` entries that name no module of the base model, by peft's own matching.

    Only a list of names is checked entry by entry; a regex string (or `all-linear`) is judged by
    peft when it injects the adapter."""
    targets = getattr(peft_config, "target_modules", None)
    if not targets or isinstance(targets, str):
        return ()
    check = importlib.import_module("peft.tuners.tuners_utils").check_target_module_exists
    names = [name for name, _ in model.named_modules() if name]
    unknown = []
    for target in sorted(targets):
        probe = copy.copy(peft_config)
        probe.target_modules = {target}
        for attribute in ("exclude_modules", "modules_to_save", "layers_to_transform"):
            if hasattr(probe, attribute):
                setattr(probe, attribute, None)
        if not any(check(probe, name) for name in names):
            unknown.append(target)
    return tuple(unknown)


def _shared_parameter(key: str) -> bool:
    """Keys PeftModel.from_pretrained leaves out of its missing-key warning (shared parameters)."""
    return "vblora_vector_bank" in key or "prompt_encoder" in key or ".tinylora_v." in key
