"""SD101-SD107: does the checkpoint fit the model the config describes?

Every verdict comes from `CheckContext.model`: what transformers' own loading code reports for this
checkpoint's header signature (sdlint/model), so these rules report exactly what `from_pretrained`
would, and nothing else. The rules only word the findings and add the advice.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from sdlint.config_fields import differing_dims, explaining_field
from sdlint.context import CheckContext, ModelView
from sdlint.diagnostic import Applicability, Fix, Severity
from sdlint.dtypes import shape_text
from sdlint.edits import DropTensors, InitTensor, RenameTensors, SetConfigValues, can_init
from sdlint.model.verdict import (
    QUANTIZED,
    REMOTE_CODE,
    UNKNOWN_ARCHITECTURE,
    UNKNOWN_MODEL_TYPE,
    ConfigProblem,
    LoadVerdict,
    Mismatch,
)
from sdlint.registry import Finding, FixAvailability, rule
from sdlint.sources.local import display

# SD102 leads with one explanation when at least this share of the base model's tensors mismatch.
_MOSTLY_MISMATCHED = 0.5
_WRAPPER_NAMES = {"module.": "DistributedDataParallel", "_orig_mod.": "torch.compile"}
# safetensors dtype -> the torch dtype name a config's `dtype` uses (floating types only).
_TORCH_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "F8_E4M3FNUZ": "float8_e4m3fnuz",
    "F8_E5M2FNUZ": "float8_e5m2fnuz",
    "F8_E8M0": "float8_e8m0fnu",
}


def _verdict(ctx: CheckContext) -> tuple[ModelView, LoadVerdict, str] | None:
    """The verdict the key rules report on, and the wrapper prefix to put back on file keys.

    With a wrapper prefix (SD106) the rules report what remains once it is stripped, so the user
    sees one SD106 rather than every key missing and unexpected.
    """
    view = ctx.model
    if view is None or isinstance(view.outcome, ConfigProblem):
        return None
    verdict = view.outcome
    if verdict.wrapper_prefix is not None:
        return view, verdict.wrapper_prefix.verdict, verdict.wrapper_prefix.prefix
    return view, verdict, ""


def _path_of(ctx: CheckContext, file_key: str | None) -> str:
    path = ctx.checkpoint.file_of.get(file_key) if file_key else None
    return display(path) if path else ctx.checkpoint.display_path


def _group(key: str, verdict: LoadVerdict) -> str:
    """The module a key belongs to, one level below the base model: `roberta.encoder.`."""
    parts = key.split(".")
    depth = 2 if verdict.has_base_model and parts[0] == verdict.base_model_prefix else 1
    return ".".join(parts[:depth]) + "." if len(parts) > depth else key


def _explain(view: ModelView, m: Mismatch) -> tuple[str, str | None, int | None]:
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


def _mismatch_finding(
    ctx: CheckContext, view: ModelView, m: Mismatch, prefix: str, head: bool
) -> Finding:
    story, field, value = _explain(view, m)
    config = view.config_display
    if head and field == "num_labels":
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
        _path_of(ctx, file_key or (prefix + m.file_keys[0] if m.file_keys else None)),
        tensor=m.model_key,
        expected=m.model_shape,
        actual=m.checkpoint_shape,
        config_key=config_key,
    )


@rule(
    "SD101",
    "head-size-mismatch",
    summary="A task-head tensor's shape differs from what the config builds.",
    fix=FixAvailability.SOMETIMES,
    needs_model=True,
)
def head_size_mismatch(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Compares every tensor of the task head (outside the base model, e.g.
    `classifier.out_proj.weight`, `score.weight`, `lm_head.weight`) with the shape the target config
    builds, and explains the difference: "checkpoint head has 2 labels, config has num_labels=5".
    `expected` is the model's shape, `actual` the checkpoint's.

    ## Why is this bad?
    `from_pretrained` raises `size mismatch for classifier.out_proj.weight`; with
    `ignore_mismatched_sizes=True` (or `strict=False` with `load_state_dict`) it silently
    re-initializes the head, and the model predicts noise until it is trained again.

    ## Example
    A RoBERTa fine-tuned for 2 labels, loaded into a 5-label config:
    ```
    model.safetensors:1:1: SD101 `classifier.out_proj.weight`: checkpoint head has 2 labels,
    config has num_labels=5 (checkpoint [2, 768], model [5, 768]); from_pretrained refuses to load
    it: set num_labels=2 (with matching id2label/label2id) in config.json to use the trained head,
    or re-initialize the head on purpose (ignore_mismatched_sizes=True)
    ```

    ## Fix safety
    Two fixes, both **unsafe** because each changes what the user meant; `--head-fix` (or
    `head-fix` in the configuration) picks one, and `--fix --unsafe-fixes` applies it:
    - `config` (default): set `num_labels`, `id2label` and `label2id` in the target config.json to
      the checkpoint's label count, reusing the label names of the config beside the weights when
      it has that many (else `LABEL_i`); only offered when the difference is the label count.
      The weights are untouched.
    - `reinit`: re-initialize the head tensors to the config's shape as transformers'
      `_init_weights` does (normal(0, initializer_range) weights, zero biases); this throws away
      the trained head. Every other tensor is copied bit for bit.
    """
    found = _verdict(ctx)
    if found is None:
        return
    view, verdict, prefix = found
    for m in verdict.mismatched:
        if not m.in_base_model:
            finding = _mismatch_finding(ctx, view, m, prefix, head=True)
            yield replace(finding, fix=_head_fix(ctx, view, m, prefix))


