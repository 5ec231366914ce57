"""Tiny transformers checkpoints built in code (nothing is downloaded), and edits of them."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

TINY_ROBERTA: dict[str, Any] = {
    "vocab_size": 120,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 66,
}


def roberta_config(**overrides: Any) -> Any:
    from transformers import RobertaConfig

    settings: dict[str, Any] = {**TINY_ROBERTA, **overrides}
    return RobertaConfig(**settings)


def save_roberta(
    folder: Path,
    architecture: str = "RobertaForSequenceClassification",
    *,
    variant: str | None = None,
    max_shard_size: str | None = None,
    **overrides: Any,
) -> Path:
    """Save a tiny RoBERTa of `architecture` (with its config) into `folder`; `variant` and
    `max_shard_size` as `save_pretrained` takes them (`model.fp16-00001-of-00007.safetensors`)."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = roberta_config(**overrides)
    config.architectures = [architecture]
    saving: dict[str, Any] = {"variant": variant}
    if max_shard_size is not None:
        saving["max_shard_size"] = max_shard_size
    getattr(transformers, architecture)(config).save_pretrained(folder, **saving)
    return folder


def save_config(
    folder: Path, architecture: str = "RobertaForSequenceClassification", **overrides: Any
) -> Path:
    config = roberta_config(**overrides)
    config.architectures = [architecture]
    config.save_pretrained(folder)
    return folder / "config.json"


def edit_weights(path: Path, edit: Callable[[dict[str, Any]], Mapping[str, Any]]) -> None:
    """Rewrite a safetensors file through `edit(tensors) -> tensors` (small test files only)."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    save_file(dict(edit(tensors)), str(path), metadata={"format": "pt"})


def edit_config(path: Path, **changes: Any) -> None:
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config, indent=2))
