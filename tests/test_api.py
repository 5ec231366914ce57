"""The library API the CLI is a thin layer over."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import sdlint
from tests.cli_helpers import truncated

ROOT = Path(__file__).parent.parent


def test_check_paths_returns_diagnostics(tmp_path: Path) -> None:
    truncated(tmp_path / "model.safetensors")
    report = sdlint.check_paths([tmp_path], sdlint.Settings(select=("SD0",)))
    assert [(d.code, d.severity.value) for d in report.diagnostics] == [("SD003", "error")]
    assert isinstance(report.diagnostics[0], sdlint.Diagnostic)
    assert report.files_checked == 1


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError):
        _ = sdlint.nothing_here


def test_settings_take_a_single_code_and_a_string_path(tmp_path: Path) -> None:
    truncated(tmp_path / "model.safetensors")
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text("{}")
    settings = sdlint.Settings(ignore="SD003", select="SD0", model_config=str(tmp_path / "cfg"))
    assert settings.ignore == ("SD003",) and settings.select == ("SD0",)
    assert settings.model_config == tmp_path / "cfg"
    assert sdlint.check_paths([str(tmp_path)], settings).diagnostics == ()
    assert sdlint.Settings(extend_select="SD105, SD1").extend_select == ("SD105", "SD1")


def test_errors_and_fixes_are_exported() -> None:
    for name in ("UsageError", "SdlintError", "FixError", "RewriteError", "InternalError"):
        assert issubclass(getattr(sdlint, name), Exception)
    assert callable(sdlint.fix_paths)
    assert {"Settings", "check_paths", "fix_paths", "UsageError"} <= set(dir(sdlint))
    assert set(dir(sdlint)) == set(sdlint.__all__)


def test_a_missing_model_config_is_a_usage_error(tmp_path: Path) -> None:
    truncated(tmp_path / "model.safetensors")
    with pytest.raises(sdlint.UsageError, match=r"--model-config: .*nope.json does not exist"):
        sdlint.check_paths([tmp_path], sdlint.Settings(model_config=tmp_path / "nope.json"))
    with pytest.raises(
        sdlint.UsageError, match=r"--model-config: .* is a folder without a config.json"
    ):
        sdlint.check_paths([tmp_path], sdlint.Settings(model_config=tmp_path))


def test_the_documented_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import re

    from tests.safetensors_files import write_tensors

    (example,) = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SDLINT_CACHE_DIR", str(tmp_path / "cache"))
    truncated(Path("models/a/model.safetensors"))
    write_tensors(Path("models/b/model.safetensors"), {"module.w": ("F32", (2,))})
    exec(compile(example, "docs/api.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("models/a/model.safetensors:1:1: SD003 ")
    assert out[1].startswith("models/b/model.safetensors:1:1: SD106 ")
    assert out[2:] == [
        "['models/b/model.safetensors'] 0",
        "--model-config: missing.json does not exist",
    ]


def test_unsaved_config_texts_are_read_instead_of_the_files(tmp_path: Path) -> None:
    """What the language server passes: an editor's config.json text stands in for the file, for
    this call only (the next one reads the disk again)."""
    import json

    from tests.safetensors_files import write_tensors

    write_tensors(tmp_path / "model.safetensors", {"a.weight": ("F32", (2,))})
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "roberta"}))
    diffusers = json.dumps({"_class_name": "UNet2DModel", "_diffusers_version": "0.30.0"})

    def notes(**settings: Any) -> str:
        return " ".join(sdlint.check_paths([tmp_path], sdlint.Settings(**settings)).notes)

    assert "no recorded verdict" in notes(model_checks="cached")
    edited = notes(model_checks="cached", unsaved={config: diffusers.encode()})
    assert "not a transformers model" in edited and "no recorded verdict" not in edited
    assert "no recorded verdict" in notes(model_checks="cached")
