"""SD101: a task-head tensor's shape differs from what the config builds; its two fixes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

from sdlint.context import CheckContext, ModelView
from sdlint.diagnostic import Applicability, Fix
from sdlint.dtypes import shape_text
from sdlint.edits import InitTensor, SetConfigValues, can_init
from sdlint.model.verdict import Mismatch
from sdlint.rule import Finding, FixAvailability, rule
from sdlint.rules.model_common import (
    explain,
    init_kind,
    initializer_range,
    mismatch_finding,
    verdict_of,
)


@rule(
    "SD101",
    "head-size-mismatch",
    summary="A task-head tensor's shape differs from what the config builds.",
    fix=FixAvailability.SOMETIMES,
)
def head_size_mismatch(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Compares every tensor of the task head (outside the base model, e.g.
    `classifier.out_proj.weight`, `score.weight`, `lm_head.weight`) with the shape the target config
    builds, and explains the difference: "checkpoint head has 2 labels, config has num_labels=5".
    `expected` is the model's shape, `actual` the checkpoint's.

    ## Why is this bad?
    `from_pretrained` raises `size mismatch for classifier.out_proj.weight`; with
    `ignore_mismatched_sizes=True` (or `strict=False` with `load_state_dict`) it silently
    re-initializes the head, and the model predicts noise until it is trained again.

    ## Example
    A RoBERTa fine-tuned for 2 labels, loaded into a 5-label config:
    ```
    model.safetensors:1:1: SD101 `classifier.out_proj.weight`: checkpoint head has 2 labels,
    config has num_labels=5 (checkpoint [2, 768], model [5, 768]); from_pretrained refuses to load
    it: set num_labels=2 (with matching id2label/label2id) in config.json to use the trained head,
    or re-initialize the head on purpose (ignore_mismatched_sizes=True)
    ```

    ## Fix safety
    Two fixes, both **unsafe** because each changes what the user meant; `--head-fix` (or
    `head-fix` in the configuration) picks one, and `--fix --unsafe-fixes` applies it:
    - `config` (default): set `num_labels`, `id2label` and `label2id` in the target config.json to
      the checkpoint's label count, reusing the label names of the config beside the weights when
      it has that many (else `LABEL_i`); only offered when the difference is the label count.
      The weights are untouched.
    - `reinit`: re-initialize the head tensors to the config's shape as transformers'
      `_init_weights` does (normal(0, initializer_range) weights, zero biases); this throws away
      the trained head. Every other tensor is copied bit for bit.
    """
    found = verdict_of(ctx)
    if found is None:
        return
    view, verdict, prefix = found
    for m in verdict.mismatched:
        if not m.in_base_model:
            finding = mismatch_finding(ctx, view, m, prefix, head=True)
            yield replace(finding, fix=_head_fix(ctx, view, m, prefix))


def _head_fix(ctx: CheckContext, view: ModelView, m: Mismatch, prefix: str) -> Fix | None:
    """The SD101 fix `--head-fix` picks; both are unsafe: they change what the user meant."""
    if ctx.target.head_fix == "reinit":
        return _reinit_fix(
            ctx, view, m.model_key, prefix + m.file_key if m.file_key else None, m.model_shape
        )
    _, field, labels = explain(view, m)
    if field != "num_labels" or labels is None:
        return None
    names = _label_names(ctx, labels)
    values = {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}
    if "num_labels" in view.config:
        values["num_labels"] = labels
    return Fix(
        Applicability.UNSAFE,
        f"Set num_labels to {labels} in {view.config_display} (id2label/label2id for "
        f"{labels} labels) to match the checkpoint's head",
        (SetConfigValues(view.config_path, tuple((k, json.dumps(v)) for k, v in values.items())),),
    )


def _label_names(ctx: CheckContext, labels: int) -> list[str]:
    """The checkpoint's own label names when the config beside it has that many, else LABEL_i."""
    own = ctx.checkpoint.config
    id2label = own.data.get("id2label") if own is not None else None
    if isinstance(id2label, dict) and len(id2label) == labels:
        try:
            return [str(id2label[k]) for k in sorted(id2label, key=int)]
        except (TypeError, ValueError):
            pass
    return [f"LABEL_{i}" for i in range(labels)]


def _reinit_fix(
    ctx: CheckContext,
    view: ModelView,
    model_key: str,
    file_key: str | None,
    shape: tuple[int, ...],
) -> Fix | None:
    """Re-initialize one head tensor to the model's shape, as transformers' `_init_weights` does:
    normal(0, initializer_range) weights, zero biases, unit norm weights."""
    source = ctx.checkpoint.tensors.get(file_key) if file_key else None
    if file_key is None or source is None or not can_init(source.dtype):
        return None
    std = initializer_range(view.config)
    init = init_kind(model_key)
    return Fix(
        Applicability.UNSAFE,
        f"Re-initialize `{file_key}` to {shape_text(shape)} (discards the trained values)",
        (InitTensor(ctx.checkpoint.file_of[file_key], file_key, source.dtype, shape, init, std),),
    )
