"""SD108: with `--model-checks=required`, a checkpoint whose model checks were skipped."""

from __future__ import annotations

from collections.abc import Iterator

from sdlint.context import CheckContext
from sdlint.rule import Finding, rule


@rule(
    "SD108",
    "model-checks-skipped",
    summary="The model checks did not run for a checkpoint, and the run requires them.",
)
def model_checks_skipped(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Only with `--model-checks=required` (or `model-checks = "required"` in the configuration):
    reports a checkpoint whose model checks (SD101-SD107) were skipped, and why: no config.json
    beside the weights, a config of another library (diffusers, sentence-transformers, timm), a
    PEFT adapter without a local base model config or without peft installed (its adapter checks,
    SD101-SD104, SD107, SD110, SD111), or no recorded verdict (`--model-checks=cached` is then
    implied: sdlint does not build the model, it uses the verdicts a run with transformers
    recorded). In the other modes a skip is one note line per run, never a finding. A weights file
    that from_pretrained does not load because its folder holds the file it does load
    (`consolidated.safetensors` beside `model.safetensors`) stays a note: nothing a loader reads
    went unchecked.

    ## Why is this bad?
    A skipped check passes silently: a commit that changes config.json to another label count
    passes the light pre-commit hook when no run with transformers has recorded a verdict for the
    new config. Teams that want the light hook strict make a skip a finding.

    ## Example
    ```
    model.safetensors:1:1: SD108 model checks skipped: no recorded verdict for this config; run
    sdlint with transformers installed, or use the sdlint-model hook (config.json)
    ```

    ## Fix safety
    No automatic fix: run sdlint with transformers installed once (it records the verdict), add
    the config, or ignore SD108 for folders that are not transformers models.
    """
    if not ctx.target.required:
        return
    _ = ctx.model  # decides whether the model checks run, and records why not
    _ = ctx.adapter  # the same for a PEFT adapter's checks
    for skip in ctx.skipped:
        if not skip.finding:  # a file no loader reads: a note (CheckContext._note_shadowed)
            continue
        yield Finding(
            f"model checks skipped: {skip.reason} ({skip.detail})", ctx.checkpoint.display_path
        )
