"""Every test run gets its own verdict cache: tests never read or write the user's cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    previous = os.environ.get("SDLINT_CACHE_DIR")
    os.environ["SDLINT_CACHE_DIR"] = str(tmp_path_factory.mktemp("sdlint-cache"))
    yield
    if previous is None:
        os.environ.pop("SDLINT_CACHE_DIR", None)
    else:
        os.environ["SDLINT_CACHE_DIR"] = previous


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a fresh folder (paths in the output are relative) with colour left to the test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
