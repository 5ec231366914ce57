"""End to end with the real pre-commit: a user repository whose .pre-commit-config.yaml points at
this repository's hooks, and real `git commit`s that pass or are blocked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pre_commit")
pytest.importorskip("transformers")

from tests.tiny_models import edit_config, save_roberta

pytestmark = [pytest.mark.slow, pytest.mark.model]
ROOT = Path(__file__).parent.parent
VENV_BIN = Path(sys.executable).parent


def git(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=check
    )


@pytest.fixture(scope="module")
def hooks_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This repository as pre-commit would clone it: the working tree (uncommitted changes
    included) committed into a scratch git repository."""
    source = tmp_path_factory.mktemp("sdlint-hooks")
    listed = git(ROOT, "ls-files", "-co", "--exclude-standard").stdout.splitlines()
    for name in listed:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    git(source, "init", "-q")
    git(source, "add", "-A")
    git(source, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "hooks")
    return source, git(source, "rev-parse", "HEAD").stdout.strip()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("pre-commit-home")  # shared: the hook env is built once
    return {
        **os.environ,
        "PRE_COMMIT_HOME": str(home),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "SDLINT_CACHE_DIR": str(tmp_path_factory.mktemp("cache")),
        "NO_COLOR": "1",
    }


def make_repo(repo: Path, hooks_repo: tuple[Path, str], env: dict[str, str], hooks: str) -> Path:
    """A git repository whose .pre-commit-config.yaml uses this repository's `hooks` (YAML list
    items), with the pre-commit git hook installed."""
    source, rev = hooks_repo
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {source}\n  rev: {rev}\n  hooks:\n{hooks}"
    )
    subprocess.run(
        [sys.executable, "-m", "pre_commit", "install"],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
    )
    return repo


@pytest.fixture
def user_repo(tmp_path: Path, hooks_repo: tuple[Path, str], env: dict[str, str]) -> Path:
    repo = make_repo(
        tmp_path / "project", hooks_repo, env, "  - id: sdlint\n  - id: sdlint-model\n"
    )
    git(repo, "add", ".pre-commit-config.yaml")
    git(repo, "commit", "-qm", "config", "--no-verify", env=env)
    return repo


def commit(repo: Path, env: dict[str, str], *paths: str) -> subprocess.CompletedProcess[str]:
    git(repo, "add", *paths)
    return git(repo, "commit", "-m", "weights", env=env, check=False)


def test_good_checkpoint_commits(user_repo: Path, env: dict[str, str]) -> None:
    save_roberta(user_repo / "model")
    result = commit(user_repo, env, "model")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sdlint (checkpoint integrity)" in result.stdout + result.stderr
    assert "sdlint (checkpoint against its config)" in result.stdout + result.stderr


def test_head_mismatch_blocks_the_commit(user_repo: Path, env: dict[str, str]) -> None:
    save_roberta(user_repo / "model")
    five = {str(i): f"L{i}" for i in range(5)}
    edit_config(
        user_repo / "model" / "config.json",
        id2label=five,
        label2id={v: int(k) for k, v in five.items()},
    )
    result = commit(user_repo, env, "model")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "SD101" in output and "checkpoint head has 2 labels, config has num_labels=5" in output
    assert git(user_repo, "log", "--oneline").stdout.count("\n") == 1  # nothing was committed

    # only the config changes in the next commit: it is still checked against the weights beside it
    git(user_repo, "reset", "-q")
    weights_only = commit(
        user_repo, env, "model/model.safetensors"
    )  # weights alone; config.json stays untracked on disk
    assert (
        "SD101" in weights_only.stdout + weights_only.stderr
    )  # the weights' config.json is on disk


def test_lfs_pointer_is_named(user_repo: Path, env: dict[str, str]) -> None:
    (user_repo / "model.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 498001234\n"
    )
    result = commit(user_repo, env, "model.safetensors")
    assert result.returncode != 0
    assert "SD005 file is a Git LFS pointer, not the weights" in result.stdout + result.stderr


