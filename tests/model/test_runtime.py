"""What the oracles share around the libraries they run (sdlint/model/runtime.py): here, the
cyclic garbage collector paused while they import and compute."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdlint.config_fields import read_config
from sdlint.model import oracle
from sdlint.model.runtime import collector_paused
from sdlint.model.verdict import INVALID_CONFIG, ConfigProblem
from tests.verdicts import BASE_SIGNATURE, TINY_ROBERTA


@pytest.fixture
def collector() -> Iterator[None]:
    """The collector as the test found it, whatever the test does to it."""
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


def _in_generation(obj: object, generation: int) -> bool:
    return any(o is obj for o in gc.get_objects(generation=generation))


def test_collector_off_inside_and_on_after(collector: None) -> None:
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
        made: list[list[int]] = [[] for _ in range(3)]
    assert gc.isenabled()
    # What the block made joined the oldest generation: no young pass walks it.
    assert _in_generation(made, 2) and not _in_generation(made, 0)
    assert gc.get_freeze_count() == 0


def test_collector_off_before_stays_off(collector: None) -> None:
    gc.disable()
    with collector_paused():
        made: list[Any] = []
    assert not gc.isenabled()
    assert not _in_generation(made, 2)  # left where it was: nothing moved


def test_objects_the_process_froze_stay_frozen(collector: None) -> None:
    gc.enable()
    gc.freeze()
    frozen = gc.get_freeze_count()
    with collector_paused():
        pass
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_collector_off_after_an_exception(collector: None) -> None:
    gc.enable()
    with pytest.raises(KeyError), collector_paused():
        raise KeyError("x")
    assert gc.isenabled()


@pytest.mark.model
def test_the_model_oracle_imports_and_computes_with_the_collector_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collector: None
) -> None:
    """torch, transformers and the model computation run inside the pause; the collector is on
    again once the verdict is made."""
    seen: list[bool] = []

    def record(*args: Any) -> ConfigProblem:
        seen.append(gc.isenabled())
        return ConfigProblem(INVALID_CONFIG, "recorded")

    monkeypatch.setattr(oracle, "_predict", record)
    (tmp_path / "config.json").write_text(json.dumps(TINY_ROBERTA))
    gc.enable()
    result = oracle.predict_load(read_config(tmp_path / "config.json"), BASE_SIGNATURE)
    assert result == ConfigProblem(INVALID_CONFIG, "recorded")
    assert seen == [False] and gc.isenabled()
