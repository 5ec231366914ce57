"""The local servers and the fixture files they serve (see tests/http_server.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import TENSORS
from tests.http_server import LocalServers, serve
from tests.safetensors_files import encode_header, header_for, write_raw

SPARSE_SIZE = 140 * 10**9  # a 140 GB file that takes no disk space


def sparse_checkpoint(path: Path, size: int = SPARSE_SIZE) -> Path:
    """A valid safetensors file of `size` bytes: a real header, then a hole for the data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header_len = 0
    for _ in range(3):  # the header's length depends on the shape, which depends on its length
        data = size - 8 - header_len
        header, _ = header_for({"embed.weight": ("F32", (data // 4,))})
        header_len = len(encode_header(header))
    assert (size - 8 - header_len) % 4 == 0
    write_raw(path, header)
    with path.open("r+b") as f:
        f.truncate(size)
    return path


def many_tensors(path: Path, count: int) -> Path:
    """A valid file whose header is long (about 90 bytes per tensor)."""
    header, size = header_for({f"layers.{i}.weight": ("F16", (2,)) for i in range(count)})
    return write_raw(path, header, b"\0" * size)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[LocalServers]:
    root = tmp_path / "served"
    root.mkdir()
    yield from serve(root)


@pytest.fixture
def hub(servers: LocalServers, monkeypatch: pytest.MonkeyPatch) -> LocalServers:
    monkeypatch.setenv("HF_ENDPOINT", servers.base)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(servers.root / "hf-home"))  # no saved login
    # huggingface_hub froze its endpoint when first imported; its user-agent code fetches an agent
    # registry from that endpoint: keep everything on the local servers.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", servers.base)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    repo = servers.root / "hub" / "org" / "tiny"
    header, size = header_for(TENSORS)
    write_raw(repo / "model.safetensors", header, b"\0" * size)
    (repo / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return servers
