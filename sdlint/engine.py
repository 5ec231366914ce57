"""Run the selected rules over the checkpoints: the library API the CLI is a thin layer over.

from sdlint.engine import Settings, check_paths
report = check_paths(["models/"], Settings(ignore=("SD104",)))
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from sdlint import memo
from sdlint.checkpoint import Checkpoint
from sdlint.config import ConfigResolver, ProjectConfig
from sdlint.config_fields import CONFIG_NAME, ConfigFile, Unsaved, read_config, unsaved_texts
from sdlint.context import CheckContext, ModelTarget, Skip
from sdlint.diagnostic import Diagnostic, Fix
from sdlint.discover import discover
from sdlint.errors import InternalError, UsageError
from sdlint.formats import SAFETENSORS
from sdlint.model import Request, one_computation_per_key, prefetch_verdicts
from sdlint.record import field, record, replace
from sdlint.registry import Selection, select_rules, selector_matches
from sdlint.rule import FixAvailability, Rule
from sdlint.runcache import depend, untrusted
from sdlint.sources import FileRef, PathOrUrl, path_or_url
from sdlint.sources.local import display

TYPE_CHECKING = False  # typing is not imported at run time (a check has no use for it)
if TYPE_CHECKING:
    from typing import Any

    from sdlint.sources.http import HttpClient

Codes = str | Sequence[str]
PathArg = str | os.PathLike[str]


@record
class Settings:
    """What the caller (the command line) decides; `None` leaves it to the project configuration.

    The configuration file nearest to each checkpoint supplies the rest (sdlint/config.py);
    `config_file` names one file for every path, `isolated` ignores them all. Rule selectors are
    codes or prefixes, one (`"SD104"`, `"SD1,SD005"`) or a sequence; paths are `str` or path-like;
    both are normalised on construction (to tuples and `Path`s).

    `model_config`: the transformers config.json to load into, or a folder holding one.
    """

    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    model_config: PathOrUrl | None = None
    architecture: str | None = None
    use_cache: bool = True
    config_file: Path | None = None
    isolated: bool = False
    head_fix: str | None = None  # SD101's fix; None: the configuration's, else "config"
    # auto, cached, off or required (see ModelTarget); None: the configuration's, else auto
    model_checks: str | None = None
    jobs: int = 8  # remote reads in flight at once (URLs and hf:// paths)
    # Processes that read many local checkpoints and build their models (sdlint/parallel.py);
    # the command line's --jobs, by default the CPUs it may use. The output does not depend on it.
    processes: int = 1
    verdicts: Path | None = None  # shared verdicts (see ModelTarget.verdicts); None: configured
    # Files the commit being checked deletes (`check --staged-deletions`): a shard among them is
    # missing from its index even when it is still on disk.
    deleted: tuple[Path, ...] = ()
    # An editor's config.json texts, read instead of the files on disk (the language server).
    unsaved: Unsaved = field(default_factory=dict, compare=False)

    if TYPE_CHECKING:  # what the constructor accepts, before normalisation

        def __init__(
            self,
            select: Codes | None = None,
            extend_select: Codes = (),
            ignore: Codes = (),
            model_config: PathArg | None = None,
            architecture: str | None = None,
            use_cache: bool = True,
            config_file: PathArg | None = None,
            isolated: bool = False,
            head_fix: str | None = None,
            model_checks: str | None = None,
            jobs: int = 8,
            processes: int = 1,
            verdicts: PathArg | None = None,
            deleted: Sequence[PathArg] = (),
            unsaved: Mapping[Path, bytes] | None = None,
        ) -> None: ...

    def __post_init__(self) -> None:
        for name in ("select", "extend_select", "ignore"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _codes(value))
        if self.model_config is not None:
            object.__setattr__(self, "model_config", path_or_url(self.model_config))
        for name in ("config_file", "verdicts"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        object.__setattr__(self, "deleted", tuple(Path(p) for p in self.deleted))
        object.__setattr__(self, "unsaved", unsaved_texts(self.unsaved or {}))

    @property
    def selection(self) -> Selection:
        return Selection(self.select, self.extend_select, self.ignore)


def _codes(value: Codes) -> tuple[str, ...]:
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(p.strip() for p in parts if p.strip())


@record
class Report:
    diagnostics: tuple[Diagnostic, ...]
    checkpoints: tuple[Checkpoint, ...]
    # Lines for the user besides the findings (text output prints them, SARIF carries them as
    # notifications, JSON output is the findings only).
    notes: tuple[str, ...] = ()
    # The --model-config file as the run read it (once; a remote one is fetched only here).
    model_config: ConfigFile | None = None

    @property
    def files_checked(self) -> int:
        return sum(len(c.files) + (c.index is not None) for c in self.checkpoints)


@record
class Resolved:
    """The settings in force for one checkpoint: command line over its configuration file."""

    rules: tuple[Rule, ...]
    target: ModelTarget
    project: ProjectConfig


def resolve(
    settings: Settings,
    resolver: ConfigResolver,
    checkpoint: FileRef,
    model_config: ConfigFile | None = None,
) -> Resolved:
    """What a checkpoint is checked with: the project configuration that governs it (a remote
    one: the project's of the current folder, whose per-path tables name no remote file) and the
    command line's settings. `model_config`: the --model-config file as the run read it
    (`Report.model_config`; a remote one must be passed: it is read once per run)."""
    local = checkpoint.local
    project = resolver.for_path(local if local is not None else Path())
    layers = [Selection(project.select, project.extend_select, project.ignore), settings.selection]
    config_path = settings.model_config or (
        project.model_config_for(local) if local is not None else None
    )
    config = model_config
    if config is None and config_path is not None:
        if isinstance(config_path, str):
            raise InternalError(f"the remote model config {config_path} was not read by the run")
        config = read_config(config_path, settings.unsaved)
    if config is not None and config.refused:  # a FIFO, /dev/zero, a folder, a huge file
        raise UsageError(
            f"the model config {config.display} cannot be used: {config.reason} "
            "(it must be a transformers config.json file)"
        )
    target = ModelTarget(
        config=config,
        architecture=settings.architecture
        or (project.architecture_for(local) if local is not None else None),
        cache_dir=project.cache_dir,
        use_cache=settings.use_cache,
        head_fix=settings.head_fix or project.head_fix or "config",
        **_model_checks(settings.model_checks, project.model_checks),
        verdicts=settings.verdicts or project.verdicts,
        unsaved=settings.unsaved,
    )
    return Resolved(_rules(tuple(layers)), target, project)


def _rules(layers: tuple[Selection, ...]) -> tuple[Rule, ...]:
    """`select_rules(layers)`, chosen once per distinct selection and run (sdlint/memo.py)."""
    known = memo.table("rules")
    if known is None:
        return tuple(select_rules(layers))
    found: tuple[Rule, ...] | None = known.get(layers)
    if found is None:
        found = known[layers] = tuple(select_rules(layers))
    return found


def _model_config(given: PathOrUrl | None) -> PathOrUrl | None:
    """The config.json `--model-config` names: a file, or a folder holding one (as transformers'
    `from_pretrained(folder)` reads it). Raises UsageError when there is none."""
    if given is None or isinstance(given, str):  # a remote one is read by the run
        return given
    depend(given)
    path = given / CONFIG_NAME if given.is_dir() else given
    depend(path)
    if not path.exists():
        what = (
            f"{given} is a folder without a {CONFIG_NAME} (not a regular file)"
            if given.is_dir()
            else f"{given} does not exist"
        )
        raise UsageError(f"--model-config: {what}")
    return path


def _model_checks(command_line: str | None, configured: str | None) -> dict[str, Any]:
    """The model-checks mode and whether a skip is a finding. The command line wins, except that
    `required` in the configuration keeps skips findings under the mode the command line picks
    (the light pre-commit hook passes `--model-checks=cached`); `off` turns everything off.

    `required` alone checks as `auto` where transformers is installed and as `cached` where it is
    not, so a missing verdict is reported as such rather than as a missing transformers."""
    chosen = command_line or configured or "auto"
    required = "required" in (command_line, configured) and chosen != "off"
    mode = chosen if chosen != "required" else "auto"
    if command_line == "required" or (command_line is None and configured == "required"):
        import importlib.util

        mode = "auto" if importlib.util.find_spec("transformers") is not None else "cached"
    return {"model_checks": mode, "required": required}


def check_checkpoint(checkpoint: Checkpoint, resolved: Resolved) -> list[Diagnostic]:
    """The checkpoint's findings under the resolved settings."""
    return _check(CheckContext(checkpoint, resolved.target), resolved)[0]


def _check(
    context: CheckContext, resolved: Resolved
) -> tuple[list[Diagnostic], list[str], list[Skip]]:
    """The findings, the notes for the user, and why the model checks were skipped (when a model
    rule asked for the model and there was none)."""
    checkpoint = context.checkpoint
    out = []
    local = checkpoint.local_path is not None  # fixes rewrite files: only local ones
    for r in resolved.rules:
        if not r.applies_to(checkpoint.format):
            continue
        for finding in r.check(context):
            if finding.fix is not None and r.fix is FixAvailability.NONE:
                raise InternalError(f"{r.code} offers a fix but its documentation says it has none")
            diagnostic = Diagnostic(
                code=r.code,
                severity=finding.severity or r.severity,
                message=finding.message,
                path=finding.path,
                tensor=finding.tensor,
                expected=finding.expected,
                actual=finding.actual,
                fix=finding.fix if local and _can_apply(finding.fix, checkpoint) else None,
                location=finding.location,
                group=finding.group,
                config_key=finding.config_key,
            )
            ignored = resolved.project.ignored_codes(Path(diagnostic.path))
            if not any(selector_matches(code, diagnostic.code) for code in ignored):
                out.append(diagnostic)
    return out, context.notes, context.skipped


def _remote_client(settings: Settings, paths: Sequence[PathOrUrl]) -> HttpClient | None:
    """One client per run when anything is remote: its limit on requests in flight holds for the
    whole run."""
    named = [*paths, *([settings.model_config] if settings.model_config else [])]
    if not any(isinstance(p, str) for p in named):
        return None
    untrusted()  # a remote file has no fingerprint: the run cache does not keep the run
    from sdlint.sources.http import HttpClient

    return HttpClient(jobs=settings.jobs)


def check_paths(paths: Sequence[PathArg], settings: Settings | None = None) -> Report:
    """Lint every checkpoint the paths stand for. Raises `UsageError` for a path that does not exist
    or a configuration file that is invalid."""
    with memo.run():  # each lookup once per run (sdlint/memo.py)
        return _check_paths(paths, settings or Settings())


def _check_paths(paths: Sequence[PathArg], settings: Settings) -> Report:
    settings = replace(settings, model_config=_model_config(settings.model_config))
    resolver = ConfigResolver(config_file=settings.config_file, isolated=settings.isolated)
    inputs = [path_or_url(p) for p in paths]
    client = _remote_client(settings, inputs)
    # An editor's language server (unsaved texts) runs threads: it forks no processes.
    workers = settings.processes if not settings.unsaved else 1
    checkpoints, empty = discover(inputs, client, settings.deleted, settings.unsaved, workers)
    model_config = None
    if settings.model_config is not None:  # read once for the run, not once per checkpoint
        if isinstance(settings.model_config, Path):
            model_config = read_config(settings.model_config)
        elif client is not None:
            from sdlint.sources.remote import remote_config

            model_config = remote_config(settings.model_config, client)
    diagnostics: list[Diagnostic] = []
    notes: list[str] = []
    skips: list[Skip] = []
    with one_computation_per_key():
        resolved_all = [resolve(settings, resolver, c.path, model_config) for c in checkpoints]
        # One context per checkpoint: its signature and verdict key are made once, for the
        # verdicts looked up ahead and for the rules.
        contexts = [
            CheckContext(c, r.target) for c, r in zip(checkpoints, resolved_all, strict=True)
        ]
        if workers > 1 and len(checkpoints) > 1 and client is None:
            prefetch_verdicts(_requests(contexts, resolved_all), workers)
        for context, resolved in zip(contexts, resolved_all, strict=True):
            found, noted, skipped = _check(context, resolved)
            diagnostics.extend(found)
            notes.extend(noted)
            # required: SD108 reports each skip that is a finding (sdlint/context.py Skip)
            skips.extend(s for s in skipped if not (resolved.target.required and s.finding))
    unique = dict.fromkeys(diagnostics)  # a file reached through two paths reports once
    return Report(
        tuple(sorted(unique, key=Diagnostic.sort_key)),
        tuple(checkpoints),
        tuple(_nothing_found(p) for p in empty) + tuple(dict.fromkeys(notes)) + skip_notes(skips),
        model_config,
    )


def _requests(contexts: Sequence[CheckContext], resolved: Sequence[Resolved]) -> list[Request]:
    """The verdicts the model rules will ask for, so that the missing ones can be computed ahead
    in parallel: only when a model rule (SD1xx, the rules that ask for the model) is selected."""
    requests: list[Request] = []
    for context, settings in zip(contexts, resolved, strict=True):
        if not any(r.code.startswith("SD1") for r in settings.rules):
            continue
        checkpoint = context.checkpoint
        pending = context.pending_verdict()
        if pending is not None:
            target = settings.target
            config, tensors = pending
            requests.append(
                (
                    config,
                    tensors,
                    target.architecture,
                    target.cache_dir,
                    target.use_cache,
                    checkpoint.index_keys,
                )
            )
    return requests


def _nothing_found(path: Path) -> str:
    """The note for a PATH that names no checkpoint: as ruff, a note and not an error, so a commit
    of a config.json alone passes the pre-commit hooks; the same for the folder form."""
    if path.name == CONFIG_NAME and not path.is_dir():
        return f"no safetensors checkpoint beside {display(path)}: nothing to check"
    return f"no safetensors checkpoint found in {display(path)}: nothing to check"


def skip_notes(skips: Sequence[Skip]) -> tuple[str, ...]:
    """One line per reason the model checks were skipped, with how many checkpoints it covers."""
    by_reason: dict[str, list[str]] = {}
    for skip in skips:
        by_reason.setdefault(skip.reason, []).append(skip.detail)
    lines = []
    for reason, details in by_reason.items():
        count = f"{len(details)} checkpoint{'s' if len(details) != 1 else ''}"
        shown = "; ".join(details[:3]) + ("; ..." if len(details) > 3 else "")
        lines.append(f"model checks skipped for {count}: {reason} ({shown})")
    return tuple(lines)


def _can_apply(fix: Fix | None, checkpoint: Checkpoint) -> bool:
    """Fixes rewrite weights as safetensors only: a fix that edits the weights of a checkpoint in
    another format is not offered (config edits are, and converting a pickle to safetensors)."""
    if fix is None or checkpoint.format == SAFETENSORS:
        return True
    from sdlint.edits import Conversion, SetConfigValues

    return all(isinstance(edit, (SetConfigValues, Conversion)) for edit in fix.edits)
