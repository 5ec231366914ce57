"""SD111: a PEFT adapter's `target_modules` names a module the base model does not have."""

from __future__ import annotations

from collections.abc import Iterator

from sdlint.context import CheckContext
from sdlint.rule import Finding, rule
from sdlint.rules.adapter_common import LOADER, adapter_verdict_of


@rule(
    "SD111",
    "adapter-target-not-found",
    summary="A `target_modules` entry of a PEFT adapter names no module of the base model.",
)
def adapter_target_not_found(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Matches every name in the adapter's `target_modules` against the base model's modules with
    peft's own matching (a name matches a module whose dotted path is, or ends with, it). A regex
    string (or `all-linear`) is judged by peft when it injects the adapter (SD107 when nothing
    matches). Needs the base model's config.json and peft.

    ## Why is this bad?
    When no entry matches, `PeftModel.from_pretrained` refuses the adapter; when only some do,
    peft adapts the others without a word, and the adapter is not the one that was configured:
    usually it was trained on another base model (`q_proj` on a model with `query`).

    ## Example
    ```
    adapter_config.json:12:3: SD111 `target_modules` names `q_proj`, which
    RobertaForSequenceClassification has no module of; peft adapts only the other targets
    ```

    ## Fix safety
    No automatic fix: check the adapter against the base model it was trained for, or fix
    `target_modules`.
    """
    found = adapter_verdict_of(ctx)
    if found is None:
        return
    view, verdict = found
    for target in verdict.unknown_targets:
        consequence = (
            f"no target exists, so {LOADER} refuses the adapter ({verdict.load_error})"
            if verdict.load_error is not None
            else "peft adapts only the other targets"
        )
        yield Finding(
            f"`target_modules` names `{target}`, which {verdict.architecture} has no module "
            f"of; {consequence}",
            view.adapter_config.display,
            location=view.location_of("target_modules"),
            config_key="target_modules",
        )
