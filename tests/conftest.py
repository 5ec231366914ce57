"""Every test run gets its own verdict cache: tests never read or write the user's cache.

Hypothesis's timing checks (a per-example deadline, a too-slow data generation) are wall-clock
assertions: on a shared 2-core machine they fail by load, not by code, so they are off everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("sdlint", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("sdlint")


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