def test_fix_hook_modifies_and_blocks_then_passes(
    tmp_path: Path, hooks_repo: tuple[Path, str], env: dict[str, str]
) -> None:
    from tests.tiny_models import edit_weights

    repo = make_repo(
        tmp_path / "fixing", hooks_repo, env, "  - id: sdlint-model\n    args: [--fix]\n"
    )
    save_roberta(repo / "model")
    edit_weights(
        repo / "model" / "model.safetensors", lambda t: {"module." + k: v for k, v in t.items()}
    )
    first = commit(repo, env, ".")
    output = first.stdout + first.stderr
    assert first.returncode != 0
    assert "files were modified by this hook" in output
    with (repo / "model" / "model.safetensors").open("rb") as f:
        assert b"module." not in f.read(4096)  # the header no longer carries the prefix
    second = commit(repo, env, ".")
    assert second.returncode == 0, second.stdout + second.stderr


def test_light_hook_reports_recorded_model_verdicts(
    tmp_path: Path, hooks_repo: tuple[Path, str], env: dict[str, str]
) -> None:
    """The light hook's environment has no torch: it reports SD101 once a run with transformers
    has recorded the verdict for these exact inputs, and skips the model checks before that."""
    repo = make_repo(tmp_path / "light", hooks_repo, env, "  - id: sdlint\n")
    save_roberta(repo / "model")
    five = {str(i): f"L{i}" for i in range(5)}
    edit_config(
        repo / "model" / "config.json", id2label=five, label2id={v: int(k) for k, v in five.items()}
    )
    isolated = {**env, "SDLINT_CACHE_DIR": str(tmp_path / "cache")}
    git(repo, "add", "model")
    unrecorded = subprocess.run(
        [
            sys.executable,
            "-m",
            "pre_commit",
            "run",
            "--files",
            *(str(p.relative_to(repo)) for p in (repo / "model").iterdir()),
        ],
        cwd=repo,
        env=isolated,
        capture_output=True,
        text=True,
        check=False,
    )
    assert unrecorded.returncode == 0, unrecorded.stdout + unrecorded.stderr  # nothing recorded yet
    recorder = subprocess.run(
        [str(VENV_BIN / "sdlint"), "check", "-q", str(repo / "model")],
        env=isolated,
        capture_output=True,
        text=True,
        check=False,
    )
    assert recorder.returncode == 1 and "SD101" in recorder.stdout
    blocked = commit(repo, isolated, "model")
    assert blocked.returncode != 0
    assert "SD101" in blocked.stdout + blocked.stderr


