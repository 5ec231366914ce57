"""SD110: a PEFT adapter tensor's shape disagrees with its rank `r` or with the base module."""

from __future__ import annotations

from collections.abc import Iterator

from sdlint.checkpoint import ADAPTER_CONFIG_NAME
from sdlint.context import CheckContext
from sdlint.dtypes import shape_text
from sdlint.rule import Finding, rule
from sdlint.rules.adapter_common import LOADER, PROMPT_EMBEDDINGS, adapter_verdict_of, is_empty

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sdlint.adapter import AdapterView
    from sdlint.model.verdict import AdapterMismatch


@rule(
    "SD110",
    "adapter-shape-mismatch",
    summary="A PEFT adapter tensor's shape disagrees with its rank `r` or with the base module.",
)
def adapter_shape_mismatch(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Compares every tensor of a PEFT adapter (`lora_A`, `lora_B`, DoRA magnitudes, IA3 vectors,
    AdaLoRA's `lora_E`, a prompt- or prefix-tuning adapter's `prompt_embeddings`, ...) with the
    shape peft builds for it on the base model, and says which side disagrees: the rank in the
    file against `r` in adapter_config.json (for `prompt_embeddings`, its rows against
    `num_virtual_tokens`), or the feature count against the base module's. A `modules_to_save`
    head is SD101 instead, a tensor with no elements SD112. Needs the base model's config.json
    (`--model-config`, or a local `base_model_name_or_path`) and peft.

    ## Why is this bad?
    `PeftModel.from_pretrained` raises `size mismatch for ...lora_A.default.weight`; with
    `ignore_mismatched_sizes=True` it keeps the fresh initialization, so the adapter silently
    does nothing there (`prompt_embeddings` of another shape: it raises either way). A rank that
    differs from `r` means the config and the weights were saved from different runs; a feature
    count that differs means the adapter belongs to another base.

    ## Example
    ```
    adapter_model.safetensors:1:1: SD110 `base_model.model.roberta.encoder.layer.0.attention.self
    .query.lora_A.weight`: rank 4 in the adapter, adapter_config.json has r=8 (adapter [4, 32],
    peft builds [8, 32]); PeftModel.from_pretrained refuses to load it
    ```

    ## Fix safety
    No automatic fix: set `r` (or `rank_pattern`) to what the weights hold, or check the adapter
    against the base model it was trained on.
    """
    found = adapter_verdict_of(ctx)
    if found is None:
        return
    view, verdict = found
    for m in verdict.mismatched:
        if m.in_head or is_empty(m.checkpoint_shape):
            continue
        yield Finding(
            f"`{m.file_key}`: {_shape_story(view, m)} (adapter {shape_text(m.checkpoint_shape)}, "
            f"peft builds {shape_text(m.model_shape)}); {LOADER} refuses to load it",
            ctx.checkpoint.display_path,
            tensor=m.file_key,
            expected=m.model_shape,
            actual=m.checkpoint_shape,
        )


def _shape_story(view: AdapterView, m: AdapterMismatch) -> str:
    """Which axis disagrees: LoRA's A is [r, in_features], B is [out_features, r]."""
    if m.file_key == PROMPT_EMBEDDINGS and len(m.model_shape) == len(m.checkpoint_shape) == 2:
        return _prompt_story(view, m)
    kind = next((part for part in m.file_key.split(".") if part.startswith("lora_")), "")
    if len(m.model_shape) != 2 or len(m.checkpoint_shape) != 2 or kind not in ("lora_A", "lora_B"):
        return "its shape differs from the one peft builds"
    rank_axis = 0 if kind == "lora_A" else 1
    feature_axis = 1 - rank_axis
    parts = []
    if m.model_shape[rank_axis] != m.checkpoint_shape[rank_axis]:
        r = view.document.get("r")
        parts.append(
            f"rank {m.checkpoint_shape[rank_axis]} in the adapter, {ADAPTER_CONFIG_NAME} has r={r}"
            if r == m.model_shape[rank_axis]
            else f"rank {m.checkpoint_shape[rank_axis]} in the adapter, peft builds rank "
            f"{m.model_shape[rank_axis]} from {ADAPTER_CONFIG_NAME} (`r`, `rank_pattern`)"
        )
    if m.model_shape[feature_axis] != m.checkpoint_shape[feature_axis]:
        side = "input" if kind == "lora_A" else "output"
        parts.append(
            f"{m.checkpoint_shape[feature_axis]} {side} features in the adapter, the base "
            f"module has {m.model_shape[feature_axis]}"
        )
    return "; ".join(parts)


def _prompt_story(view: AdapterView, m: AdapterMismatch) -> str:
    """A prompt-learning adapter's embeddings: [virtual tokens, width], the rows from
    `num_virtual_tokens` (times the transformer submodules of an encoder-decoder), the width from
    the base model."""
    parts = []
    rows, built_rows = m.checkpoint_shape[0], m.model_shape[0]
    if rows != built_rows:
        tokens = view.document.get("num_virtual_tokens")
        parts.append(
            f"{rows} virtual tokens in the adapter, {ADAPTER_CONFIG_NAME} has "
            f"num_virtual_tokens={tokens}"
            if tokens == built_rows
            else f"{rows} virtual token rows in the adapter, peft builds {built_rows} from "
            f"{ADAPTER_CONFIG_NAME} (`num_virtual_tokens`)"
        )
    if m.checkpoint_shape[1] != m.model_shape[1]:
        parts.append(
            f"width {m.checkpoint_shape[1]} in the adapter, peft builds {m.model_shape[1]} for "
            "the base model"
        )
    return "; ".join(parts)
