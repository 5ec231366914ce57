"""What a rule sees: the checkpoint under check, the target model, and (lazily, once) the verdict
of the expected model: what transformers' `from_pretrained` would report for this checkpoint."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from sdlint import memo
from sdlint.checkpoint import Checkpoint
from sdlint.config_fields import ConfigFile, Unsaved
from sdlint.diagnostic import Location
from sdlint.json_locations import key_locations
from sdlint.libraries import foreign_config
from sdlint.record import field, record
from sdlint.sources import FileRef

TYPE_CHECKING = False  # typing is not imported at run time (a check has no use for it)
if TYPE_CHECKING:
    from typing import Any

    from sdlint.adapter import AdapterView
    from sdlint.formats import TensorSpec
    from sdlint.model.verdict import ConfigProblem, LoadVerdict


@record
class ModelTarget:
    """The transformers config and class the checkpoint will be loaded into, and the cache."""

    config: ConfigFile | None = (
        None  # the config named by the user; None: the one beside the weights
    )
    architecture: str | None = None  # None: the config's `architectures[0]`
    cache_dir: Path | None = None  # None: $SDLINT_CACHE_DIR or the user cache dir
    use_cache: bool = True
    head_fix: str = "config"  # SD101's fix: edit the config ("config") or the weights ("reinit")
    # "auto": build the expected model when the cache has no verdict; "cached": only use a verdict
    # some run with transformers recorded (never import it); "off": no model checks.
    model_checks: str = "auto"
    # `--model-checks=required`: a skipped model check is a finding (SD108), not a note.
    required: bool = False
    # A committed folder of verdicts (`--record-verdicts`) read beside the cache's in "cached" mode.
    verdicts: Path | None = None
    # An editor's config.json texts, read instead of the files (sdlint.config_fields.read_config).
    unsaved: Unsaved = field(default_factory=dict, compare=False)

    @property
    def config_path(self) -> FileRef | None:
        return self.config.path if self.config is not None else None


# Why the model checks were skipped for a checkpoint (the run's note groups checkpoints by it).
NO_CONFIG = "no config.json beside the weights; pass --model-config to check against one"
NOT_TRANSFORMERS = "not a transformers model, so there is no model to check against"
NO_VERDICT = (
    "no recorded verdict for this config; run sdlint with transformers installed, "
    "or use the sdlint-model hook"
)
NOT_LOADED = "from_pretrained loads another file of its folder instead"


@record
class Skip:
    """The model checks did not run for a checkpoint: `reason` (one of the above) and `detail`
    (which file, and what it is). `finding`: with `--model-checks=required`, an SD108 finding
    rather than a note."""

    reason: str
    detail: str
    finding: bool = True


@record
class ModelView:
    """The expected model's verdict on this checkpoint, with the config it came from."""

    config_file: (
        ConfigFile  # as the read stage read it (no text if unreadable: the outcome says why)
    )
    outcome: LoadVerdict | ConfigProblem

    @property
    def config_path(self) -> FileRef:
        return self.config_file.path

    @property
    def config_text(self) -> str:
        return self.config_file.text

    @property
    def config_display(self) -> str:
        return self.config_file.display

    @property
    def config(self) -> dict[str, Any]:
        return self.config_file.data

    def config_key_for(self, *candidates: str) -> str | None:
        """The first candidate key the config actually has (dotted paths for sub-configs)."""
        return next((k for k in candidates if k in self._key_locations), None)

    def location_of(self, key: str | None) -> Location:
        """Where `key` is in config.json; the top of the file when it is not there."""
        return self._key_locations.get(key, Location()) if key else Location()

    @cached_property
    def _key_locations(self) -> dict[str, Location]:
        return key_locations(self.config_text)


