"""The library API the CLI is a thin layer over."""

from __future__ import annotations

from pathlib import Path

import pytest

import sdlint
from tests.cli_helpers import truncated


def test_check_paths_returns_diagnostics(tmp_path: Path) -> None:
    truncated(tmp_path / "model.safetensors")
    report = sdlint.check_paths([tmp_path], sdlint.Settings(select=("SD0",)))
    assert [(d.code, d.severity.value) for d in report.diagnostics] == [("SD003", "error")]
    assert isinstance(report.diagnostics[0], sdlint.Diagnostic)
    assert report.files_checked == 1


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError):
        _ = sdlint.nothing_here