def test_shared_verdicts_reach_another_clones_light_hook(
    tmp_path: Path, hooks_repo: tuple[Path, str], env: dict[str, str]
) -> None:
    """One clone records verdicts into a committed folder (as CI or the sdlint-model hook would);
    another clone, with a cold cache and only the light hook (no torch), is blocked by a label
    change that matches a recorded verdict. A change no verdict matches is not reported."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    recorder_env = {**env, "SDLINT_CACHE_DIR": str(tmp_path / "cache-a")}
    a = make_repo(tmp_path / "a", hooks_repo, recorder_env, "  - id: sdlint\n    verbose: true\n")
    (a / "pyproject.toml").write_text('[tool.sdlint]\nverdicts = ".sdlint/verdicts"\n')
    save_roberta(a / "model")
    config = a / "model" / "config.json"
    trained = config.read_bytes()

    def record() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "sdlint"), "check", "--record-verdicts", ".sdlint/verdicts", "model"],
            cwd=a,
            env=recorder_env,
            capture_output=True,
            text=True,
            check=False,
        )

    assert record().returncode == 0
    five = {str(i): f"L{i}" for i in range(5)}
    edit_config(config, id2label=five, label2id={v: int(k) for k, v in five.items()})
    assert "SD101" in record().stdout  # the 5-label config's verdict is recorded too
    config.write_bytes(trained)
    assert len(list((a / ".sdlint" / "verdicts").rglob("*.json"))) == 2
    first = commit(a, recorder_env, ".")
    assert first.returncode == 0, first.stdout + first.stderr
    git(a, "push", "-q", str(origin), "HEAD:main")

    b = tmp_path / "b"
    git(tmp_path, "clone", "-q", "-b", "main", str(origin), str(b))
    user_env = {**env, "SDLINT_CACHE_DIR": str(tmp_path / "cache-b")}  # cold: nothing local
    subprocess.run(
        [sys.executable, "-m", "pre_commit", "install"],
        cwd=b,
        env=user_env,
        check=True,
        capture_output=True,
    )
    edit_config(
        b / "model" / "config.json", id2label=five, label2id={v: int(k) for k, v in five.items()}
    )
    blocked = commit(b, user_env, "model/config.json")
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, output
    assert "SD101" in output and "checkpoint head has 2 labels, config has num_labels=5" in output

    three = {str(i): f"L{i}" for i in range(3)}
    edit_config(
        b / "model" / "config.json", id2label=three, label2id={v: int(k) for k, v in three.items()}
    )
    unmatched = commit(b, user_env, "model/config.json")
    output = unmatched.stdout + unmatched.stderr
    assert unmatched.returncode == 0, output
    assert "SD101" not in output  # no verdict: never guessed
    assert "model checks skipped for 1 checkpoint: no recorded verdict for this config" in output


def test_deleting_a_shard_blocks_the_commit(
    tmp_path: Path, hooks_repo: tuple[Path, str], env: dict[str, str]
) -> None:
    """pre-commit passes no deleted file: the hooks always run and ask git for the staged
    deletions, so the index of a deleted shard is checked; a commit with no weights passes."""
    from tests.safetensors_files import write_sharded

    repo = make_repo(tmp_path / "shards", hooks_repo, env, "  - id: sdlint\n")
    write_sharded(
        repo / "m",
        {
            "model-00001-of-00002.safetensors": {"a.weight": ("F32", (2, 2))},
            "model-00002-of-00002.safetensors": {"b.weight": ("F32", (3,))},
        },
    )
    first = commit(repo, env, ".")
    assert first.returncode == 0, first.stdout + first.stderr
    git(repo, "rm", "-q", "m/model-00002-of-00002.safetensors")
    (repo / "notes.txt").write_text("unrelated, with an unstaged change stashed by pre-commit\n")
    git(repo, "add", "notes.txt")
    (repo / "notes.txt").write_text("changed after staging\n")
    blocked = git(repo, "commit", "-m", "drop a shard", env=env, check=False)
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, output
    assert "SD004 shard model-00002-of-00002.safetensors is listed in the index" in output
    git(repo, "reset", "-q", "HEAD", "m")
    git(repo, "checkout", "--", "m")
    unrelated = git(repo, "commit", "-m", "notes", env=env, check=False)
    assert unrelated.returncode == 0, unrelated.stdout + unrelated.stderr


def test_a_variant_sharded_checkpoint_commits_and_its_index_is_checked(
    user_repo: Path, env: dict[str, str]
) -> None:
    """`save_pretrained(variant="fp16", max_shard_size=...)`: the shards are checked with their
    index, model.safetensors.index.fp16.json (each shard was checked alone: hundreds of SD103
    blocked the commit), and a commit that changes only that index runs the hooks on it."""
    save_roberta(user_repo / "model", variant="fp16", max_shard_size="20KB")
    assert len(list((user_repo / "model").glob("model.fp16-*.safetensors"))) > 2
    result = commit(user_repo, env, "model")
    assert result.returncode == 0, result.stdout + result.stderr
    index = user_repo / "model" / "model.safetensors.index.fp16.json"
    content = json.loads(index.read_text())
    dropped = sorted(content["weight_map"])[0]
    del content["weight_map"][dropped]
    index.write_text(json.dumps(content, indent=2))
    blocked = commit(user_repo, env, "model/model.safetensors.index.fp16.json")
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, output
    assert "model/model.safetensors.index.fp16.json:1:1: SD004 " in output
    assert f"`{dropped}` in model.fp16-" in output
