"""SD102: a base-model tensor's shape differs from what the config builds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from sdlint.config_fields import differing_dims, explaining_field
from sdlint.context import CheckContext, ModelView
from sdlint.record import replace
from sdlint.rule import Finding, rule
from sdlint.rules.model_common import group, mismatch_finding, path_of, verdict_of

TYPE_CHECKING = False  # the verdict types are imported when there is a verdict
if TYPE_CHECKING:
    from sdlint.model.verdict import Mismatch

# SD102 leads with one explanation when at least this share of the base model's tensors mismatch.
_MOSTLY_MISMATCHED = 0.5


@rule(
    "SD102",
    "base-shape-mismatch",
    summary="A base-model tensor's shape differs from what the config builds.",
)
def base_shape_mismatch(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Compares every tensor inside the base model (e.g. `embeddings.word_embeddings.weight`) with
    the shape the target config builds, and names the config field that explains the difference
    (`vocab_size`, `hidden_size`, `max_position_embeddings`, ...). When most tensors differ, it
    leads with one explanation: the checkpoint belongs to another size of model. Also reports a
    checkpoint transformers cannot convert to its in-memory layout (an incomplete MoE expert set).

    ## Why is this bad?
    `from_pretrained` raises on a size mismatch; with `ignore_mismatched_sizes=True` it silently
    re-initializes those tensors, which ruins a pretrained model. A resized vocabulary (added
    tokens) is the most common cause.

    ## Example
    ```
    model.safetensors:1:1: SD102 `roberta.embeddings.word_embeddings.weight`: checkpoint has 50269
    where the config's vocab_size is 50265 (checkpoint [50269, 768], model [50265, 768]);
    from_pretrained refuses to load it: if tokens were added, set vocab_size=50269 in config.json
    (or call resize_token_embeddings before saving)
    ```

    ## Fix safety
    No automatic fix: the message names the config field to change.
    """
    found = verdict_of(ctx)
    if found is None:
        return
    view, verdict, prefix = found
    base = [m for m in verdict.mismatched if m.in_base_model]
    if len(base) >= 4:  # the tensors are counted only when the summary may lead
        base_tensors = len(ctx.checkpoint.tensors)
        if verdict.has_base_model:
            inside = prefix + verdict.base_model_prefix + "."
            base_tensors = sum(1 for name in ctx.checkpoint.tensors if name.startswith(inside))
        if len(base) >= _MOSTLY_MISMATCHED * max(base_tensors, 1):
            yield _size_summary(ctx, view, base, max(base_tensors, len(base)))
    for m in base:
        finding = mismatch_finding(ctx, view, m, prefix, head=False)
        yield replace(finding, group=group(m.model_key, verdict))
    for error in verdict.conversion_errors:
        first = prefix + error.file_keys[0] if error.file_keys else None
        yield Finding(
            f"`{error.model_key}`: transformers cannot convert the checkpoint's tensors into it "
            f"and refuses to load the checkpoint: {error.message}",
            path_of(ctx, first, error.earlier_copy),
            tensor=error.model_key,
        )


def _size_summary(ctx: CheckContext, view: ModelView, base: list[Mismatch], total: int) -> Finding:
    pairs = Counter(
        pair for m in base for pair in differing_dims(m.model_shape, m.checkpoint_shape)
    )
    explanation = "its shapes differ from the config's"
    if pairs:
        (model_dim, checkpoint_dim), _ = pairs.most_common(1)[0]
        field = explaining_field(view.config, model_dim)
        if field:
            explanation = (
                f"{field} is {checkpoint_dim} in the checkpoint but {model_dim} in the config"
            )
    return Finding(
        f"the checkpoint belongs to another size of model: {explanation} ({len(base)} of {total} "
        f"base-model tensors differ); use the config the checkpoint was trained with",
        ctx.checkpoint.display_path,
    )