def _head_fix(ctx: CheckContext, view: ModelView, m: Mismatch, prefix: str) -> Fix | None:
    """The SD101 fix `--head-fix` picks; both are unsafe: they change what the user meant."""
    if ctx.target.head_fix == "reinit":
        return _reinit_fix(
            ctx, view, m.model_key, prefix + m.file_key if m.file_key else None, m.model_shape
        )
    _, field, labels = _explain(view, m)
    if field != "num_labels" or labels is None:
        return None
    names = _label_names(ctx, labels)
    values = {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}
    if "num_labels" in view.config:
        values["num_labels"] = labels
    return Fix(
        Applicability.UNSAFE,
        f"Set num_labels to {labels} in {view.config_display} (id2label/label2id for "
        f"{labels} labels) to match the checkpoint's head",
        (SetConfigValues(view.config_path, tuple((k, json.dumps(v)) for k, v in values.items())),),
    )


def _label_names(ctx: CheckContext, labels: int) -> list[str]:
    """The checkpoint's own label names when the config beside it has that many, else LABEL_i."""
    own = ctx.checkpoint.config
    id2label = own.data.get("id2label") if own is not None else None
    if isinstance(id2label, dict) and len(id2label) == labels:
        try:
            return [str(id2label[k]) for k in sorted(id2label, key=int)]
        except (TypeError, ValueError):
            pass
    return [f"LABEL_{i}" for i in range(labels)]


def _reinit_fix(
    ctx: CheckContext,
    view: ModelView,
    model_key: str,
    file_key: str | None,
    shape: tuple[int, ...],
) -> Fix | None:
    """Re-initialize one head tensor to the model's shape, as transformers' `_init_weights` does:
    normal(0, initializer_range) weights, zero biases, unit norm weights."""
    source = ctx.checkpoint.tensors.get(file_key) if file_key else None
    if file_key is None or source is None or not can_init(source.dtype):
        return None
    std = _initializer_range(view.config)
    init = _init_kind(model_key)
    return Fix(
        Applicability.UNSAFE,
        f"Re-initialize `{file_key}` to {shape_text(shape)} (discards the trained values)",
        (InitTensor(ctx.checkpoint.file_of[file_key], file_key, source.dtype, shape, init, std),),
    )


def _init_kind(key: str) -> str:
    """How transformers' `_init_weights` starts a tensor: zero biases, unit norms, normal rest."""
    if key.rsplit(".", 1)[-1] == "bias":
        return "zeros"
    return "ones" if "norm" in key.lower() else "normal"


