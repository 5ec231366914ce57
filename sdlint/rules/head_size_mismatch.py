"""SD101: a task-head tensor's shape differs from what the config builds; its two fixes; and the
same for a PEFT adapter's `modules_to_save` head against its base config."""

from __future__ import annotations

import json
from collections.abc import Iterator

from sdlint.config_fields import differing_dims, explaining_field, num_labels
from sdlint.context import CheckContext, ModelView
from sdlint.diagnostic import Applicability, Fix
from sdlint.dtypes import shape_text
from sdlint.record import replace
from sdlint.rule import Finding, FixAvailability, rule
from sdlint.rules.adapter_common import LOADER, adapter_verdict_of, is_empty
from sdlint.rules.model_common import (
    explain,
    init_kind,
    initializer_range,
    mismatch_finding,
    other_shaped_copies,
    verdict_of,
)
from sdlint.sources import FileRef
from sdlint.sources.local import display

TYPE_CHECKING = False  # the verdict types are imported when there is a verdict
if TYPE_CHECKING:
    from typing import Any

    from sdlint.edits import Edit, SetConfigValues
    from sdlint.model.verdict import Mismatch


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

    For a PEFT adapter, the same check on its `modules_to_save` head against the base model's
    config, as `PeftModel.from_pretrained` judges it: a LoRA classifier fine-tune saved with 2
    labels, loaded onto a 5-label base.

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
      the trained head. Every other tensor is copied bit for bit. When the config.json beside the
      weights is not the target config, the same fix gives it the target's labels, so the folder
      loads with its own config and with the target one; the weights and that file change
      together or not at all. Where that cannot be done (the head's size is not the label count,
      or that file is unreadable) no fix is offered and the finding says why.

    An adapter's head gets no fix: the advice names the base config to change.
    """
    yield from _adapter_findings(ctx)
    found = verdict_of(ctx)
    if found is None:
        return
    view, verdict, prefix = found
    for m in verdict.mismatched:
        if not m.in_base_model:
            finding = mismatch_finding(ctx, view, m, prefix, head=True)
            if ctx.target.head_fix == "reinit":
                fix, refused = _reinit_fix(ctx, view, m, prefix)
                if refused:
                    finding = replace(
                        finding, message=f"{finding.message}; no --head-fix reinit: {refused}"
                    )
                yield replace(finding, fix=fix)
            else:
                yield replace(finding, fix=_config_fix(ctx, view, m, prefix))


def _config_fix(ctx: CheckContext, view: ModelView, m: Mismatch, prefix: str) -> Fix | None:
    """`--head-fix config`: the target config takes the checkpoint's label count (not when the
    key's shard copies differ: no label count loads them all)."""
    _, field, labels = explain(view, m)
    if field != "num_labels" or labels is None or other_shaped_copies(ctx, m, prefix):
        return None
    config = view.config_path.local
    if config is None:  # a remote config (--model-config URL) is never rewritten
        return None
    from sdlint.edits import SetConfigValues  # the fixes' edits: only when there is one

    names = _label_names(ctx, labels)
    values = {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}
    if "num_labels" in view.config:
        values["num_labels"] = labels
    return Fix(
        Applicability.UNSAFE,
        f"Set num_labels to {labels} in {view.config_display} (id2label/label2id for "
        f"{labels} labels) to match the checkpoint's head",
        (SetConfigValues(config, tuple((k, json.dumps(v)) for k, v in values.items())),),
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
    ctx: CheckContext, view: ModelView, m: Mismatch, prefix: str
) -> tuple[Fix | None, str | None]:
    """`--head-fix reinit`: re-initialize one head tensor to the model's shape, as transformers'
    `_init_weights` does (normal(0, initializer_range) weights, zero biases, unit norm weights).

    The folder must still load with its own config.json afterwards, so when that is not the
    target config, the same fix gives it the target's labels (the pass is all or nothing). When it
    cannot (the head's size is not the label count, or the file cannot be read), no fix is offered
    and the second value says why.
    """
    from sdlint.edits import InitTensor, can_init

    file_key = prefix + m.file_key if m.file_key else None
    # The copy the mismatch is about: an earlier shard's, for a key in several (4.x).
    found = ctx.checkpoint.copy_of(file_key, m.earlier_copy) if file_key else None
    if file_key is None or found is None or not can_init(found[1].dtype):
        return None, None
    where, source = found
    weights = where.local
    if weights is None:  # a remote file is never rewritten
        return None, None
    own_labels, refused = _own_config_labels(ctx, view, m)
    if refused:
        return None, refused
    shape, std, init = m.model_shape, initializer_range(view.config), init_kind(m.model_key)
    edits: tuple[Edit, ...] = (InitTensor(weights, file_key, source.dtype, shape, init, std),)
    description = f"Re-initialize `{file_key}` to {shape_text(shape)} (discards the trained values)"
    if own_labels is not None:
        edits += (own_labels,)
        description += f", and give {display(own_labels.file)} the target config's labels"
    return Fix(Applicability.UNSAFE, description, edits), None


