"""Predict what transformers' `from_pretrained` reports for a checkpoint, from its headers alone.

`predict_load` answers: which keys would be MISSING, UNEXPECTED or MISMATCHED (and which converter
would fail) if `cls.from_pretrained(dir, output_loading_info=True, ignore_mismatched_sizes=True)`
loaded a checkpoint with these tensor names, dtypes and shapes. It builds the model on the meta
device and runs transformers' own key matching on empty meta tensors, so no tensor data is read
and the answer is transformers' answer (design doc §10; the differential tests hold it to that).

This module and the backend it picks (and peft.py, for adapters) are the only places sdlint
imports torch or transformers, lazily inside functions (`runtime.import_modules`): importing them
costs seconds, and a warm cache needs neither.

Safety: no Auto class is used, so no repository code is ever executed (R32); a config that needs
it is reported, never loaded. Nothing is downloaded (`local_files_only`). While transformers runs,
stdout is captured (sdlint prints JSON there), stdin is empty (nothing can wait for a prompt), and
transformers' logging, progress bars and Python warnings are silenced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sdlint import wrappers
from sdlint.config_fields import ConfigFile
from sdlint.model.backends import select
from sdlint.model.runtime import (
    collector_paused,
    config_document,
    import_modules,
    local_copy,
    quiet,
    silence_transformers,
)
from sdlint.model.verdict import (
    QUANTIZED,
    ConfigProblem,
    LoadVerdict,
    Outcome,
    TensorSpec,
    WrapperPrefix,
)
from sdlint.record import replace

INSTALL_HINT = "pip install 'sdlint[model]'"


def predict_load(
    config: ConfigFile,
    tensors: Mapping[str, TensorSpec],
    architecture: str | None = None,
    *,
    index_keys: Sequence[str] | None = None,
) -> Outcome:
    """What `from_pretrained` would report for a checkpoint with `tensors` and this config.json.

    `config` is the config.json as the read stage read it (sdlint/config_fields.py). `tensors` is
    the checkpoint's merged signature (for shards, the later shard's copy of a duplicated key,
    R1-R4: the caller decides). `architecture` names the model class; by default it is the
    config's `architectures[0]`. `index_keys`: a shard index's `weight_map` keys where they differ
    from the shards' (transformers 4.x loads by them). Never raises on bad input: a config that
    cannot give a model is a ConfigProblem.
    """
    document = config_document(config)
    if isinstance(document, ConfigProblem):
        return document
    quantization = document.get("quantization_config")
    if quantization is not None:
        method = quantization.get("quant_method") if isinstance(quantization, dict) else None
        return ConfigProblem(
            QUANTIZED,
            f"{config.path.name} has a `quantization_config`"
            f"{f' ({method})' if isinstance(method, str) else ''}: quantization replaces modules "
            "and their keys, which sdlint does not model, so the key checks (SD101-SD104, SD106) "
            "are skipped. Check the checkpoint with the quantization library that wrote it.",
        )
    with quiet(), collector_paused():
        imported = import_modules(
            ("torch", "transformers"),
            checks="model checks",
            without="without them the config cannot be built",
            install_hint=INSTALL_HINT,
        )
        if isinstance(imported, ConfigProblem):
            return imported
        torch, transformers = imported
        restore = silence_transformers(transformers)
        try:
            with local_copy(config) as config_path:
                return _predict(
                    transformers, torch, config_path, document, tensors, architecture, index_keys
                )
        finally:
            restore()


def _predict(
    transformers: Any,
    torch: Any,
    config_path: Path,
    config: dict[str, Any],
    tensors: Mapping[str, TensorSpec],
    architecture: str | None,
    index_keys: Sequence[str] | None,
) -> Outcome:
    backend = select(transformers, torch)
    if isinstance(backend, ConfigProblem):
        return backend
    model_class = backend.resolve_class(config, architecture)
    if isinstance(model_class, ConfigProblem):
        return model_class

    def run(signature: Mapping[str, TensorSpec], stripped: str = "") -> Outcome:
        keys = None if index_keys is None else [_strip_key(k, stripped) for k in index_keys]
        return backend.predict(model_class, config, config_path.name, signature, keys)

    verdict = run(tensors)
    if not isinstance(verdict, LoadVerdict):
        return verdict
    wrapper = _find_wrapper_prefix(verdict, tensors, run)
    if wrapper is None:
        return verdict
    return replace(verdict, wrapper_prefix=wrapper)


# ---------------------------------------------------------------------------------------------
# SD106: a wrapper prefix transformers does not strip (R13).


def _find_wrapper_prefix(
    verdict: LoadVerdict,
    tensors: Mapping[str, TensorSpec],
    run: Callable[[Mapping[str, TensorSpec], str], Outcome],
) -> WrapperPrefix | None:
    """The shortest run of common leading components whose removal makes the checkpoint load.

    Tried one component at a time, then two (`module._orig_mod.`: stripping `module.` alone
    loads nothing), up to `wrappers.MAX_DEPTH`; the policy is sdlint/wrappers.py's.
    """
    before = _loaded(verdict, tensors)
    if before > (1 - wrappers.SUSPECT) * len(tensors):
        return None
    components: list[str] = []
    current: Mapping[str, TensorSpec] = tensors
    for _ in range(wrappers.MAX_DEPTH):
        component = wrappers.common_component(current)
        if component is None:
            return None
        components.append(component)
        prefix = "".join(c + "." for c in components)
        current = wrappers.strip(tensors, prefix)
        stripped_verdict = run(current, prefix)
        if not isinstance(stripped_verdict, LoadVerdict):
            return None
        loaded = _loaded(stripped_verdict, current)
        if loaded >= wrappers.LOADED * len(current) and loaded > before:
            keys = sum(1 for k in tensors if k.startswith(prefix))
            return WrapperPrefix(prefix, keys, stripped_verdict)
    return None


def _loaded(verdict: LoadVerdict, tensors: Mapping[str, TensorSpec]) -> int:
    """File keys that went somewhere: neither unexpected nor dropped as a duplicate."""
    lost = {u.file_key for u in verdict.unexpected} | {s.file_key for s in verdict.shadowed}
    return sum(1 for k in tensors if k not in lost)


def _strip_key(key: str, prefix: str) -> str:
    return key[len(prefix) :] if prefix and key.startswith(prefix) else key
