"""SD106: every key carries a wrapper prefix (`module.`, `_orig_mod.`); stripping it."""

from __future__ import annotations

from collections.abc import Iterator

from sdlint import wrappers
from sdlint.context import CheckContext
from sdlint.diagnostic import Applicability, Fix
from sdlint.rule import Finding, FixAvailability, rule


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
    `model.`), which transformers resolves itself. Where a model can be built from the config, it
    confirms the prefix (stripping it must make the keys load); without one (no config.json,
    transformers not installed, a config it cannot build) the header alone decides, when every key
    starts with `module.`, `_orig_mod.` or a run of them.

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
    verdict = None
    if view is not None:
        from sdlint.model.verdict import LoadVerdict  # imported when there is a verdict

        verdict = view.outcome if isinstance(view.outcome, LoadVerdict) else None
    if verdict is not None:
        # The model decides: the prefix is reported only when stripping it makes the keys load.
        wrapper = verdict.wrapper_prefix
        if wrapper is None:
            return
        prefix, carried = wrapper.prefix, wrapper.keys
    else:
        # No verdict (no config, a config transformers cannot build, transformers not installed):
        # the header alone, for the wrappers every key carries.
        if not ctx.checkpoint.loadable or ctx.target.model_checks == "off":
            return
        found = wrappers.known_prefix(ctx.checkpoint.tensors)
        if found is None:
            return
        prefix, carried = found, len(ctx.checkpoint.tensors)
    origin = wrappers.origin(prefix)
    what = f" ({origin})" if origin else ""
    total = len(ctx.checkpoint.tensors)
    share = f"all {total}" if carried == total else f"{carried} of {total}"
    renames = [
        (
            header.path.local,
            tuple((k, k[len(prefix) :]) for k in header.tensors if k.startswith(prefix)),
        )
        for header in ctx.checkpoint.headers
    ]
    stripped = [new for _, pairs in renames for _, new in pairs]
    collision = set(stripped) & set(ctx.checkpoint.tensors) or len(set(stripped)) < len(stripped)
    from sdlint.edits import RenameTensors  # the fix's edits: imported once there is a finding

    edits = tuple(RenameTensors(file, pairs) for file, pairs in renames if file and pairs)
    fix = (
        None
        if collision or any(file is None for file, _ in renames)  # a remote file: never rewritten
        else Fix(
            Applicability.SAFE,
            f"Strip the prefix `{prefix}` from {len(stripped)} keys (data untouched)",
            edits,
        )
    )
    yield Finding(
        f"{share} keys carry the prefix `{prefix}`{what}, which transformers does not "
        "strip: every weight would be missing and randomly initialized; strip the prefix from "
        "the keys",
        ctx.checkpoint.display_path,
        fix=fix,
    )
