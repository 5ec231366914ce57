"""Lookups made once per run (sdlint/memo.py): counted, and never stale, within a run or across
runs in one process (the language server's, a `--fix` run checking again after writing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import sdlint.config
from sdlint import memo
from sdlint.engine import check_paths
from sdlint.model.cache import CACHE_DIR_ENV
from tests.cli_helpers import truncated
from tests.safetensors_files import write_tensors


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))


def counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[object]:
    """Calls of `owner.name` from now on, by their first argument."""
    calls: list[object] = []
    real = getattr(owner, name)

    def spy(first: object, *args: Any, **kwargs: Any) -> Any:
        calls.append(first)
        return real(first, *args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return calls


def codes(report: Any) -> list[str]:
    return [f"{d.path}:{d.code}" for d in report.diagnostics]


def test_outside_a_run_nothing_is_remembered() -> None:
    assert memo.table("anything") is None
    with memo.run():
        table = memo.table("anything")
        assert table == {} and memo.table("anything") is table
        with memo.run():  # a run inside a run (a fix checking again) starts afresh
            assert memo.table("anything") == {}
        assert memo.table("anything") is table
    assert memo.table("anything") is None


def test_one_configuration_lookup_per_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Six checkpoints below one pyproject.toml: it is read once by the run, not once each."""
    Path("pyproject.toml").write_text('[tool.sdlint]\nignore = ["SD003"]\n')
    for i in range(6):
        truncated(Path(f"models/run-{i}/model.safetensors"))
    read = counting(monkeypatch, sdlint.config, "_has_sdlint_table")
    assert codes(check_paths(["models"])) == []  # SD003 ignored for each
    assert read == [Path("pyproject.toml").resolve()]


def test_folders_with_their_own_configuration_keep_it() -> None:
    """The nearest configuration file wins for each folder, whichever folder the run looked up
    first: a nested one is not hidden by its parent's, nor does it leak to its siblings."""
    Path("pyproject.toml").write_text('[tool.sdlint]\nignore = ["SD003"]\n')
    for name in ("a", "b", "c", "b/inner"):
        truncated(Path(name) / "model.safetensors")
    Path("b/.sdlint.toml").write_text("ignore = []\n")
    Path("c/pyproject.toml").write_text("[project]\nname = 'not ours'\n")
    expected = ["b/inner/model.safetensors:SD003", "b/model.safetensors:SD003"]
    assert codes(check_paths(["."])) == expected
    assert codes(check_paths(["c", "b/inner", "a", "b"])) == expected


def test_each_run_looks_again() -> None:
    """A file changed between two runs in one process is read again by the second."""
    truncated(Path("model.safetensors"))
    assert codes(check_paths(["."])) == ["model.safetensors:SD003"]
    write_tensors(Path("model.safetensors"), {"w": ("F32", (2,))})
    Path("sdlint.toml").write_text('ignore = ["SD003"]\n')
    assert codes(check_paths(["."])) == []
