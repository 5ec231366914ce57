"""hf:// paths and the repository listing, against the fake hub (tests/http_server.py)."""

from __future__ import annotations

import pytest

from sdlint.errors import UsageError
from sdlint.sources.hub import HubPath, parse_hub_path, resolve_repo
from tests.http_server import HUB_TOKEN, LocalServers, repo_sha


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hf://org/name", HubPath("org/name", None, "")),
        ("hf://org/name@v1.0", HubPath("org/name", "v1.0", "")),
        (
            "hf://org/name@refs%2Fpr%2F1/config.json",
            HubPath("org/name", "refs/pr/1", "config.json"),
        ),
        ("hf://org/name/sub/config.json", HubPath("org/name", None, "sub/config.json")),
    ],
)
def test_parse_hub_path(text: str, expected: HubPath) -> None:
    assert parse_hub_path(text) == expected


@pytest.mark.parametrize("text", ["hf://org", "hf:///name", "hf://datasets/org/name"])
def test_parse_hub_path_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        parse_hub_path(text)


def test_resolve_lists_files_with_sizes_at_one_commit(hub: LocalServers) -> None:
    repo = resolve_repo(parse_hub_path("hf://org/tiny"))
    folder = hub.root / "hub" / "org" / "tiny"
    assert repo.files == {
        "config.json": (folder / "config.json").stat().st_size,
        "model.safetensors": (folder / "model.safetensors").stat().st_size,
    }
    assert repo.sha == repo_sha(hub.root, "org", "tiny")
    assert (
        repo.url("model.safetensors") == f"{hub.base}/org/tiny/resolve/{repo.sha}/model.safetensors"
    )
    assert [r.path for r in hub.log.requests] == ["/api/models/org/tiny"]


def test_unknown_repository_and_revision(hub: LocalServers) -> None:
    with pytest.raises(UsageError, match="repository not found"):
        resolve_repo(parse_hub_path("hf://org/nothing"))
    with pytest.raises(UsageError, match="no revision 'v9'"):
        resolve_repo(parse_hub_path("hf://org/tiny@v9"))


def test_private_repository_needs_the_token(
    hub: LocalServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    (hub.root / "hub" / "org" / "tiny" / ".private").touch()
    with pytest.raises(UsageError, match="set HF_TOKEN") as refused:
        resolve_repo(parse_hub_path("hf://org/tiny"))
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    assert "model.safetensors" in resolve_repo(parse_hub_path("hf://org/tiny")).files
    assert HUB_TOKEN not in str(refused.value)


def test_offline_mode_is_a_clear_error(hub: LocalServers, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError, match="HF_HUB_OFFLINE is set"):
        resolve_repo(parse_hub_path("hf://org/tiny"))
    assert hub.log.requests == []
