"""`check --staged-deletions`: a commit that deletes a shard is checked through its index, with
real git (pre-commit passes no deleted file; tests/test_pre_commit.py runs the hooks)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli_helpers import run
from tests.safetensors_files import TensorSpecs, write_sharded

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

SHARDS: dict[str, TensorSpecs] = {
    "model-00001-of-00002.safetensors": {"a.weight": ("F32", (2, 2))},
    "model-00002-of-00002.safetensors": {"b.weight": ("F32", (3,))},
}
SECOND = "m/model-00002-of-00002.safetensors"


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with a committed two-shard checkpoint in m/, as the current folder."""
    git(tmp_path, "init", "-q")
    write_sharded(tmp_path / "m", SHARDS)
    git(tmp_path, "add", "m")
    git(tmp_path, "commit", "-qm", "weights")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("how", [["rm", "-q"], ["rm", "-q", "--cached"], ["mv"]])
def test_a_deleted_shard_fails_on_its_index(
    repo: Path, capsys: pytest.CaptureFixture[str], how: list[str]
) -> None:
    """`git rm`, `git rm --cached` (the file stays on disk, out of the commit) and `git mv` (the
    index still names the old name) all leave the commit without the shard."""
    git(repo, *how, SECOND, *(["m/renamed.safetensors"] if how == ["mv"] else []))
    code, out, _ = run(capsys, "check", "--staged-deletions")
    assert code == 1
    assert (
        "m/model.safetensors.index.json:1:1: SD004 shard model-00002-of-00002.safetensors is "
        "listed in the index (1 tensor) but the commit deletes it" in out
    )
    on_disk = how == ["rm", "-q", "--cached"]
    assert run(capsys, "check", "m")[0] == (0 if on_disk else 1)  # git not asked: the disk


def test_a_deleted_variant_shard_fails_on_its_variant_index(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`save_pretrained(variant="fp16")` names: the shard's owner is the variant's index."""
    shards = {name.replace("model-", "model.fp16-"): specs for name, specs in SHARDS.items()}
    write_sharded(repo / "v", shards, index_name="model.safetensors.index.fp16.json")
    git(repo, "add", "v")
    git(repo, "commit", "-qm", "fp16 weights")
    git(repo, "rm", "-q", "v/model.fp16-00002-of-00002.safetensors")
    code, out, _ = run(capsys, "check", "--staged-deletions")
    assert code == 1
    assert (
        "v/model.safetensors.index.fp16.json:1:1: SD004 shard model.fp16-00002-of-00002.safetensors"
        " is listed in the index (1 tensor) but the commit deletes it" in out
    )


def test_from_a_subfolder(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    git(repo, "rm", "-q", SECOND)
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    code, out, _ = run(capsys, "check", "--staged-deletions")
    assert code == 1 and "../m/model.safetensors.index.json:1:1: SD004" in out


def test_deleting_the_whole_checkpoint_or_other_files_passes(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "check", "--staged-deletions") == (0, "", "")  # nothing deleted, no PATH
    (repo / "notes.txt").write_text("x")
    git(repo, "add", "notes.txt")
    git(repo, "commit", "-qm", "notes")
    git(repo, "rm", "-q", "notes.txt")
    assert run(capsys, "check", "--staged-deletions")[0] == 0
    git(repo, "rm", "-q", "-r", "m")
    assert run(capsys, "check", "--staged-deletions")[0] == 0


def test_an_index_rewritten_without_the_shard_passes(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dropping a shard together with its entries in the index is a consistent commit."""
    git(repo, "rm", "-q", SECOND)
    write_sharded(
        repo / "m", {"model-00001-of-00002.safetensors": SHARDS["model-00001-of-00002.safetensors"]}
    )
    git(repo, "add", "m")
    code, out, _ = run(capsys, "check", "--staged-deletions", "m/model.safetensors.index.json")
    assert code == 0, out


def test_outside_a_repository_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    code, _, err = run(capsys, "check", "--staged-deletions")
    assert code == 2 and "--staged-deletions needs a git repository" in err


def test_no_path_without_staged_deletions_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "check")
    assert code == 2 and "PATH" in err
