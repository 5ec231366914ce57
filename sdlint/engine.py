"""Run the selected rules over the checkpoints: the library API the CLI is a thin layer over."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sdlint.checkpoint import Checkpoint, find_checkpoints
from sdlint.context import CheckContext, ModelTarget
from sdlint.diagnostic import Diagnostic
from sdlint.registry import Rule, select_rules


@dataclass(frozen=True)
class Settings:
    """Everything that decides a run's result. `select=None` means the default rule set."""

    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    target: ModelTarget = field(default_factory=ModelTarget)

    def rules(self) -> list[Rule]:
        return select_rules(self.select, self.ignore, self.extend_select)


@dataclass(frozen=True)
class Report:
    diagnostics: tuple[Diagnostic, ...]
    checkpoints: tuple[Checkpoint, ...]

    @property
    def files_checked(self) -> int:
        return sum(len(c.files) + (c.index is not None) for c in self.checkpoints)


def check_checkpoint(
    checkpoint: Checkpoint, rules: Sequence[Rule], target: ModelTarget
) -> list[Diagnostic]:
    context = CheckContext(checkpoint, target)
    out = []
    for r in rules:
        for finding in r.check(context):
            out.append(
                Diagnostic(
                    code=r.code,
                    severity=finding.severity or r.severity,
                    message=finding.message,
                    path=finding.path,
                    tensor=finding.tensor,
                    expected=finding.expected,
                    actual=finding.actual,
                    fix=finding.fix,
                    location=finding.location,
                    group=finding.group,
                    config_key=finding.config_key,
                )
            )
    return out


def check_paths(paths: Sequence[Path | str], settings: Settings | None = None) -> Report:
    """Lint every checkpoint the paths stand for. Raises `UsageError` for a path that names none."""
    settings = settings or Settings()
    rules = settings.rules()
    checkpoints = find_checkpoints([Path(p) for p in paths])
    diagnostics: list[Diagnostic] = []
    for checkpoint in checkpoints:
        diagnostics.extend(check_checkpoint(checkpoint, rules, settings.target))
    unique = dict.fromkeys(diagnostics)  # a file reached through two paths reports once
    return Report(tuple(sorted(unique, key=Diagnostic.sort_key)), tuple(checkpoints))
