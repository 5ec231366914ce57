"""What the model oracle (oracle.py) and the adapter oracle (peft.py) share around the libraries
they run: reading a parsed config as a document or a problem, importing the heavy libraries as
values, keeping them quiet, and handing transformers a local copy of a remote config.

Imports nothing heavy itself: the libraries are imported by `import_modules`, when called.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sdlint.config_fields import CONFIG_NAME, NOT_JSON, NOT_OBJECT, ConfigFile
from sdlint.model._text import describe_exception
from sdlint.model.verdict import NOT_INSTALLED, UNREADABLE_CONFIG, ConfigProblem
from sdlint.record import record


@record
class ConfigKind:
    """How problems with a kind of config file are worded."""

    what: str  # "a transformers config"
    regenerate: str  # the call that writes a good one
    unreadable_advice: str  # what to do when the file cannot be read


MODEL_CONFIG = ConfigKind(
    "a transformers config",
    "model.config.save_pretrained(dir)",
    "Put the model's config.json next to the weights, or pass --model-config.",
)


def config_document(
    config: ConfigFile, kind: ConfigKind = MODEL_CONFIG
) -> dict[str, Any] | ConfigProblem:
    """The parsed JSON object of a config as the read stage read it, or why there is none."""
    if config.document is not None:
        return config.document
    if config.problem == NOT_JSON:
        return ConfigProblem(
            UNREADABLE_CONFIG,
            f"{config.path.name} is not valid JSON: {config.reason}. Fix or regenerate it "
            f"(`{kind.regenerate}`).",
        )
    if config.problem == NOT_OBJECT:
        return ConfigProblem(
            UNREADABLE_CONFIG,
            f"{config.path.name} is a JSON {config.reason}, not an object: "
            f"{kind.what} is an object of settings. Fix or regenerate it.",
        )
    return ConfigProblem(
        UNREADABLE_CONFIG,
        f"{config.display} cannot be read ({config.reason}). {kind.unreadable_advice}",
    )


def import_modules(
    names: Sequence[str], *, checks: str, without: str, install_hint: str
) -> tuple[Any, ...] | ConfigProblem:
    """The modules `names`, imported in that order, or a NOT_INSTALLED problem saying that the
    `checks` (the model checks, the adapter checks) need them, what fails `without` them, and how
    to install them. import_module, not `import`: the type checker sees Any instead of analysing
    torch."""
    listed = " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + f" and {names[-1]}"
    alone = len(names) == 1
    try:
        return tuple(importlib.import_module(name) for name in names)
    except ImportError as e:
        return ConfigProblem(
            NOT_INSTALLED,
            f"the {checks} need {listed}, which {'is' if alone else 'are'} not installed ({e}): "
            f"{without}. Install {'it' if alone else 'them'} with `{install_hint}`.",
        )
    except Exception as e:  # a broken install raises anything at import time
        either = " or ".join(names)
        return ConfigProblem(
            NOT_INSTALLED,
            f"{either} fails to import ({describe_exception(e)}): the {checks} need "
            f"{'it' if alone else 'both' if len(names) == 2 else 'all of them'}. "
            f"Reinstall {'it' if alone else 'them'} with `{install_hint}`.",
        )


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off inside the block (as it was, after).

    Importing torch and transformers, and the model computation after it, allocate millions of
    objects that stay alive and next to no garbage in reference cycles: the collector's passes
    over them (~900 in a cold run, each of its full passes walking every object) cost a sixth of
    a cold run and free almost nothing. Reference counting frees as it always does. What the
    block made joins the oldest generation at once (a freeze and unfreeze: two list splices),
    else the first young-generation pass after it would walk all of it (~0.7 s); cycles made
    meanwhile are freed by the next full pass. Not done while the process holds frozen objects
    of its own (`gc.freeze`): unfreezing would release them.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Capture stdout, empty stdin and ignore warnings while transformers runs."""
    saved_stdin = sys.stdin
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        sys.stdin = io.StringIO()  # an `input()` prompt reads EOF instead of waiting
        try:
            yield
        finally:
            sys.stdin = saved_stdin


def silence_transformers(transformers: Any) -> Callable[[], None]:
    """Turn off transformers' logging and progress bars; return what restores them."""
    try:
        tlogging = transformers.utils.logging
        verbosity = tlogging.get_verbosity()
        bars = tlogging.is_progress_bar_enabled()
        tlogging.set_verbosity(60)  # above CRITICAL: the oracle reports everything itself
        tlogging.disable_progress_bar()
    except Exception:  # logging helpers moved: stdout is captured anyway
        return lambda: None

    def restore() -> None:
        tlogging.set_verbosity(verbosity)
        if bars:
            tlogging.enable_progress_bar()

    return restore


@contextlib.contextmanager
def local_copy(config: ConfigFile) -> Iterator[Path]:
    """A path transformers can read the config from: the file itself, or for a remote config (a
    URL or hf:// path, sdlint/sources/remote.py) the bytes the read stage fetched, in a temporary
    folder (transformers would otherwise take the path for a hub repository id)."""
    if config.path.local is not None:
        yield config.path.local
        return
    with tempfile.TemporaryDirectory(prefix="sdlint-config-") as tmp:
        path = Path(tmp) / CONFIG_NAME
        path.write_bytes(config.raw)
        yield path
