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
import difflib
import importlib
import io
import re
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sdlint.config_fields import CONFIG_NAME, NOT_JSON, NOT_OBJECT, ConfigFile
from sdlint.model._text import describe_exception, missing_package
from sdlint.model.verdict import (
    INVALID_CONFIG,
    MISSING_DEPENDENCY,
    NOT_INSTALLED,
    QUANTIZED,
    REMOTE_CODE,
    UNKNOWN_ARCHITECTURE,
    UNKNOWN_MODEL_TYPE,
    UNREADABLE_CONFIG,
    UNSUPPORTED_VERSION,
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

# transformers' backend names (utils/import_utils.py BACKENDS_MAPPING) that are not pip names.
_PIP_NAMES = {
    "vision": "Pillow",
    "audio": "librosa",
    "speech": "torchaudio",
    "cv2": "opencv-python",
    "sklearn": "scikit-learn",
    "levenshtein": "Levenshtein",
    "bs4": "beautifulsoup4",
    "jinja": "jinja2",
}

_TASK_SUFFIX = re.compile(r"(For[A-Z]\w*|LMHeadModel|Model)$")

Backend = Callable[..., Outcome]


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
    backend = _backend(str(transformers.__version__))
    if isinstance(backend, ConfigProblem):
        return backend
    resolved = _resolve_class(transformers, config, architecture)
    if isinstance(resolved, ConfigProblem):
        return resolved
    cls, source, notes = resolved

    def run(signature: Mapping[str, TensorSpec]) -> Outcome:
        return backend(
            transformers,
            torch,
            cls,
            config_path,
            signature,
            architecture_source=source,
            notes=notes,
        )

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


def _backend(version: str) -> Backend | ConfigProblem:
    """The implementation of the loading calls for this transformers version."""
    major = version.split(".", 1)[0]
    if major == "5":
        from sdlint.model import _transformers_v5

        return _transformers_v5.predict
    # A 4.x backend would reproduce `_load_pretrained_model` of 4.57 (design doc §11).
    return ConfigProblem(
        UNSUPPORTED_VERSION,
        f"transformers {version} is not supported: sdlint's model checks reproduce the loading "
        "code of transformers 5.x (tested with 5.24), and older versions decide keys differently. "
        f"Install transformers 5 (`{INSTALL_HINT}`).",
    )


def _resolve_class(
    transformers: Any, config: Mapping[str, Any], architecture: str | None
) -> tuple[Any, str, tuple[str, ...]] | ConfigProblem:
    """The model class from_pretrained would be called on, where its name came from, and notes.

    Order (R31-R33): the caller's `architecture`; else the config's `architectures[0]` when
    transformers exports it; else, when the config names no architecture, the base model class
    for its `model_type`. Remote code is detected, never run (R32).
    """
    version = transformers.__version__
    model_type = config.get("model_type")
    auto_map = config.get("auto_map")
    if model_type is not None and not isinstance(model_type, str):
        return ConfigProblem(
            INVALID_CONFIG,
            f"`model_type` in config.json is a {type(model_type).__name__}, not a string: "
            "transformers cannot pick a config class. Fix `model_type`.",
        )
    notes: list[str] = []

    if architecture is not None:
        cls = _exported_model_class(transformers, architecture)
        if isinstance(cls, ConfigProblem):
            return cls
        if cls is None:
            return ConfigProblem(
                UNKNOWN_ARCHITECTURE,
                f"`{architecture}` is not a model class of transformers {version}"
                f"{_did_you_mean(transformers, architecture)}: there is no model to check "
                "against. Pass a transformers model class name such as "
                "`RobertaForSequenceClassification`.",
            )
        return cls, "argument", ()

    if model_type and model_type not in transformers.CONFIG_MAPPING:
        if auto_map:
            return ConfigProblem(
                REMOTE_CODE,
                f"model_type {model_type!r} is not part of transformers {version} and config.json "
                "has an `auto_map`: the model's code lives in its repository, and sdlint never "
                "runs repository code. Check it against a transformers class with the same "
                "layout (--architecture), or skip the model checks for it.",
            )
        return ConfigProblem(
            UNKNOWN_MODEL_TYPE,
            f"model_type {model_type!r} is unknown to transformers {version}: no config class "
            "can read it. Fix `model_type`, upgrade transformers, or pass --architecture.",
        )

    architectures = config.get("architectures")
    if architectures is not None and not (
        isinstance(architectures, list) and all(isinstance(a, str) for a in architectures)
    ):
        return ConfigProblem(
            INVALID_CONFIG,
            "`architectures` in config.json is not a list of class names: transformers cannot "
            'tell which model it describes. Write it as `["RobertaForSequenceClassification"]`.',
        )
    if architectures:
        name = architectures[0]
        cls = _exported_model_class(transformers, name)
        if isinstance(cls, ConfigProblem):
            return cls
        if cls is not None:
            if auto_map:
                notes.append(
                    f"config.json has an `auto_map`, but {name} is a transformers class: "
                    f"from_pretrained uses the native {name} unless trust_remote_code=True, "
                    "which would load the repository's own code (possibly with other keys). "
                    f"Checked against the native {name}."
                )
            return cls, "config", tuple(notes)
        if auto_map:
            return ConfigProblem(
                REMOTE_CODE,
                f"architectures[0] {name!r} is not a transformers class and config.json has an "
                "`auto_map`: the model's code lives in its repository, and sdlint never runs "
                "repository code. Pass --architecture with a transformers class of the same "
                "layout, or skip the model checks for it.",
            )
        same_task = _same_task_class(transformers, model_type, name)
        if same_task is not None:
            notes.append(
                f"architectures[0] {name!r} is not a transformers {version} class; checked "
                f"against {same_task.__name__}, the class for model_type {model_type!r} with "
                "the same task."
            )
            return same_task, "config-task", tuple(notes)
        return ConfigProblem(
            UNKNOWN_ARCHITECTURE,
            f"architectures[0] {name!r} is not a model class of transformers {version}"
            f"{_did_you_mean(transformers, name)}: there is no model to check against. Fix "
            "`architectures` in config.json or pass --architecture.",
        )

    if not model_type:
        return ConfigProblem(
            UNKNOWN_MODEL_TYPE,
            "config.json has neither `architectures` nor `model_type`: nothing says which model "
            "it describes. Add them (`model.config.save_pretrained(dir)` writes both) or pass "
            "--architecture.",
        )
    base_name = _modeling_auto().MODEL_MAPPING_NAMES.get(model_type)
    if isinstance(base_name, (tuple, list)):  # R31: no architectures to choose with, so the first
        base_name = base_name[0] if base_name else None
    cls = _exported_model_class(transformers, base_name) if isinstance(base_name, str) else None
    if isinstance(cls, ConfigProblem):
        return cls
    if cls is None:
        return ConfigProblem(
            UNKNOWN_ARCHITECTURE,
            f"config.json has no `architectures`, and transformers {version} has no base model "
            f"class for model_type {model_type!r}: there is no model to check against. Add "
            "`architectures` to config.json or pass --architecture.",
        )
    notes.append(
        f"config.json has no `architectures`; checked against {cls.__name__}, the base model "
        f"class for model_type {model_type!r}. Pass --architecture to check a task head."
    )
    return cls, "model_type", tuple(notes)


def _exported_model_class(transformers: Any, name: str) -> Any | ConfigProblem | None:
    """`transformers.<name>` when it is a model class (R31: lazy, imports only that model)."""
    if not name.isidentifier():
        return None
    try:
        obj = getattr(transformers, name, None)
    except ImportError as e:
        package = missing_package(e)
        return ConfigProblem(
            MISSING_DEPENDENCY,
            f"transformers cannot import {name}: it needs "
            f"{f'the package `{package}`' if package else 'an optional package'} "
            f"({describe_exception(e)}). Install it to check this checkpoint.",
        )
    except Exception as e:  # a model module that fails to import for another reason
        return ConfigProblem(
            MISSING_DEPENDENCY,
            f"transformers cannot import {name} ({describe_exception(e)}): its module fails to "
            "load in this environment. Fix the installation, or pass another --architecture.",
        )
    if isinstance(obj, type) and issubclass(obj, transformers.PreTrainedModel):
        return obj
    # A class whose optional backend is missing is exported as a placeholder (metaclass
    # `DummyObject`) that raises on any use; `_backends` names what it needs.
    backends = getattr(obj, "_backends", None) if getattr(obj, "is_dummy", False) else None
    if backends:
        packages = [_PIP_NAMES.get(b, b) for b in backends]
        return ConfigProblem(
            MISSING_DEPENDENCY,
            f"transformers cannot build {name}: it needs "
            f"{', '.join(f'`{p}`' for p in packages)}, which is not installed. "
            f"Install it (`pip install {' '.join(packages)}`) to check this checkpoint.",
        )
    return None


def _same_task_class(transformers: Any, model_type: Any, name: str) -> Any | None:
    """The one class for `model_type` whose task suffix equals `name`'s (`ForCausalLM`, ...)."""
    if not isinstance(model_type, str):
        return None
    match = _TASK_SUFFIX.search(name)
    if match is None:
        return None
    candidates: set[str] = set()
    for attribute, mapping in vars(_modeling_auto()).items():
        if not (attribute.startswith("MODEL_") and attribute.endswith("_MAPPING_NAMES")):
            continue
        if not isinstance(mapping, Mapping):
            continue
        value = mapping.get(model_type)
        for candidate in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(candidate, str):
                found = _TASK_SUFFIX.search(candidate)
                if found is not None and found.group(1) == match.group(1):
                    candidates.add(candidate)
    if len(candidates) != 1:
        return None
    cls = _exported_model_class(transformers, candidates.pop())
    return None if isinstance(cls, ConfigProblem) else cls


def _modeling_auto() -> Any:
    """The auto mappings' name tables (class names only: importing it imports no model)."""
    return importlib.import_module("transformers.models.auto.modeling_auto")


def _did_you_mean(transformers: Any, name: str) -> str:
    try:
        names = [n for n in dir(transformers) if n[:1].isupper()]
    except Exception:  # a lazy module's __dir__ is not ours to trust
        return ""
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.85)
    return f" (did you mean `{close[0]}`?)" if close else ""


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
