"""SD104: the checkpoint has a tensor the model does not use; dropping it."""

from __future__ import annotations

from collections.abc import Iterator

from sdlint.context import CheckContext
from sdlint.diagnostic import Applicability, Fix, Severity
from sdlint.rule import Finding, FixAvailability, rule
from sdlint.rules.adapter_common import LOADER, adapter_verdict_of
from sdlint.rules.model_common import (
    group,
    is_base_checkpoint,
    is_new_head,
    path_of,
    verdict_of,
)


@rule(
    "SD104",
    "unexpected-key",
    summary="The checkpoint has a tensor the model does not use.",
    fix=FixAvailability.SOMETIMES,
)
def unexpected_key(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Lists every checkpoint tensor the model has no place for, after transformers' renames and
    `_keys_to_ignore_on_load_unexpected`, by its name in the file (and, when transformers renames
    it, the name it would have had). Also warns about a tensor transformers drops silently
    because another tensor maps to the same parameter and wins. For a PEFT adapter: tensors the
    adapter peft builds on the base model has no place for (`PeftModel.from_pretrained` reports
    them as unexpected and ignores them).

    ## Why is this bad?
    transformers ignores such tensors, so data the user trained is not used: often the sign of a
    checkpoint saved from another class, or of a config that does not match.

    ## Example
    ```
    model.safetensors:1:1: SD104 `pooler.dense.weight` is in the checkpoint but
    RobertaForSequenceClassification has no such weight: transformers ignores it
    ```

    A base model's own checkpoint (no key under the base-model prefix, such as `roberta-base`)
    loaded into a task class is the normal start of fine-tuning: the tensors the task class has no
    place for (RoBERTa's `pooler.*`) are the base class's, and the message says so. When the
    missing tensors are exactly the new task head (SD103's info case), these findings are **info**
    too, as transformers itself calls them expected.

    ## Fix safety
    **Unsafe**: drop the tensor from the file. The model loads exactly the same, but data leaves
    the file (it may be what another class or a later config needs), so it is applied only with
    `--fix --unsafe-fixes`; `--backup` keeps the original next to the fixed file. The same for an
    adapter's tensor. Never offered for a base model's checkpoint loaded into a task class:
    dropping the base class's tensors would leave the folder unable to load as the base model its
    own weights are.
    """
    yield from _adapter_findings(ctx)
    found = verdict_of(ctx)
    if found is None:
        return
    _, verdict, prefix = found
    base = is_base_checkpoint(ctx, verdict, prefix)
    severity = Severity.INFO if base and is_new_head(ctx, verdict, prefix) else None
    for u in verdict.unexpected:
        renamed = f" (read as `{u.model_key}`)" if u.model_key != u.file_key else ""
        why = (
            " (the checkpoint is a base model's, loaded into a task class: the base model uses "
            "it, so no fix removes it)"
            if base
            else ""
        )
        yield Finding(
            f"`{prefix}{u.file_key}`{renamed} is in the checkpoint but {verdict.architecture} has "
            f"no such weight: transformers ignores it{why}",
            path_of(ctx, prefix + u.file_key),
            severity,
            tensor=prefix + u.file_key,
            group=group(u.file_key, verdict),
            fix=None if base else _drop_fix(ctx, prefix + u.file_key),
        )
    for s in verdict.shadowed:
        yield Finding(
            f"`{prefix}{s.file_key}` is never loaded: `{prefix}{s.winner}` maps to the same "
            f"parameter `{s.model_key}` and wins",
            path_of(ctx, prefix + s.file_key),
            Severity.WARNING,
            tensor=prefix + s.file_key,
            fix=_drop_fix(ctx, prefix + s.file_key),
        )


def _adapter_findings(ctx: CheckContext) -> Iterator[Finding]:
    """A PEFT adapter's tensors peft has no place for."""
    found = adapter_verdict_of(ctx)
    if found is None:
        return
    _, verdict = found
    for u in verdict.unexpected:
        yield Finding(
            f"`{u.file_key}` is in the adapter, but the {verdict.peft_type} adapter peft builds on "
            f"{verdict.architecture} has no such tensor: {LOADER} ignores it",
            path_of(ctx, u.file_key),
            tensor=u.file_key,
            fix=_drop_fix(ctx, u.file_key),
        )


def _drop_fix(ctx: CheckContext, name: str) -> Fix | None:
    ref = ctx.checkpoint.file_of.get(name)
    file = ref.local if ref is not None else None
    if file is None:  # a remote file is never rewritten
        return None
    from sdlint.edits import DropTensors  # the fix's edits: imported once there is a finding

    return Fix(
        Applicability.UNSAFE,
        f"Drop `{name}` from {file.name} (the model loads the same; the data leaves the file)",
        (DropTensors(file, (name,)),),
    )
