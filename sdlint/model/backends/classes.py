"""Which model class `from_pretrained` would be called on, from config.json (R31-R33).

Shared by the backends: it reads only what every transformers version since 4.54 exports
(`CONFIG_MAPPING`, the auto mappings' class names, lazily imported model classes). Remote code is
detected, never run (R32): no Auto class is used.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Mapping
from typing import Any

from sdlint.model._text import describe_exception, missing_package
from sdlint.model.verdict import (
    INVALID_CONFIG,
    MISSING_DEPENDENCY,
    REMOTE_CODE,
    UNKNOWN_ARCHITECTURE,
    UNKNOWN_MODEL_TYPE,
    ConfigProblem,
)
from sdlint.record import record

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


@record
class ModelClass:
    """The class from_pretrained would be called on, where its name came from, and notes."""

    cls: Any
    source: str  # a `LoadVerdict.architecture_source` value
    notes: tuple[str, ...] = ()


def resolve_class(
    transformers: Any, config: Mapping[str, Any], architecture: str | None
) -> ModelClass | ConfigProblem:
    """The model class from_pretrained would be called on, where its name came from, and notes.

    Order (R31-R33): the caller's `architecture`; else the config's `architectures[0]` when
    transformers exports it, whatever `model_type` says (from_pretrained on that class reads the
    config with the class's own config class); else, when the config names no architecture, the
    base model class for its `model_type`. Remote code is detected, never run (R32).
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
        return ModelClass(cls, "argument")

    architectures = config.get("architectures")
    if architectures is not None and not (
        isinstance(architectures, list) and all(isinstance(a, str) for a in architectures)
    ):
        return ConfigProblem(
            INVALID_CONFIG,
            "`architectures` in config.json is not a list of class names: transformers cannot "
            'tell which model it describes. Write it as `["RobertaForSequenceClassification"]`.',
        )
    known_type = not model_type or model_type in transformers.CONFIG_MAPPING
    name = architectures[0] if architectures else None
    # An exported architectures[0] first: from_pretrained on that class reads config.json with
    # the class's own config class whatever `model_type` says (R9), so a model_type this version
    # lacks (4.57 saves `emu3_text_model` for Emu3ForCausalLM) does not stop it.
    if name is not None:
        cls = _exported_model_class(transformers, name)
        if isinstance(cls, ConfigProblem):
            return cls
        if cls is not None:
            if not known_type:
                notes.append(
                    f"model_type {model_type!r} is unknown to transformers {version}, but "
                    f"from_pretrained on {name} reads config.json with {name}'s own config "
                    f"class all the same; checked against {name}."
                )
            if auto_map:
                notes.append(
                    f"config.json has an `auto_map`, but {name} is a transformers class: "
                    f"from_pretrained uses the native {name} unless trust_remote_code=True, "
                    "which would load the repository's own code (possibly with other keys). "
                    f"Checked against the native {name}."
                )
            return ModelClass(cls, "config", tuple(notes))

    if not known_type:
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

    if name is not None:
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
            return ModelClass(same_task, "config-task", tuple(notes))
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
    return ModelClass(cls, "model_type", tuple(notes))


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
