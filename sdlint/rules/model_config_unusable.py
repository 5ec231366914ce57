"""SD107: the target model cannot be built from the config (for a PEFT adapter: the adapter on its
base model cannot be built or loaded)."""

from __future__ import annotations

import functools
from collections.abc import Iterator

from sdlint.context import CheckContext
from sdlint.diagnostic import Location, Severity
from sdlint.json_locations import key_locations
from sdlint.rule import Finding, rule
from sdlint.rules.adapter_common import adapter_verdict_of


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

    For a PEFT adapter, the same for the adapter on its base model: an adapter_config.json peft
    rejects, a base config that gives no model, or an adapter peft cannot load for another reason
    than the ones SD101, SD103, SD110 and SD111 report. (Without peft, or without a local base
    config, the adapter checks are skipped with a note, as the model checks are without a config.)

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
    yield from _adapter_findings(ctx)
    view = ctx.model
    if view is None:
        return
    from sdlint.model.verdict import QUANTIZED, ConfigProblem  # there is a verdict

    if not isinstance(view.outcome, ConfigProblem):
        return
    problem = view.outcome
    key = view.config_key_for(*_problem_keys().get(problem.kind, ()))
    yield Finding(
        problem.message,
        view.config_display,
        Severity.INFO if problem.kind == QUANTIZED else None,
        location=view.location_of(key),
        config_key=key,
    )


@functools.cache
def _problem_keys() -> dict[str, tuple[str, ...]]:
    """The config.json key an SD107 points at, by problem kind (the first one the config has)."""
    from sdlint.model.verdict import (
        QUANTIZED,
        REMOTE_CODE,
        UNKNOWN_ARCHITECTURE,
        UNKNOWN_MODEL_TYPE,
    )

    return {
        REMOTE_CODE: ("auto_map", "model_type", "architectures"),
        UNKNOWN_MODEL_TYPE: ("model_type",),
        UNKNOWN_ARCHITECTURE: ("architectures",),
        QUANTIZED: ("quantization_config",),
    }


def _adapter_findings(ctx: CheckContext) -> Iterator[Finding]:
    """Why a PEFT adapter cannot be checked against (or loaded onto) its base model."""
    view = ctx.adapter
    if view is None:
        return
    from sdlint.model.verdict import QUANTIZED, ConfigProblem  # there is an adapter verdict

    if isinstance(view.outcome, ConfigProblem):
        problem = view.outcome
        severity = Severity.INFO if problem.kind == QUANTIZED else None
        keys = _problem_keys().get(problem.kind)
        base = view.base_config
        if keys and base is not None:  # the base config's (the class it names, its quantization)
            key = next((k for k in keys if k in base.data), None)
            location = key_locations(base.text).get(key, Location()) if key else Location()
            yield Finding(
                f"the base model of {ctx.checkpoint.display_path}: {problem.message}",
                base.display,
                severity,
                location=location,
            )
        else:
            yield Finding(problem.message, view.adapter_config.display, severity)
        return
    found = adapter_verdict_of(ctx)
    if found is None:
        return
    _, verdict = found
    if verdict.load_error is not None and not verdict.unknown_targets and not verdict.missing:
        yield Finding(
            f"peft cannot load the adapter onto {verdict.architecture}: {verdict.load_error}",
            view.adapter_config.display,
        )
