"""Regenerate the bundled examples: a tiny RoBERTa fine-tuned for 2 labels, and a 5-label one whose
config a user might load the first into (the canonical head-size mismatch, SD101; and the two
checkpoints `sdlint diff` compares in the README); and a LoRA fine-tune of the 2-label one saved by
peft (its `modules_to_save` head has 2 labels: SD101 in adapter form against the 5-label config).

    .venv/bin/python examples/make_examples.py

The weights are random and tiny (hidden size 32), so the files stay small; the shapes are what
matters to sdlint, which reads headers only.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import RobertaConfig, RobertaForSequenceClassification

HERE = Path(__file__).parent
TINY = {
    "vocab_size": 120,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 66,
}


def labels(n: int) -> dict[str, object]:
    names = ["negative", "positive"] if n == 2 else [f"LABEL_{i}" for i in range(n)]
    return {
        "num_labels": n,
        "id2label": dict(enumerate(names)),
        "label2id": {name: i for i, name in enumerate(names)},
    }


def main() -> None:
    torch.manual_seed(0)
    two = RobertaConfig(**TINY, **labels(2), architectures=["RobertaForSequenceClassification"])
    RobertaForSequenceClassification(two).save_pretrained(HERE / "roberta-2-labels")
    five = RobertaConfig(**TINY, **labels(5), architectures=["RobertaForSequenceClassification"])
    RobertaForSequenceClassification(five).save_pretrained(HERE / "roberta-5-labels")
    lora_example()


def lora_example() -> None:
    """A LoRA fine-tune of roberta-2-labels, as `peft_model.save_pretrained` writes it; its
    `base_model_name_or_path` is the base's folder as seen from the repository root."""
    import peft

    torch.manual_seed(1)
    base = RobertaForSequenceClassification.from_pretrained(HERE / "roberta-2-labels")
    config = peft.LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query", "value"])
    model = peft.get_peft_model(base, config)
    with torch.no_grad():  # non-zero adapter weights, as after training (LoRA's B starts at 0)
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.01)
    folder = HERE / "roberta-2-labels-lora"
    model.save_pretrained(folder)
    (folder / "README.md").unlink()  # peft's model card template
    path = folder / "adapter_config.json"
    document = json.loads(path.read_text())
    document["base_model_name_or_path"] = "examples/roberta-2-labels"
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
