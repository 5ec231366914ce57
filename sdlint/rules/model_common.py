"""What SD101-SD107 share: the verdict they report on, and how a mismatch is worded.

Every verdict comes from `CheckContext.model`: what transformers' own loading code reports for this
checkpoint's header signature (sdlint/model), so the model rules report exactly what
`from_pretrained` would, and nothing else. The rules only word the findings and add the advice.
"""

from __future__ import annotations

from sdlint.config_fields import differing_dims, explaining_field
from sdlint.context import CheckContext, ModelView
from sdlint.dtypes import shape_text
from sdlint.rule import Finding

TYPE_CHECKING = False  # the verdict types are imported when there is a verdict
if TYPE_CHECKING:
    from typing import Any

    from sdlint.model.verdict import LoadVerdict, Mismatch


def verdict_of(ctx: CheckContext) -> tuple[ModelView, LoadVerdict, str] | None:
    """The verdict the key rules report on, and the wrapper prefix to put back on file keys.

    With a wrapper prefix (SD106) the rules report what remains once it is stripped, so the user
    sees one SD106 rather than every key missing and unexpected.
    """
    view = ctx.model
    if view is None:
        return None
    from sdlint.model.verdict import ConfigProblem

    if isinstance(view.outcome, ConfigProblem):
        return None
    verdict = view.outcome
    if verdict.wrapper_prefix is not None:
        return view, verdict.wrapper_prefix.verdict, verdict.wrapper_prefix.prefix
    return view, verdict, ""


def is_base_checkpoint(ctx: CheckContext, verdict: LoadVerdict, prefix: str) -> bool:
    """The checkpoint is a base model's own (no key under `base_model_prefix.`) loaded into a class
    with a task head: transformers adds the prefix, and the tensors the task class has no place
    for (RoBERTa's `pooler.*`) are ones the base class uses."""
    if not verdict.has_base_model or not verdict.base_model_prefix:
        return False
    inside = verdict.base_model_prefix + "."
    return not any(name.removeprefix(prefix).startswith(inside) for name in ctx.checkpoint.tensors)


def is_new_head(ctx: CheckContext, verdict: LoadVerdict, prefix: str) -> bool:
    """Every missing tensor belongs to the task head, and the checkpoint has none of the modules
    they are in: a base checkpoint loaded into a task class, the normal start of fine-tuning."""
    if not verdict.has_base_model or not verdict.missing:
        return False
    if any(m.in_base_model for m in verdict.missing) or any(
        not m.in_base_model for m in verdict.mismatched
    ):
        return False
    modules = {m.model_key.split(".")[0] for m in verdict.missing}
    return not any(
        name.removeprefix(prefix).split(".")[0] in modules for name in ctx.checkpoint.tensors
    )


def path_of(ctx: CheckContext, file_key: str | None, earlier_copy: int | None = None) -> str:
    """The file a finding about `file_key` names: the shard that holds the copy it is about (an
    earlier shard's copy of a key in several, for `earlier_copy`), else the checkpoint."""
    found = ctx.checkpoint.copy_of(file_key, earlier_copy) if file_key else None
    return found[0].display if found else ctx.checkpoint.display_path


def other_shaped_copies(ctx: CheckContext, m: Mismatch, prefix: str) -> list[str]:
    """The shards holding a copy of the mismatched key in another shape than the copy reported (a
    key in several shards, SD004): no config value makes them all load."""
    file_key = prefix + m.file_key if m.file_key else None
    if file_key is None:
        return []
    return [
        d.path.name
        for d in ctx.checkpoint.descriptions
        if file_key in d.tensors and d.tensors[file_key].shape != m.checkpoint_shape
    ]


def group(key: str, verdict: LoadVerdict) -> str:
    """The module a key belongs to, one level below the base model: `roberta.encoder.`."""
    parts = key.split(".")
    depth = 2 if verdict.has_base_model and parts[0] == verdict.base_model_prefix else 1
    return ".".join(parts[:depth]) + "." if len(parts) > depth else key


def explain(view: ModelView, m: Mismatch) -> tuple[str, str | None, int | None]:
    """What the shapes mean, the config field behind the difference, and the checkpoint's value."""
    dims = set(differing_dims(m.model_shape, m.checkpoint_shape))
    if len(dims) == 1:  # one number explains every differing axis ([32, 32] vs [48, 48])
        ((model_dim, checkpoint_dim),) = dims
        field = explaining_field(view.config, model_dim)
        if field == "num_labels":
            return (
                f"checkpoint head has {checkpoint_dim} labels, config has num_labels={model_dim}",
                field,
                checkpoint_dim,
            )
        if field:
            return (
                f"checkpoint has {checkpoint_dim} where the config's {field} is {model_dim}",
                field,
                checkpoint_dim,
            )
    return "shapes differ", None, None


def mismatch_finding(
    ctx: CheckContext, view: ModelView, m: Mismatch, prefix: str, head: bool
) -> Finding:
    story, field, value = explain(view, m)
    config = view.config_display
    others = other_shaped_copies(ctx, m, prefix)
    if others:
        advice = (
            f"{', '.join(others)} also {'holds' if len(others) == 1 else 'hold'} a copy of "
            f"`{prefix}{m.file_key}` in another shape (SD004): keep the one copy the model should "
            "load and remove the other"
        )
    elif head and field == "num_labels":
        advice = (
            f"set num_labels={value} (with matching id2label/label2id) in {config} to use the "
            "trained head, or re-initialize the head on purpose (ignore_mismatched_sizes=True)"
        )
    elif field == "vocab_size":
        advice = (
            f"if tokens were added, set vocab_size={value} in {config} (or call "
            "resize_token_embeddings before saving)"
        )
    elif field:
        advice = f"set {field}={value} in {config} if the checkpoint is the one you meant"
    elif head:
        advice = (
            "re-initialize the head on purpose (ignore_mismatched_sizes=True) or fix the config"
        )
    else:
        advice = "the checkpoint was saved from a differently configured model"
    file_key = prefix + m.file_key if m.file_key else None
    config_key = (
        view.config_key_for("num_labels", "id2label")
        if field == "num_labels"
        else view.config_key_for(field)
        if field
        else None
    )
    return Finding(
        f"`{m.model_key}`: {story} (checkpoint {shape_text(m.checkpoint_shape)}, model "
        f"{shape_text(m.model_shape)}); from_pretrained refuses to load it: {advice}",
        path_of(
            ctx,
            file_key or (prefix + m.file_keys[0] if m.file_keys else None),
            m.earlier_copy,
        ),
        tensor=m.model_key,
        expected=m.model_shape,
        actual=m.checkpoint_shape,
        config_key=config_key,
    )


def init_kind(key: str) -> str:
    """How transformers' `_init_weights` starts a tensor: zero biases, unit norms, normal rest."""
    if key.rsplit(".", 1)[-1] == "bias":
        return "zeros"
    return "ones" if "norm" in key.lower() else "normal"


def initializer_range(config: dict[str, Any]) -> float:
    for where in (config, config.get("text_config")):
        if isinstance(where, dict) and isinstance(where.get("initializer_range"), (int, float)):
            return float(where["initializer_range"])
    return 0.02
