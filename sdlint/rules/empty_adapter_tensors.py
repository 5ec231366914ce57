"""SD112: PEFT adapter tensors with no elements (a DeepSpeed ZeRO-3 save that gathered nothing)."""

from __future__ import annotations

from collections.abc import Iterator

from sdlint.context import CheckContext
from sdlint.diagnostic import Location
from sdlint.dtypes import shape_text
from sdlint.rule import Finding, rule
from sdlint.rules.adapter_common import is_empty


@rule(
    "SD112",
    "empty-adapter-tensors",
    summary="PEFT adapter tensors with no elements: a DeepSpeed ZeRO-3 save that gathered nothing.",
)
def empty_adapter_tensors(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Reports the tensors of a PEFT adapter (`adapter_model.safetensors` or `adapter_model.bin`)
    that have zero elements (a shape such as `[0]`): no adapter weight is legitimately empty.
    Needs no base model and no peft, so it also runs in the light pre-commit hook. (An empty
    tensor in another checkpoint is valid, and not reported.)

    ## Why is this bad?
    DeepSpeed ZeRO-3 shards every parameter across ranks; saving without gathering them
    (`save_pretrained` outside `GatheredParameters`, or with
    `stage3_gather_16bit_weights_on_model_save` off) writes placeholders of shape `[0]`. The file
    looks fine and holds nothing: loading fails on size mismatches, or with
    `ignore_mismatched_sizes=True` the weights are random.

    ## Example
    ```
    adapter_model.safetensors:1:1: SD112 12 of 12 tensors have no elements (e.g.
    `base_model.model.classifier.dense.bias` [0]): a DeepSpeed ZeRO-3 save that did not gather
    the parameters; save again with the parameters gathered
    ```

    ## Fix safety
    No automatic fix: the weights are not in the file; save them again from the training run.
    """
    if not ctx.checkpoint.is_adapter:
        return
    tensors = ctx.checkpoint.tensors
    empty = sorted(name for name, t in tensors.items() if is_empty(tuple(t.shape)))
    if not empty:
        return
    yield Finding(
        f"{len(empty)} of {len(tensors)} tensors have no elements (e.g. `{empty[0]}` "
        f"{shape_text(tuple(tensors[empty[0]].shape))}): a DeepSpeed ZeRO-3 save that did not "
        "gather the parameters; save again with the parameters gathered",
        ctx.checkpoint.display_path,
        tensor=empty[0] if len(empty) == 1 else None,
        location=Location(),
    )
