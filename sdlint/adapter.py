"""A PEFT adapter under check: its adapter_config.json, the base model's config.json it is checked
against, and peft's verdict on it (sdlint/model/peft.py).

An adapter is a weights file named `adapter_model.*` (`Checkpoint.is_adapter`) with an
`adapter_config.json` beside it (read once by the read stage: `Checkpoint.adapter_config`). Its
base config comes from `--model-config` (or the project configuration's `model-config`), else from
`base_model_name_or_path` when that is a local folder holding a config.json (as given, or relative
to the adapter's folder); it is never downloaded. Where there is no base config, or peft is not
installed, the adapter checks are skipped like the model checks: a `Skip` (a note of the run, or
SD108 under `--model-checks=required`), never a finding about the adapter.

Imports nothing heavy: the verdict comes from the cache when it can.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdlint.checkpoint import ADAPTER_CONFIG_NAME, Checkpoint
from sdlint.config_fields import CONFIG_NAME, ConfigFile, read_config
from sdlint.diagnostic import Location
from sdlint.json_locations import key_locations
from sdlint.libraries import foreign_config
from sdlint.record import record
from sdlint.sources import is_url
from sdlint.sources.local import is_regular_file

if TYPE_CHECKING:
    from sdlint.context import ModelTarget, Skip
    from sdlint.model.verdict import AdapterOutcome

# Why an adapter's checks were skipped (the run's note groups checkpoints by it).
NO_ADAPTER_CONFIG = f"a PEFT adapter without the {ADAPTER_CONFIG_NAME} that says what it adapts"
NO_BASE_CONFIG = (
    "a PEFT adapter whose base model config.json is not local (sdlint never downloads it); "
    "pass --model-config with the base model's config.json"
)
PEFT_NOT_INSTALLED = (
    "the adapter checks need peft, torch and transformers; install them with "
    "`pip install 'sdlint[peft]'`"
)


@record
class AdapterView:
    """peft's verdict on an adapter, with the two configs it came from. `base_config` is None only
    when adapter_config.json itself is unusable (the outcome says why)."""

    adapter_config: ConfigFile
    base_config: ConfigFile | None
    outcome: AdapterOutcome

    @property
    def document(self) -> dict[str, Any]:
        return self.adapter_config.data

    def location_of(self, key: str) -> Location:
        """Where `key` is in adapter_config.json; the top of the file when it is not there."""
        return self._locations.get(key, Location())

    @cached_property
    def _locations(self) -> dict[str, Location]:
        return key_locations(self.adapter_config.text)


def adapter_view(
    checkpoint: Checkpoint, target: ModelTarget, notes: list[str] | None = None
) -> AdapterView | Skip:
    """peft's verdict on the adapter `checkpoint` against its base model, or why there is none.

    The caller has checked that the checkpoint is a loadable adapter and that model checks are on.
    """
    from sdlint.context import NO_VERDICT, NOT_TRANSFORMERS, Skip
    from sdlint.model.peft import adapter_document, known_adapter_verdict
    from sdlint.model.verdict import NOT_INSTALLED, ConfigProblem

    adapter_config = checkpoint.adapter_config
    if adapter_config is None:
        return Skip(NO_ADAPTER_CONFIG, checkpoint.display_path)
    document = adapter_document(adapter_config)
    if isinstance(document, ConfigProblem):  # what peft would fail on first, whatever the base
        return AdapterView(adapter_config, None, document)
    base = base_config(checkpoint, adapter_config, target)
    if base is None:
        name = adapter_config.data.get("base_model_name_or_path")
        named = f": base_model_name_or_path is {name!r}" if isinstance(name, str) else ""
        return Skip(NO_BASE_CONFIG, f"{adapter_config.display}{named}")
    other = foreign_config(base.data)
    if other is not None:  # a diffusers UNet's LoRA, say: not a transformers base model
        return Skip(NOT_TRANSFORMERS, f"{base.display} is {other}")

    outcome = known_adapter_verdict(
        base,
        adapter_config,
        checkpoint.signature(),
        target.architecture,
        model_checks=target.model_checks,
        cache_dir=target.cache_dir,
        use_cache=target.use_cache,
        shared=target.verdicts,
        notes=notes,
    )
    if outcome is None:
        return Skip(NO_VERDICT, f"{adapter_config.display} on {base.display}")
    if isinstance(outcome, ConfigProblem) and outcome.kind == NOT_INSTALLED:
        return Skip(PEFT_NOT_INSTALLED, checkpoint.display_path)
    return AdapterView(adapter_config, base, outcome)


def base_config(
    checkpoint: Checkpoint, adapter_config: ConfigFile, target: ModelTarget
) -> ConfigFile | None:
    """The base model's config.json: the one named by the user or the project, else the one in the
    local folder `base_model_name_or_path` names (as given, as `from_pretrained` reads it, or
    relative to a local adapter's folder); None for a Hub name, which sdlint never downloads."""
    if target.config is not None:
        return target.config
    name = adapter_config.data.get("base_model_name_or_path")
    if not isinstance(name, str) or not name or is_url(name):
        return None
    folders = [Path(name)]
    if checkpoint.folder is not None:
        folders.append(checkpoint.folder / name)
    for folder in folders:
        candidate = folder / CONFIG_NAME
        if is_regular_file(candidate):
            return read_config(candidate, target.unsaved)
    return None
