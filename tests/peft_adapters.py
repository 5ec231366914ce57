"""Tiny PEFT adapters saved by peft itself onto tiny base models built in code (nothing is
downloaded), and how to read what sdlint sees of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sdlint.model.verdict import TensorSpec
from tests.tiny_models import roberta_config

SEQ_CLS = "RobertaForSequenceClassification"
CAUSAL = "LlamaForCausalLM"
LLAMA: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 64,
    "vocab_size": 128,
    "max_position_embeddings": 64,
}


def save_base(folder: Path, architecture: str = SEQ_CLS, **overrides: Any) -> Path:
    """A tiny base model (weights and config.json) saved into `folder`."""
    import torch
    import transformers

    torch.manual_seed(0)
    if architecture.startswith("Llama"):
        config = transformers.LlamaConfig(**{**LLAMA, **overrides})
    else:
        config = roberta_config(**overrides)
    config.architectures = [architecture]
    getattr(transformers, architecture)(config).save_pretrained(folder)
    return folder


def peft_config(kind: str, **overrides: Any) -> Any:
    """A peft config of `kind`: lora, dora, ia3, adalora (classification) or lora-causal."""
    import peft

    if kind == "lora":
        settings: dict[str, Any] = {
            "task_type": "SEQ_CLS",
            "r": 4,
            "target_modules": ["query", "value"],
        }
        return peft.LoraConfig(**{**settings, **overrides})
    if kind == "dora":
        settings = {
            "task_type": "SEQ_CLS",
            "r": 4,
            "target_modules": ["query", "value"],
            "use_dora": True,
        }
        return peft.LoraConfig(**{**settings, **overrides})
    if kind == "ia3":
        settings = {
            "task_type": "SEQ_CLS",
            "target_modules": ["key", "value", "output.dense"],
            "feedforward_modules": ["output.dense"],
        }
        return peft.IA3Config(**{**settings, **overrides})
    if kind == "adalora":
        settings = {
            "task_type": "SEQ_CLS",
            "init_r": 6,
            "target_r": 3,
            "target_modules": ["query", "value"],
            "total_step": 10,
        }
        return peft.AdaLoraConfig(**{**settings, **overrides})
    if kind == "lora-causal":
        settings = {"task_type": "CAUSAL_LM", "r": 4, "target_modules": ["q_proj", "v_proj"]}
        return peft.LoraConfig(**{**settings, **overrides})
    raise ValueError(kind)


def save_adapter(folder: Path, base: Path, config: Any, architecture: str = SEQ_CLS) -> Path:
    """Wrap the saved base model with peft and save the adapter into `folder`."""
    import peft
    import torch
    import transformers

    torch.manual_seed(1)
    model = getattr(transformers, architecture).from_pretrained(base)
    wrapped = peft.get_peft_model(model, config)
    # Non-zero adapter weights, as after training (LoRA's B starts at zero).
    with torch.no_grad():
        for parameter in wrapped.parameters():
            if parameter.requires_grad:
                parameter.add_(0.01)
    wrapped.save_pretrained(folder)
    return folder


def signature(folder: Path) -> dict[str, TensorSpec]:
    """The adapter's tensors as its safetensors header gives them."""
    from safetensors import safe_open

    out = {}
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
        for key in f.keys():  # a safe_open handle is not iterable
            tensor = f.get_slice(key)
            out[key] = TensorSpec(tensor.get_dtype(), tuple(tensor.get_shape()))
    return out


def edit_adapter_config(folder: Path, **changes: Any) -> None:
    path = folder / "adapter_config.json"
    document = json.loads(path.read_text())
    document.update(changes)
    path.write_text(json.dumps(document, indent=2))
