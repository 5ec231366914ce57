"""What a rule sees: the checkpoint under check, the settings, and (lazily) the expected model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sdlint.checkpoint import Checkpoint


@dataclass(frozen=True)
class ModelTarget:
    """The transformers config and class the checkpoint will be loaded into."""

    config_path: Path | None = None  # None: the config.json beside the weights
    architecture: str | None = None  # None: the config's `architectures[0]`


@dataclass(frozen=True)
class CheckContext:
    checkpoint: Checkpoint
    target: ModelTarget = field(default_factory=ModelTarget)
