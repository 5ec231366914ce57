"""SD107: the target model cannot be built from the config."""

from __future__ import annotations

from collections.abc import Iterator

from sdlint.context import CheckContext
from sdlint.diagnostic import Severity
from sdlint.model.verdict import (
    QUANTIZED,
    REMOTE_CODE,
    UNKNOWN_ARCHITECTURE,
    UNKNOWN_MODEL_TYPE,
    ConfigProblem,
)
from sdlint.rule import Finding, rule


@rule(
    "SD107",
    "model-config-unusable",
    summary="The target model cannot be built from the config, so the model checks are skipped.",
)
def model_config_unusable(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Reports why the expected model cannot be built from the target config: unknown architecture or
    `model_type`, remote code required (sdlint never executes repository code), invalid config
    values, an optional dependency missing, a `quantization_config` (key checks skipped on purpose:
    reported as info), or transformers/torch not installed. The integrity checks still run.

    ## Why is this bad?
    Without the model, SD101-SD106 cannot be checked; and a config transformers rejects would fail
    `from_pretrained` too.

    ## Example
    ```
    config.json:1:1: SD107 the config needs remote code (auto_map: modeling_x.MyLM), which sdlint
    never runs: model checks skipped. Lint against a native architecture with --architecture
    ```

    ## Fix safety
    No automatic fix: the message says what to install or change.
    """
    view = ctx.model
    if view is None or not isinstance(view.outcome, ConfigProblem):
        return
    problem = view.outcome
    key = view.config_key_for(*_PROBLEM_KEYS.get(problem.kind, ()))
    yield Finding(
        problem.message,
        view.config_display,
        Severity.INFO if problem.kind == QUANTIZED else None,
        location=view.location_of(key),
        config_key=key,
    )


# The config.json key an SD107 points at, by problem kind (the first one the config has).
_PROBLEM_KEYS = {
    REMOTE_CODE: ("auto_map", "model_type", "architectures"),
    UNKNOWN_MODEL_TYPE: ("model_type",),
    UNKNOWN_ARCHITECTURE: ("architectures",),
    QUANTIZED: ("quantization_config",),
}
