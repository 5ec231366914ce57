"""Which library a checkpoint folder belongs to, when it is not transformers.

Only a config transformers would load drives the model rules (SD101-SD107). Other libraries write a
`config.json` too (diffusers models, sentence-transformers modules, timm) or save adapters beside a
base model's config (PEFT); checking their weights against it would report every key. For those
the integrity rules run and the model checks are skipped with a note. Recognised from the files
the libraries themselves write, without importing them:

- diffusers: a model's `config.json` carries `_class_name` and `_diffusers_version`; a pipeline
  folder's `model_index.json` names each component folder's library (`"unet": ["diffusers",
  "UNet2DConditionModel"]`, `"text_encoder": ["transformers", "CLIPTextModel"]`), so a transformers
  component of a pipeline is still checked.
- sentence-transformers: `modules.json` lists the modules and their folders; the Transformer module
  (the folder itself) is a transformers model, the others (`2_Dense`, ...) are not.
- timm: `config.json` names the model in `architecture` (singular) with `num_classes` or
  `pretrained_cfg`, and has neither `architectures` nor `model_type`.

A PEFT adapter (`adapter_model.safetensors`) is recognised by the read stage
(`Checkpoint.is_adapter`) and checked against its base model by peft (sdlint/adapter.py).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping

from sdlint.sources import Folder, ReadError
from sdlint.sources.local import LocalFolder

TYPE_CHECKING = False  # typing is not imported at run time (a check has no use for it)
if TYPE_CHECKING:
    from typing import Any

MODEL_INDEX = "model_index.json"
MODULES = "modules.json"
_TRANSFORMER_MODULE = "sentence_transformers.models.Transformer"


def foreign_config(config: Mapping[str, Any]) -> str | None:
    """What other library wrote this config.json, in words (None: none recognised)."""
    if "_diffusers_version" in config or "_class_name" in config:
        name = config.get("_class_name")
        return f"a diffusers config ({name})" if isinstance(name, str) else "a diffusers config"
    if "architectures" in config or "model_type" in config:
        return None
    architecture = config.get("architecture")
    if isinstance(architecture, str) and ("num_classes" in config or "pretrained_cfg" in config):
        return f"a timm config ({architecture})"
    return None


def foreign_folder(folder: Folder, read: dict[Any, Any] | None = None) -> str | None:
    """What other library the checkpoint in `folder` belongs to, from the files beside the folder
    (None: none recognised, or transformers); the same for a local folder and a hub repository's.
    `read` keeps the files read for the next folder of the same run."""
    above = folder.parent()
    if above is None:
        return None
    parent, name = above
    memo: dict[Any, Any] = {} if read is None else read
    # The 200 checkpoint folders of a tree share a parent: its two files, read once, are looked up
    # by the parent's path (a local one as a str: a new Path hashes slowly).
    ident: Any = (
        os.fspath(parent.path) if isinstance(parent, LocalFolder) else parent.file(MODEL_INDEX).ref
    )
    documents = memo.get(ident)
    if documents is None:
        documents = memo[ident] = (_json(parent, MODEL_INDEX), _json(parent, MODULES))
    index, modules = documents
    if isinstance(index, dict):
        entry = index.get(name)
        if isinstance(entry, list) and len(entry) == 2 and entry[0] != "transformers":
            return f"part of a diffusers pipeline ({entry[0]} {entry[1]})"
    if isinstance(modules, list):
        for module in modules:
            if (
                isinstance(module, dict)
                and module.get("path") == name
                and module.get("type") != _TRANSFORMER_MODULE
            ):
                kind = str(module.get("type", "")).rpartition(".")[2] or "a"
                return f"a sentence-transformers {kind} module"
    return None


def _json(folder: Folder, name: str) -> Any:
    """`name` in `folder` parsed, or None when it is not there or not JSON."""
    if folder.is_file(name):
        with contextlib.suppress(ReadError, ValueError, RecursionError):
            return json.loads(folder.file(name).read_bounded())
    return None
