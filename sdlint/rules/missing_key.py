"""SD103: the model expects a tensor the checkpoint does not have."""

from __future__ import annotations

from collections.abc import Iterator

from sdlint.context import CheckContext
from sdlint.diagnostic import Severity
from sdlint.dtypes import shape_text
from sdlint.rule import Finding, rule
from sdlint.rules.adapter_common import LOADER, PROMPT_EMBEDDINGS, adapter_verdict_of
from sdlint.rules.model_common import group, is_new_head, verdict_of


@rule("SD103", "missing-key", summary="The model expects a tensor the checkpoint does not have.")
def missing_key(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Lists every tensor the model expects and the checkpoint lacks, after transformers' own
    leniency: the base-model prefix added or stripped, tied weights (an absent `lm_head.weight` tied
    to the embeddings is fine), non-persistent buffers, `_keys_to_ignore_on_load_missing`, and the
    checkpoint conversions of transformers 5 (legacy names, MoE expert fusion, VLM layouts).
    For a PEFT adapter: the adapter tensors peft builds on the base model (`lora_A`, `lora_B`,
    DoRA magnitudes, IA3 vectors, `modules_to_save` heads, a prompt-learning adapter's
    `prompt_embeddings`) that the adapter file lacks.

    When the only missing tensors are a task head of which the checkpoint has nothing (a base
    checkpoint such as `roberta-base` loaded into `RobertaForSequenceClassification`), the findings
    are **info**: that is how fine-tuning starts, and info never fails a run (nor blocks a commit).
    A missing base-model tensor, or part of a head the checkpoint otherwise has, is an error.

    ## Why is this bad?
    transformers initializes missing tensors randomly and only logs a warning ("Some weights of
    ... were not initialized"). A missing base-model tensor means the model will not work as
    trained; a new task head must be trained before the model is used. peft leaves a missing
    adapter tensor as initialized and only warns, except a `modules_to_save` tensor and a prompt-
    or prefix-tuning adapter's `prompt_embeddings`: without those `PeftModel.from_pretrained`
    raises a KeyError.

    ## Example
    ```
    model.safetensors:1:1: SD103 `roberta.encoder.layer.1.output.dense.bias` is not in the
    checkpoint: transformers will initialize it randomly (the model will not work as trained)
    ```
    Text output folds a whole missing module into one line; `--verbose` lists every key, and JSON
    output always has one object per key.

    ## Fix safety
    No automatic fix. A new task head is made by training, and transformers initializes it when
    the model is loaded: writing random tensors into the checkpoint would only hide that warning.
    Inventing pretrained weights for a missing base-model tensor would hide a broken checkpoint;
    re-export it instead.
    """
    yield from _adapter_findings(ctx)
    found = verdict_of(ctx)
    if found is None:
        return
    _, verdict, prefix = found
    new_head = is_new_head(ctx, verdict, prefix)
    for m in verdict.missing:
        if m.in_base_model:
            why, severity = "the model will not work as trained", None
        elif new_head:
            why = (
                "the checkpoint has no task head: a base checkpoint loaded into a task class is "
                "the normal start of fine-tuning; train the head before using the model"
            )
            severity = Severity.INFO
        else:
            why, severity = "the checkpoint's task head is incomplete: train or re-export it", None
        yield Finding(
            f"`{m.model_key}` is not in the checkpoint: transformers will initialize it randomly "
            f"({why})",
            ctx.checkpoint.display_path,
            severity,
            tensor=m.model_key,
            expected=m.shape or None,
            group=group(m.model_key, verdict),
        )


def _adapter_findings(ctx: CheckContext) -> Iterator[Finding]:
    """A PEFT adapter's tensors that peft builds on the base model and the file lacks."""
    found = adapter_verdict_of(ctx)
    if found is None:
        return
    _, verdict = found
    resized = {m.model_key for m in verdict.mismatched}
    for m in verdict.missing:
        if m.model_key in resized:  # peft drops a resized tensor, then misses it: SD101/SD110
            continue
        # peft looks a `modules_to_save` tensor and a prompt-learning adapter's embeddings up by
        # name and raises (KeyError) when the file lacks them; the others it only warns about.
        looked_up = ".modules_to_save." in m.model_key or m.file_key == PROMPT_EMBEDDINGS
        if verdict.load_error is not None and looked_up:
            what = f"{LOADER} fails on it ({verdict.load_error})"
        else:
            what = (
                f"{LOADER} leaves it as initialized and only warns (an adapter that is partly "
                "untrained)"
            )
        yield Finding(
            f"`{m.file_key}` is not in the adapter: peft expects it for the {verdict.peft_type} "
            f"adapter on {verdict.architecture} ({shape_text(m.shape)}); {what}",
            ctx.checkpoint.display_path,
            tensor=m.file_key,
            expected=m.shape,
        )
