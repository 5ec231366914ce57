"""Shared verdicts: model verdicts recorded into a folder a team commits, so that the light
pre-commit hook (no torch, `--model-checks=cached`) reports model findings for everyone; PEFT
adapters' verdicts too (their key adds adapter_config.json's bytes).

    sdlint check --record-verdicts .sdlint/verdicts models/     # CI, or the sdlint-model hook
    sdlint check --model-checks=cached --verdicts .sdlint/verdicts models/   # or `verdicts = ...`

The folder is laid out as the cache's recorded verdicts are (sdlint/model/cache.py): one small
JSON file per key, the key a hash of the config.json bytes, the architecture, the sdlint version
and the checkpoint's key/dtype/shape signature. A file holds nothing else: no path, no time, no
user; the same inputs write the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sdlint.checkpoint import Checkpoint
from sdlint.config import ConfigResolver
from sdlint.config_fields import ConfigFile
from sdlint.engine import Settings, resolve
from sdlint.sources import FileRef

if TYPE_CHECKING:
    from sdlint.context import ModelTarget
    from sdlint.model.cache import VerdictCache


def record(
    checkpoints: Iterable[Checkpoint],
    settings: Settings,
    folder: Path,
    model_config: ConfigFile | None = None,
) -> int:
    """Write the verdict of each checkpoint against its target config into `folder`; the number
    written. `model_config`: the --model-config file as the run read it (`Report.model_config`).
    Where the model checks run in "auto" mode a verdict missing from the cache is built
    (transformers); in "cached" mode only recorded ones are copied; "off" writes nothing."""
    from sdlint.model import ConfigProblem, LoadVerdict, cached_verdict, load_verdict, recorded_key
    from sdlint.model.cache import VerdictCache

    resolver = ConfigResolver(config_file=settings.config_file, isolated=settings.isolated)
    shared = VerdictCache(folder)
    written = 0
    for checkpoint in checkpoints:
        if not checkpoint.loadable:
            continue
        target = resolve(settings, resolver, checkpoint.path, model_config).target
        if target.model_checks == "off":
            continue
        if checkpoint.is_adapter:
            written += _record_adapter(checkpoint, target, shared)
            continue
        config = target.config or checkpoint.config
        if config is None or not config.raw:
            continue
        tensors = checkpoint.signature()
        index_keys = checkpoint.index_keys
        outcome: LoadVerdict | ConfigProblem | None
        if target.model_checks == "auto":
            outcome = load_verdict(
                config,
                tensors,
                target.architecture,
                cache_dir=target.cache_dir,
                use_cache=target.use_cache,
                index_keys=index_keys,
            )
        else:
            outcome = cached_verdict(
                config,
                tensors,
                target.architecture,
                cache_dir=target.cache_dir,
                index_keys=index_keys,
            )
        if outcome is None or (isinstance(outcome, ConfigProblem) and not outcome.cacheable):
            continue  # nothing known, or an answer about this machine (a package not installed)
        if _names_a_local_path(outcome.to_json(), config.path):
            continue  # a committed file must not carry this machine's paths
        key = recorded_key(config.raw, tensors, target.architecture, index_keys=index_keys)
        if shared.put(key, outcome):
            written += 1
    return written


def _record_adapter(checkpoint: Checkpoint, target: ModelTarget, shared: VerdictCache) -> int:
    """Record peft's verdict on a PEFT adapter against its local base config (sdlint/adapter.py),
    as `record` does a model's; the number written (0 or 1)."""
    from sdlint.adapter import base_config
    from sdlint.model import ConfigProblem
    from sdlint.model.peft import known_adapter_verdict, recorded_adapter_key

    adapter = checkpoint.adapter_config
    if adapter is None or adapter.document is None:
        return 0
    base = base_config(checkpoint, adapter, target)
    if base is None or base.document is None:
        return 0
    tensors = checkpoint.signature()
    outcome = known_adapter_verdict(
        base,
        adapter,
        tensors,
        target.architecture,
        model_checks=target.model_checks,
        cache_dir=target.cache_dir,
        use_cache=target.use_cache,
    )
    if outcome is None or (isinstance(outcome, ConfigProblem) and not outcome.cacheable):
        return 0
    if _names_a_local_path(outcome.to_json(), base.path):
        return 0
    return int(
        shared.put(recorded_adapter_key(base, adapter, tensors, target.architecture), outcome)
    )


def _names_a_local_path(text: str, config: FileRef) -> bool:
    folders = {str(Path.cwd()), str(Path.home())}
    if config.local is not None:
        folders.add(str(config.local.resolve().parent))
    return any(folder in text for folder in folders if len(folder) > 1)
