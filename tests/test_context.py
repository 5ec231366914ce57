"""The read stage reads each config.json once and hands the parsed value on: the rules, the cache
key and the oracle all see the same bytes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

import sdlint.model
from sdlint.cli import main
from sdlint.config_fields import ConfigFile
from sdlint.model import LoadVerdict, TensorSpec
from tests.audit import opened_files
from tests.cli_helpers import TENSORS
from tests.safetensors_files import header_for, write_raw
from tests.verdicts import roberta_verdict

CLEAN = roberta_verdict()


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    header, size = header_for(TENSORS)
    write_raw(folder / "model.safetensors", header, b"\0" * size)
    (folder / "config.json").write_text(json.dumps({"model_type": "roberta", "num_labels": 2}))
    monkeypatch.setenv("SDLINT_CACHE_DIR", str(tmp_path / "cache"))
    return folder


@pytest.fixture
def oracle_calls(monkeypatch: pytest.MonkeyPatch) -> list[ConfigFile]:
    calls: list[ConfigFile] = []

    def fake(
        config: ConfigFile,
        tensors: Mapping[str, TensorSpec],
        architecture: str | None,
        index_keys: Sequence[str] | None = None,
    ) -> LoadVerdict:
        calls.append(config)
        return CLEAN

    monkeypatch.setattr(sdlint.model, "_predict", fake)
    return calls


def config_opens(opened: list[Path]) -> list[Path]:
    return [p for p in opened if p.name == "config.json"]


def test_a_warm_check_reads_config_json_once(folder: Path, oracle_calls: list[ConfigFile]) -> None:
    assert main(["check", str(folder)]) == 0  # fills the cache
    with opened_files() as opened:
        assert main(["check", str(folder)]) == 0
    assert config_opens(opened) == [folder / "config.json"]
    assert len(oracle_calls) == 1


def test_a_cold_check_reads_it_once_more_only_to_store_the_verdict(
    folder: Path, oracle_calls: list[ConfigFile]
) -> None:
    """transformers reads the file itself to build the config; before the verdict is stored the
    bytes are compared with the ones it was keyed by."""
    with opened_files() as opened:
        assert main(["check", str(folder)]) == 0
    assert config_opens(opened) == [folder / "config.json"] * 2
    [config] = oracle_calls
    assert config.document == {"model_type": "roberta", "num_labels": 2}


def test_the_oracle_gets_the_named_config_not_the_one_beside_the_weights(
    folder: Path, oracle_calls: list[ConfigFile], tmp_path: Path
) -> None:
    target = tmp_path / "target.json"
    target.write_text(json.dumps({"model_type": "bert"}))
    assert main(["check", str(folder), "--model-config", str(target)]) == 0
    [config] = oracle_calls
    assert config.path.local == target and config.document == {"model_type": "bert"}


def test_a_peft_adapter_is_not_checked_as_the_base_model(
    folder: Path, oracle_calls: list[ConfigFile], tmp_path: Path
) -> None:
    """adapter_model.safetensors beside a config.json holds adapter tensors: comparing them with
    the base model would report every base key missing."""
    (folder / "model.safetensors").rename(folder / "adapter_model.safetensors")
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    assert main(["check", str(folder)]) == 0
    assert oracle_calls == []