def _initializer_range(config: dict[str, Any]) -> float:
    for where in (config, config.get("text_config")):
        if isinstance(where, dict) and isinstance(where.get("initializer_range"), (int, float)):
            return float(where["initializer_range"])
    return 0.02


@rule(
    "SD102",
    "base-shape-mismatch",
    summary="A base-model tensor's shape differs from what the config builds.",
    needs_model=True,
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
    found = _verdict(ctx)
    if found is None:
        return
    view, verdict, prefix = found
    base = [m for m in verdict.mismatched if m.in_base_model]
    base_tensors = sum(
        1
        for name in ctx.checkpoint.tensors
        if not verdict.has_base_model or name.startswith(prefix + verdict.base_model_prefix + ".")
    )
    if len(base) >= 4 and len(base) >= _MOSTLY_MISMATCHED * max(base_tensors, 1):
        yield _size_summary(ctx, view, base, max(base_tensors, len(base)))
    for m in base:
        finding = _mismatch_finding(ctx, view, m, prefix, head=False)
        yield replace(finding, group=_group(m.model_key, verdict))
    for error in verdict.conversion_errors:
        first = prefix + error.file_keys[0] if error.file_keys else None
        yield Finding(
            f"`{error.model_key}`: transformers cannot convert the checkpoint's tensors into it "
            f"and refuses to load the checkpoint: {error.message}",
            _path_of(ctx, first),
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


@rule(
    "SD103",
    "missing-key",
    summary="The model expects a tensor the checkpoint does not have.",
    fix=FixAvailability.SOMETIMES,
    needs_model=True,
)
def missing_key(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Lists every tensor the model expects and the checkpoint lacks, after transformers' own
    leniency: the base-model prefix added or stripped, tied weights (an absent `lm_head.weight` tied
    to the embeddings is fine), non-persistent buffers, `_keys_to_ignore_on_load_missing`, and the
    checkpoint conversions of transformers 5 (legacy names, MoE expert fusion, VLM layouts).

    ## Why is this bad?
    transformers initializes missing tensors randomly and only logs a warning ("Some weights of
    ... were not initialized"). A missing task head is expected when fine-tuning starts from a base
    checkpoint; a missing base-model tensor means the model will not work as trained.

    ## Example
    ```
    model.safetensors:1:1: SD103 `classifier.out_proj.weight` is not in the checkpoint:
    transformers will initialize it randomly (a missing task head is expected when starting from
    a base-model checkpoint: train it before use)
    ```
    Text output folds a whole missing module into one line; `--verbose` lists every key, and JSON
    output always has one object per key.

    ## Fix safety
    For a missing task-head tensor, an **unsafe** fix adds it to the checkpoint freshly initialized
    as transformers would (normal(0, initializer_range) weights, zero biases), so the checkpoint
    loads without a warning: it makes a random head explicit, which still needs training. No fix
    for a missing base-model tensor: inventing pretrained weights would hide a broken checkpoint;
    re-export it instead.
    """
    found = _verdict(ctx)
    if found is None:
        return
    view, verdict, _ = found
    for m in verdict.missing:
        why = (
            "the model will not work as trained"
            if m.in_base_model
            else "a missing task head is expected when starting from a base-model checkpoint: "
            "train it before use"
        )
        yield Finding(
            f"`{m.model_key}` is not in the checkpoint: transformers will initialize it randomly "
            f"({why})",
            ctx.checkpoint.display_path,
            tensor=m.model_key,
            expected=m.shape or None,
            group=_group(m.model_key, verdict),
            fix=None
            if m.in_base_model
            else _add_head_fix(ctx, view, verdict, m.model_key, m.shape),
        )


_SAFETENSORS_DTYPES = {torch: st for st, torch in _TORCH_DTYPES.items()}


def _add_head_fix(
    ctx: CheckContext, view: ModelView, verdict: LoadVerdict, key: str, shape: tuple[int, ...]
) -> Fix | None:
    """Add a freshly initialised head tensor, in the model's dtype, to the (last) weights file."""
    dtype = _SAFETENSORS_DTYPES.get(verdict.dtype)
    headers = ctx.checkpoint.headers
    if not shape or dtype is None or not headers:
        return None
    init = _init_kind(key)
    file = headers[-1].path
    return Fix(
        Applicability.UNSAFE,
        f"Add `{key}` to {file.name}, freshly initialized to {shape_text(shape)} ({init})",
        (InitTensor(file, key, dtype, shape, init, _initializer_range(view.config)),),
    )


@rule(
    "SD104",
    "unexpected-key",
    summary="The checkpoint has a tensor the model does not use.",
    fix=FixAvailability.SOMETIMES,
    needs_model=True,
)
def unexpected_key(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Lists every checkpoint tensor the model has no place for, after transformers' renames and
    `_keys_to_ignore_on_load_unexpected`, by its name in the file (and, when transformers renames
    it, the name it would have had). Also warns about a tensor transformers drops silently
    because another tensor maps to the same parameter and wins.

    ## Why is this bad?
    transformers ignores such tensors, so data the user trained is not used: often the sign of a
    checkpoint saved from another class, or of a config that does not match.

    ## Example
    ```
    model.safetensors:1:1: SD104 `pooler.dense.weight` is in the checkpoint but
    RobertaForSequenceClassification has no such weight: transformers ignores it
    ```

    ## Fix safety
    **Unsafe**: drop the tensor from the file. The model loads exactly the same, but data leaves
    the file (it may be what another class or a later config needs), so it is applied only with
    `--fix --unsafe-fixes`; `--backup` keeps the original next to the fixed file.
    """
    found = _verdict(ctx)
    if found is None:
        return
    _, verdict, prefix = found
    for u in verdict.unexpected:
        renamed = f" (read as `{u.model_key}`)" if u.model_key != u.file_key else ""
        yield Finding(
            f"`{prefix}{u.file_key}`{renamed} is in the checkpoint but {verdict.architecture} has "
            "no such weight: transformers ignores it",
            _path_of(ctx, prefix + u.file_key),
            tensor=prefix + u.file_key,
            group=_group(u.file_key, verdict),
            fix=_drop_fix(ctx, prefix + u.file_key),
        )
    for s in verdict.shadowed:
        yield Finding(
            f"`{prefix}{s.file_key}` is never loaded: `{prefix}{s.winner}` maps to the same "
            f"parameter `{s.model_key}` and wins",
            _path_of(ctx, prefix + s.file_key),
            Severity.WARNING,
            tensor=prefix + s.file_key,
            fix=_drop_fix(ctx, prefix + s.file_key),
        )


def _drop_fix(ctx: CheckContext, name: str) -> Fix | None:
    file = ctx.checkpoint.file_of.get(name)
    if file is None:
        return None
    return Fix(
        Applicability.UNSAFE,
        f"Drop `{name}` from {file.name} (the model loads the same; the data leaves the file)",
        (DropTensors(file, (name,)),),
    )


@rule(
    "SD105",
    "dtype-differs-from-config",
    summary="Tensors are stored in another dtype than the config's `dtype`.",
    severity=Severity.INFO,
    enabled_by_default=False,
    needs_model=True,
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
    found = _verdict(ctx)
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
            if t.dtype in _TORCH_DTYPES and _TORCH_DTYPES[t.dtype] != wanted
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
                display(header.path),
            )


@rule(
    "SD106",
    "key-prefix-mismatch",
    summary="Every key carries a wrapper prefix (`module.`, `_orig_mod.`) transformers keeps.",
    fix=FixAvailability.SOMETIMES,
    needs_model=True,
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


@rule(
    "SD107",
    "model-config-unusable",
    summary="The target model cannot be built from the config, so the model checks are skipped.",
    needs_model=True,
)
def model_config_unusable(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Reports why the expected model cannot be built from the target config: unknown architecture or
    `model_type`, remote code required (sdlint never executes repository code), invalid config
    values, an optional dependency missing, a `quantization_config` (key checks skipped, a
    warning), or transformers/torch not installed. The integrity checks still run.

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
        Severity.WARNING if problem.kind == QUANTIZED else None,
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
