"""What the model tests share: a tiny RoBERTa config document, a signature for it, and verdicts
built by hand (for tests that replace the oracle or the model view)."""

from __future__ import annotations

from typing import Any

from sdlint.model.verdict import LoadVerdict, TensorSpec

# A base RoBERTa small enough to build in milliseconds on the meta device.
TINY_ROBERTA: dict[str, Any] = {
    "model_type": "roberta",
    "architectures": ["RobertaModel"],
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "vocab_size": 128,
    "max_position_embeddings": 64,
}
BASE_SIGNATURE = {"embeddings.word_embeddings.weight": TensorSpec("F32", (128, 32))}


def roberta_verdict(**changes: Any) -> LoadVerdict:
    """A verdict for RobertaForSequenceClassification with nothing wrong, or with `changes`."""
    fields: dict[str, Any] = {
        "architecture": "RobertaForSequenceClassification",
        "architecture_source": "config",
        "model_type": "roberta",
        "base_model_prefix": "roberta",
        "has_base_model": True,
        "transformers_version": "5.24.0",
        "dtype": "float32",
        "config_dtype": None,
    }
    return LoadVerdict(**{**fields, **changes})
