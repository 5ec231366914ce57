"""SD105: tensors stored in another dtype than the config's `dtype` (informational)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from sdlint.context import CheckContext
from sdlint.diagnostic import Severity
from sdlint.dtypes import FLOATING, TORCH_NAMES
from sdlint.rule import Finding, rule
from sdlint.rules.model_common import verdict_of


@rule(
    "SD105",
    "dtype-differs-from-config",
    summary="Tensors are stored in another dtype than the config's `dtype`.",
    severity=Severity.INFO,
    enabled_by_default=False,
)
def dtype_differs(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Reports, per file, floating-point tensors whose dtype differs from the config's `dtype` (or
    legacy `torch_dtype`). Informational, and off by default.

    ## Why is this bad?
    It usually is not: transformers converts every tensor to the model's dtype on load and never
    reports a dtype. But a bfloat16 checkpoint with a float32 config doubles the memory a default
    load takes, and a float16 save of a bfloat16 model may have overflowed.

    ## Example
    ```
    model.safetensors:1:1: SD105 201 floating-point tensors are stored as BF16, not the config's
    dtype float32 (transformers converts them on load)
    ```

    ## Fix safety
    No automatic fix.
    """
    found = verdict_of(ctx)
    if found is None:
        return
    _, verdict, _ = found
    wanted = verdict.config_dtype
    if wanted is None:
        return
    for header in ctx.checkpoint.headers:
        other = Counter(
            t.dtype
            for t in header.tensors.values()
            if t.dtype in FLOATING and TORCH_NAMES[t.dtype] != wanted
        )
        if other:
            total = sum(other.values())
            kinds = (
                next(iter(other))
                if len(other) == 1
                else ", ".join(f"{dtype} ({n})" for dtype, n in other.most_common())
            )
            yield Finding(
                f"{total} floating-point tensor{'s are' if total != 1 else ' is'} stored as "
                f"{kinds}, not the config's dtype {wanted} (transformers converts them on load)",
                header.path.display,
            )
