"""What the rules share for PEFT adapters: peft's verdict on the adapter (`CheckContext.adapter`,
sdlint/adapter.py, sdlint/model/peft.py), which they word.

Findings whose meaning is a model rule's keep its code: a `modules_to_save` head that does not fit
the base config is SD101, adapter tensors missing or unexpected are SD103/SD104, an adapter that
cannot be checked is SD107; those rules' modules word the adapter form too. What only adapters have
is SD110 (adapter tensor shapes), SD111 (`target_modules` the base model lacks) and SD112 (adapter
tensors with no elements).
"""

from __future__ import annotations

from math import prod

from sdlint.context import CheckContext

TYPE_CHECKING = False  # sdlint.adapter and the verdict types: only for a PEFT adapter
if TYPE_CHECKING:
    from sdlint.adapter import AdapterView
    from sdlint.model.verdict import AdapterVerdict

LOADER = "PeftModel.from_pretrained"
# The one tensor of a prompt-learning adapter (prompt, prefix or p-tuning): peft looks it up by
# this name and loads it into the prompt encoder, raising when it is absent or of another shape.
PROMPT_EMBEDDINGS = "prompt_embeddings"


def adapter_verdict_of(ctx: CheckContext) -> tuple[AdapterView, AdapterVerdict] | None:
    """peft's verdict on the adapter, when the checkpoint is one and it could be built."""
    view = ctx.adapter
    if view is None:
        return None
    from sdlint.model.verdict import AdapterVerdict

    if not isinstance(view.outcome, AdapterVerdict):
        return None
    return view, view.outcome


def is_empty(shape: tuple[int, ...]) -> bool:
    """A shape with no elements (`[0]`): a ZeRO-3 placeholder, which SD112 reports."""
    return prod(shape) == 0
