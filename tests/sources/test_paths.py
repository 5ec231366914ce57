"""What a command-line PATH names: a local Path, or a URL kept as its text."""

from __future__ import annotations

from pathlib import Path

from sdlint.engine import Settings
from sdlint.sources import path_or_url


def test_a_url_stays_its_text_and_anything_else_is_a_path() -> None:
    # a Path folds `//`: the URL would have to be guessed back from `https:/host/a`
    assert path_or_url("https://host/a//b.safetensors") == "https://host/a//b.safetensors"
    assert path_or_url("hf://org/name@v1") == "hf://org/name@v1"
    assert path_or_url("models/m.safetensors") == Path("models/m.safetensors")
    assert path_or_url(Path("https:/host/a")) == Path("https:/host/a")  # a Path stays local


def test_settings_keep_a_remote_model_config_as_its_url() -> None:
    assert Settings(model_config="hf://org/name").model_config == "hf://org/name"
    assert Settings(model_config="cfg/config.json").model_config == Path("cfg/config.json")
