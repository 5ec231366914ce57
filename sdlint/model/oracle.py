"""Predict what transformers' `from_pretrained` reports for a checkpoint, from its headers alone.

`predict_load` answers: which keys would be MISSING, UNEXPECTED or MISMATCHED (and which converter
would fail) if `cls.from_pretrained(dir, output_loading_info=True, ignore_mismatched_sizes=True)`
loaded a checkpoint with these tensor names, dtypes and shapes. It builds the model on the meta
device and runs transformers' own key matching on empty meta tensors, so no tensor data is read
and the answer is transformers' answer (design doc §10; the differential tests hold it to that).

This module and the backend it picks are the only places sdlint imports torch or transformers,
lazily inside functions: importing them costs seconds, and a warm cache needs neither.

Safety: no Auto class is used, so no repository code is ever executed (R32); a config that needs
it is reported, never loaded. Nothing is downloaded (`local_files_only`). While transformers runs,
stdout is captured (sdlint prints JSON there), stdin is empty (nothing can wait for a prompt), and
transformers' logging, progress bars and Python warnings are silenced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sdlint.config_fields import CONFIG_NAME, NOT_JSON, NOT_OBJECT, ConfigFile
from sdlint.model._text import describe_exception
from sdlint.model.backends import select
from sdlint.model.verdict import (
    NOT_INSTALLED,
    QUANTIZED,
    UNREADABLE_CONFIG,
    ConfigProblem,
    LoadVerdict,
    Outcome,
    TensorSpec,
    WrapperPrefix,
)
from sdlint.sources import remote_location

INSTALL_HINT = "pip install 'sdlint[model]'"

# A wrapper prefix (SD106) is suspected when at least this share of the file keys is unexpected
# and carries one common leading component; it is confirmed when stripping that component lets at
# least `_WRAPPER_LOADED` of the file keys load. A `base_model_prefix` difference never gets here:
# transformers resolves it itself, so those checkpoints are not mostly unexpected.
_WRAPPER_SUSPECT = 0.9
_WRAPPER_LOADED = 0.5
_WRAPPER_MAX_DEPTH = 3  # `module._orig_mod.` is two; more is not a wrapper


def predict_load(
    config: ConfigFile, tensors: Mapping[str, TensorSpec], architecture: str | None = None
) -> Outcome:
    """What `from_pretrained` would report for a checkpoint with `tensors` and this config.json.

    `config` is the config.json as the read stage read it (sdlint/config_fields.py). `tensors` is
    the checkpoint's merged signature (for shards, the later shard's copy of a duplicated key,
    R1-R4: the caller decides). `architecture` names the model class; by default it is the
    config's `architectures[0]`. Never raises on bad input: a config that cannot give a model is a
    ConfigProblem.
    """
    document = _config_document(config)
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
    with _quiet():
        imported = _import_transformers()
        if isinstance(imported, ConfigProblem):
            return imported
        transformers, torch = imported
        restore = _silence_transformers(transformers)
        try:
            with _local_copy(config) as config_path:
                return _predict(transformers, torch, config_path, document, tensors, architecture)
        finally:
            restore()


@contextlib.contextmanager
def _local_copy(config: ConfigFile) -> Iterator[Path]:
    """A path transformers can read the config from: the file itself, or for a remote config (a
    URL or hf:// path, sdlint/sources/remote.py) the bytes the read stage fetched, in a temporary
    folder (transformers would otherwise take the path for a hub repository id)."""
    if remote_location(config.path) is None:
        yield config.path
        return
    with tempfile.TemporaryDirectory(prefix="sdlint-config-") as tmp:
        path = Path(tmp) / CONFIG_NAME
        path.write_bytes(config.raw)
        yield path


def _predict(
    transformers: Any,
    torch: Any,
    config_path: Path,
    config: dict[str, Any],
    tensors: Mapping[str, TensorSpec],
    architecture: str | None,
) -> Outcome:
    backend = select(transformers, torch)
    if isinstance(backend, ConfigProblem):
        return backend
    model_class = backend.resolve_class(config, architecture)
    if isinstance(model_class, ConfigProblem):
        return model_class

    def run(signature: Mapping[str, TensorSpec]) -> Outcome:
        return backend.predict(model_class, config, config_path.name, signature)

    verdict = run(tensors)
    if not isinstance(verdict, LoadVerdict):
        return verdict
    wrapper = _find_wrapper_prefix(verdict, tensors, run)
    if wrapper is None:
        return verdict
    return dataclasses.replace(verdict, wrapper_prefix=wrapper)


def _config_document(config: ConfigFile) -> dict[str, Any] | ConfigProblem:
    if config.document is not None:
        return config.document
    if config.problem == NOT_JSON:
        return ConfigProblem(
            UNREADABLE_CONFIG,
            f"{config.path.name} is not valid JSON: {config.reason}. Fix or regenerate it "
            "(`model.config.save_pretrained(dir)`).",
        )
    if config.problem == NOT_OBJECT:
        return ConfigProblem(
            UNREADABLE_CONFIG,
            f"{config.path.name} is a JSON {config.reason}, not an object: "
            "a transformers config is an object of settings. Fix or regenerate it.",
        )
    return ConfigProblem(
        UNREADABLE_CONFIG,
        f"{config.display} cannot be read ({config.reason}). "
        "Put the model's config.json next to the weights, or pass --model-config.",
    )


def _import_transformers() -> tuple[Any, Any] | ConfigProblem:
    try:
        # import_module, not `import`: the type checker sees Any instead of analysing torch.
        torch = importlib.import_module("torch")
        transformers = importlib.import_module("transformers")
    except ImportError as e:
        return ConfigProblem(
            NOT_INSTALLED,
            f"the model checks need torch and transformers, which are not installed ({e}): "
            f"without them the config cannot be built. Install them with `{INSTALL_HINT}`.",
        )
    except Exception as e:  # a broken install raises anything at import time
        return ConfigProblem(
            NOT_INSTALLED,
            f"torch or transformers fails to import ({describe_exception(e)}): the model "
            f"checks need both. Reinstall them with `{INSTALL_HINT}`.",
        )
    return transformers, torch


# ---------------------------------------------------------------------------------------------
# SD106: a wrapper prefix transformers does not strip (R13).


def _find_wrapper_prefix(
    verdict: LoadVerdict,
    tensors: Mapping[str, TensorSpec],
    run: Callable[[Mapping[str, TensorSpec]], Outcome],
) -> WrapperPrefix | None:
    """The shortest run of common leading components whose removal makes the checkpoint load.

    Tried one component at a time, then two (`module._orig_mod.`: stripping `module.` alone
    loads nothing), up to `_WRAPPER_MAX_DEPTH`.
    """
    before = _loaded(verdict, tensors)
    if before > (1 - _WRAPPER_SUSPECT) * len(tensors):
        return None
    components: list[str] = []
    current: Mapping[str, TensorSpec] = tensors
    for _ in range(_WRAPPER_MAX_DEPTH):
        component = _common_component(current)
        if component is None:
            return None
        components.append(component)
        prefix = "".join(c + "." for c in components)
        current = _strip(tensors, prefix)
        stripped_verdict = run(current)
        if not isinstance(stripped_verdict, LoadVerdict):
            return None
        loaded = _loaded(stripped_verdict, current)
        if loaded >= _WRAPPER_LOADED * len(current) and loaded > before:
            keys = sum(1 for k in tensors if k.startswith(prefix))
            return WrapperPrefix(prefix, keys, stripped_verdict)
    return None


def _loaded(verdict: LoadVerdict, tensors: Mapping[str, TensorSpec]) -> int:
    """File keys that went somewhere: neither unexpected nor dropped as a duplicate."""
    lost = {u.file_key for u in verdict.unexpected} | {s.file_key for s in verdict.shadowed}
    return sum(1 for k in tensors if k not in lost)


def _common_component(tensors: Mapping[str, TensorSpec]) -> str | None:
    counts = Counter(k.split(".", 1)[0] for k in tensors if "." in k)
    if not counts:
        return None
    component, count = counts.most_common(1)[0]
    return component if component and count >= _WRAPPER_SUSPECT * len(tensors) else None


def _strip(tensors: Mapping[str, TensorSpec], prefix: str) -> dict[str, TensorSpec]:
    # Unprefixed keys first, so a stripped key replaces an unprefixed one of the same name, as
    # renaming the keys in the file (the fix) would.
    out = {k: v for k, v in tensors.items() if not k.startswith(prefix)}
    out.update({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    return out


# ---------------------------------------------------------------------------------------------
# Keeping transformers quiet.


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Capture stdout, empty stdin and ignore warnings while transformers runs."""
    saved_stdin = sys.stdin
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        sys.stdin = io.StringIO()  # an `input()` prompt reads EOF instead of waiting
        try:
            yield
        finally:
            sys.stdin = saved_stdin


def _silence_transformers(transformers: Any) -> Callable[[], None]:
    """Turn off transformers' logging and progress bars; return what restores them."""
    try:
        tlogging = transformers.utils.logging
        verbosity = tlogging.get_verbosity()
        bars = tlogging.is_progress_bar_enabled()
        tlogging.set_verbosity(60)  # above CRITICAL: the oracle reports everything itself
        tlogging.disable_progress_bar()
    except Exception:  # logging helpers moved: stdout is captured anyway
        return lambda: None

    def restore() -> None:
        tlogging.set_verbosity(verbosity)
        if bars:
            tlogging.enable_progress_bar()

    return restore
