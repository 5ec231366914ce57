"""SD106: every key carries a wrapper prefix (`module.`, `_orig_mod.`); stripping it."""

from __future__ import annotations

from collections.abc import Iterator

from sdlint.context import CheckContext
from sdlint.diagnostic import Applicability, Fix
from sdlint.edits import RenameTensors
from sdlint.model.verdict import ConfigProblem
from sdlint.rule import Finding, FixAvailability, rule

_WRAPPER_NAMES = {"module.": "DistributedDataParallel", "_orig_mod.": "torch.compile"}


@rule(
    "SD106",
    "key-prefix-mismatch",
    summary="Every key carries a wrapper prefix (`module.`, `_orig_mod.`) transformers keeps.",
    fix=FixAvailability.SOMETIMES,
)
def key_prefix_mismatch(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Detects checkpoints whose keys carry a wrapper prefix transformers does not strip:
    `module.` (saved from a DistributedDataParallel model), `_orig_mod.` (from a torch.compile'd
    model) or a doubled prefix. One finding for the whole checkpoint, instead of every key missing
    and every key unexpected. Never reported for a base-model prefix difference (`roberta.`,
    `model.`), which transformers resolves itself.

    ## Why is this bad?
    transformers 5 loads such a checkpoint *without an error*: every weight is missing and
    randomly initialized, and the only trace is a logged report.

    ## Example
    ```
    model.safetensors:1:1: SD106 all 201 keys carry the prefix `module.` (DistributedDataParallel),
    which transformers does not strip: every weight would be missing and randomly initialized
    ```

    ## Fix safety
    **Safe**: strip the prefix from every key (sharded checkpoints: every shard and the index).
    Only names change; every tensor's bytes are copied and verified. Not offered when a stripped
    name would collide with an existing key.
    """
    view = ctx.model
    if view is None or isinstance(view.outcome, ConfigProblem):
        return
    wrapper = view.outcome.wrapper_prefix
    if wrapper is None:
        return
    origin = _WRAPPER_NAMES.get(wrapper.prefix)
    what = f" ({origin})" if origin else ""
    total = len(ctx.checkpoint.tensors)
    share = f"all {total}" if wrapper.keys == total else f"{wrapper.keys} of {total}"
    renames = [
        RenameTensors(
            header.path,
            tuple(
                (k, k[len(wrapper.prefix) :])
                for k in header.tensors
                if k.startswith(wrapper.prefix)
            ),
        )
        for header in ctx.checkpoint.headers
    ]
    stripped = [new for edit in renames for _, new in edit.renames]
    collision = set(stripped) & set(ctx.checkpoint.tensors) or len(set(stripped)) < len(stripped)
    fix = (
        None
        if collision
        else Fix(
            Applicability.SAFE,
            f"Strip the prefix `{wrapper.prefix}` from {len(stripped)} keys (data untouched)",
            tuple(edit for edit in renames if edit.renames),
        )
    )
    yield Finding(
        f"{share} keys carry the prefix `{wrapper.prefix}`{what}, which transformers does not "
        "strip: every weight would be missing and randomly initialized; strip the prefix from "
        "the keys",
        ctx.checkpoint.display_path,
        fix=fix,
    )
