"""Regenerate the bundled examples: a tiny RoBERTa fine-tuned for 2 labels, and a 5-label one whose
config a user might load the first into (the canonical head-size mismatch, SD101; and the two
checkpoints `sdlint diff` compares in the README).

    .venv/bin/python examples/make_examples.py

The weights are random and tiny (hidden size 32), so the files stay small; the shapes are what
matters to sdlint, which reads headers only.
"""

from __future__ import annotations

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


if __name__ == "__main__":
    main()