def _own_config_labels(
    ctx: CheckContext, view: ModelView, m: Mismatch
) -> tuple[SetConfigValues | None, str | None]:
    """The edit that gives the config.json beside the weights the target's labels, when it is
    another file and differs; or why it cannot be made to match the re-initialized head."""
    own = ctx.checkpoint.config
    if own is None or _same_file(own.path, view.config_path):
        return None, None  # the weights are re-initialized to the very config they load with
    _, field, _ = explain(view, m)
    labels = num_labels(view.config)
    if field != "num_labels" or labels is None:
        return None, (
            f"the head's size does not come from the label count alone, so "
            f"{own.display} could not be made to match a re-initialized head"
        )
    if own.document is None:
        return None, f"{own.display} cannot be read ({own.reason}), so it cannot take new labels"
    id2label = view.config.get("id2label")
    if not isinstance(id2label, dict) or len(id2label) != labels:
        id2label = {str(i): f"LABEL_{i}" for i in range(labels)}
    label2id = view.config.get("label2id")
    if not isinstance(label2id, dict) or len(label2id) != labels:
        label2id = {name: int(i) for i, name in id2label.items()}
    values: dict[str, Any] = {"id2label": id2label, "label2id": label2id}
    if "num_labels" in own.data or "num_labels" in view.config:
        values["num_labels"] = labels
    if all(own.data.get(key) == value for key, value in values.items()):
        return None, None
    items = tuple((key, json.dumps(value)) for key, value in values.items())
    if own.path.local is None:  # beside remote weights, whose fixes end before this
        return None, None
    from sdlint.edits import SetConfigValues

    return SetConfigValues(own.path.local, items), None


def _same_file(a: FileRef, b: FileRef) -> bool:
    if a.local is None or b.local is None:
        return a == b
    try:
        return a.local.samefile(b.local)
    except OSError:
        return a.local.absolute() == b.local.absolute()


def _adapter_findings(ctx: CheckContext) -> Iterator[Finding]:
    """A PEFT adapter's `modules_to_save` head whose shape differs from the base config's."""
    found = adapter_verdict_of(ctx)
    if found is None:
        return
    view, verdict = found
    base = view.base_config
    assert base is not None  # a verdict is built on a base model
    for m in verdict.mismatched:
        if not m.in_head or is_empty(m.checkpoint_shape):
            continue  # an adapter weight is SD110, an empty tensor SD112
        dims = set(differing_dims(m.model_shape, m.checkpoint_shape))
        field = explaining_field(base.data, next(iter(dims))[0]) if len(dims) == 1 else None
        if field == "num_labels":
            ((model_dim, file_dim),) = dims
            story = (
                f"the adapter's `modules_to_save` head has {file_dim} labels, the base config has "
                f"num_labels={model_dim}"
            )
            advice = (
                f"set num_labels={file_dim} (with matching id2label/label2id) in {base.display}, "
                "the config the base model is loaded with, to use the trained head"
            )
        else:
            story = "the adapter's `modules_to_save` head differs from the base model's"
            advice = "check the adapter against the base model it was trained on"
        yield Finding(
            f"`{m.file_key}`: {story} (adapter {shape_text(m.checkpoint_shape)}, model "
            f"{shape_text(m.model_shape)}); {LOADER} refuses to load it: {advice}",
            ctx.checkpoint.display_path,
            tensor=m.file_key,
            expected=m.model_shape,
            actual=m.checkpoint_shape,
        )