@record
class CheckContext:
    checkpoint: Checkpoint
    target: ModelTarget = field(default_factory=ModelTarget)
    # What the run tells the user besides the findings (the verdict's notes, such as a class
    # guessed from model_type), one line each; the engine collects them into the report.
    notes: list[str] = field(default_factory=list, compare=False)
    # Why the model checks were skipped, when they were (at most one): a note for the run, or
    # with `--model-checks=required` an SD108 finding.
    skipped: list[Skip] = field(default_factory=list, compare=False)

    @cached_property
    def model(self) -> ModelView | None:
        """None when there is nothing to compare: weights that cannot be read (the integrity rules
        report those), model checks turned off, a PEFT adapter (`adapter` checks it), or a skip
        (recorded in `skipped`)."""
        if not self._model_checked:
            self._note_shadowed()
            return None
        skip = self._skip()
        if skip is not None:
            self.skipped.append(skip)
            return None
        config = self.target.config or self.checkpoint.config
        assert config is not None  # _skip says why when there is none
        from sdlint.model import cached_verdict, load_verdict

        tensors = self._signature
        index_keys = self.checkpoint.index_keys
        if self.target.model_checks == "cached":
            recorded = cached_verdict(
                config,
                tensors,
                self.target.architecture,
                cache_dir=self.target.cache_dir,
                shared=self.target.verdicts,
                index_keys=index_keys,
            )
            if recorded is None:
                self.skipped.append(Skip(NO_VERDICT, config.display))
                return None
            return self._viewed(config, recorded)
        outcome = load_verdict(
            config,
            tensors,
            self.target.architecture,
            cache_dir=self.target.cache_dir,
            use_cache=self.target.use_cache,
            notes=self.notes,
            index_keys=index_keys,
        )
        return self._viewed(config, outcome)

    @cached_property
    def adapter(self) -> AdapterView | None:
        """peft's verdict when the checkpoint is a PEFT adapter (sdlint/adapter.py); None for any
        other checkpoint, or when there is none (why is recorded in `skipped`)."""
        if not self.checkpoint.is_adapter or not self._checked:
            self._note_shadowed()
            return None
        from sdlint.adapter import AdapterView, adapter_view
        from sdlint.model.verdict import AdapterVerdict

        view = adapter_view(self.checkpoint, self.target, self.notes)
        if not isinstance(view, AdapterView):
            self.skipped.append(view)
            return None
        notes = view.outcome.notes if isinstance(view.outcome, AdapterVerdict) else ()
        self.notes.extend(f"{view.adapter_config.display}: {note}" for note in notes)
        return view

    @property
    def _model_checked(self) -> bool:
        """The checkpoint is checked as a transformers model (a PEFT adapter is not)."""
        return self._checked and not self.checkpoint.is_adapter

    @property
    def _checked(self) -> bool:
        """Model or adapter checks run: on, the weights readable, and what a loader would read
        (transformers and peft load model.safetensors before pytorch_model.bin)."""
        return (
            self.checkpoint.loadable
            and self.target.model_checks != "off"
            and self.checkpoint.shadowed_by is None
        )

    def _note_shadowed(self) -> None:
        """Why a checkpoint that another file of its folder shadows got no model checks: a note,
        never SD108 under `--model-checks=required`. Nothing transformers or peft would load went
        unchecked: the file they load from that folder is a checkpoint of the run's own, checked
        (or its skip reported) on its own; requiring model checks of a file no loader reads would
        fail every hub repository that keeps another copy of its weights (Mistral's
        `consolidated.safetensors`, `pytorch_model.bin` beside `model.safetensors`)."""
        winner = self.checkpoint.shadowed_by
        if winner is None or not self.checkpoint.loadable or self.target.model_checks == "off":
            return
        skip = Skip(
            NOT_LOADED, f"{self.checkpoint.display_path}: {winner.name} is loaded", finding=False
        )
        if skip not in self.skipped:
            self.skipped.append(skip)

    def pending_verdict(self) -> tuple[ConfigFile, dict[str, TensorSpec]] | None:
        """The (config, signature) `model` will ask `load_verdict` about (model checks on
        `auto`), or None; without side effects, so a run can compute them ahead, in parallel."""
        if not self._model_checked or self.target.model_checks != "auto":
            return None
        if self._skip() is not None:
            return None
        config = self.target.config or self.checkpoint.config
        return (config, self._signature) if config is not None else None

    @cached_property
    def _signature(self) -> dict[str, TensorSpec]:
        """The checkpoint's signature, made once (`pending_verdict`, then `model`); within a run
        (sdlint/memo.py), once for checkpoints whose files share their tensors (identical
        headers: sdlint/formats/safetensors.py), so their verdict key is computed once too."""
        described = tuple(d.tensors for d in self.checkpoint.descriptions)
        return memo.by_identity("signature", described, self.checkpoint.signature)

    def _skip(self) -> Skip | None:
        """Why there is no transformers model to check against, found without transformers."""
        if self.target.config is None and self.checkpoint.library is not None:
            return Skip(
                NOT_TRANSFORMERS, f"{self.checkpoint.display_path} is {self.checkpoint.library}"
            )
        config = self.target.config or self.checkpoint.config
        if config is None:
            return Skip(NO_CONFIG, self.checkpoint.display_path)
        other = foreign_config(config.data)
        if other is not None:
            return Skip(NOT_TRANSFORMERS, f"{config.display} is {other}")
        return None

    def _viewed(self, config: ConfigFile, outcome: LoadVerdict | ConfigProblem) -> ModelView:
        from sdlint.model.verdict import LoadVerdict

        notes = outcome.notes if isinstance(outcome, LoadVerdict) else ()
        self.notes.extend(f"{config.display}: {note}" for note in notes)
        return ModelView(config, outcome)
