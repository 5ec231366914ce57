"""Every test run gets its own verdict cache: tests never read or write the user's cache."""

from __future__ import annotations

import os
from collections.abc import Iterator

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
