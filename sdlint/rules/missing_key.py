"""SD103: the model expects a tensor the checkpoint does not have; adding a task head."""

from __future__ import annotations

from collections.abc import Iterator

from sdlint.context import CheckContext, ModelView
from sdlint.diagnostic import Applicability, Fix
from sdlint.dtypes import TORCH_DTYPES, shape_text
from sdlint.edits import InitTensor, can_init
from sdlint.model.verdict import LoadVerdict
from sdlint.rule import Finding, FixAvailability, rule
from sdlint.rules.model_common import group, init_kind, initializer_range, verdict_of


@rule(
    "SD103",
    "missing-key",
    summary="The model expects a tensor the checkpoint does not have.",
    fix=FixAvailability.SOMETIMES,
)
def missing_key(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Lists every tensor the model expects and the checkpoint lacks, after transformers' own
    leniency: the base-model prefix added or stripped, tied weights (an absent `lm_head.weight` tied
    to the embeddings is fine), non-persistent buffers, `_keys_to_ignore_on_load_missing`, and the
    checkpoint conversions of transformers 5 (legacy names, MoE expert fusion, VLM layouts).

    ## Why is this bad?
    transformers initializes missing tensors randomly and only logs a warning ("Some weights of
    ... were not initialized"). A missing task head is expected when fine-tuning starts from a base
    checkpoint; a missing base-model tensor means the model will not work as trained.

    ## Example
    ```
    model.safetensors:1:1: SD103 `classifier.out_proj.weight` is not in the checkpoint:
    transformers will initialize it randomly (a missing task head is expected when starting from
    a base-model checkpoint: train it before use)
    ```
    Text output folds a whole missing module into one line; `--verbose` lists every key, and JSON
    output always has one object per key.

    ## Fix safety
    For a missing task-head tensor, an **unsafe** fix adds it to the checkpoint freshly initialized
    as transformers would (normal(0, initializer_range) weights, zero biases), so the checkpoint
    loads without a warning: it makes a random head explicit, which still needs training. No fix
    for a missing base-model tensor: inventing pretrained weights would hide a broken checkpoint;
    re-export it instead.
    """
    found = verdict_of(ctx)
    if found is None:
        return
    view, verdict, _ = found
    for m in verdict.missing:
        why = (
            "the model will not work as trained"
            if m.in_base_model
            else "a missing task head is expected when starting from a base-model checkpoint: "
            "train it before use"
        )
        yield Finding(
            f"`{m.model_key}` is not in the checkpoint: transformers will initialize it randomly "
            f"({why})",
            ctx.checkpoint.display_path,
            tensor=m.model_key,
            expected=m.shape or None,
            group=group(m.model_key, verdict),
            fix=None
            if m.in_base_model
            else _add_head_fix(ctx, view, verdict, m.model_key, m.shape),
        )


def _add_head_fix(
    ctx: CheckContext, view: ModelView, verdict: LoadVerdict, key: str, shape: tuple[int, ...]
) -> Fix | None:
    """Add a freshly initialised head tensor, in the model's dtype, to the (last) weights file;
    none when sdlint cannot initialise that dtype (float8, as SD101's reinit fix)."""
    dtype = TORCH_DTYPES.get(verdict.dtype, (None, 0))[0]
    headers = ctx.checkpoint.headers
    if not shape or dtype is None or not can_init(dtype) or not headers:
        return None
    init = init_kind(key)
    file = headers[-1].path
    return Fix(
        Applicability.UNSAFE,
        f"Add `{key}` to {file.name}, freshly initialized to {shape_text(shape)} ({init})",
        (InitTensor(file, key, dtype, shape, init, initializer_range(view.config)),),
    )
