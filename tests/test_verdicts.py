"""Shared verdicts in process: record into a folder, then read them with a cold cache and no
model build (`--model-checks=cached`), from the command line or the `verdicts` key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli_helpers import run

pytest.importorskip("transformers")
pytestmark = pytest.mark.model

ROOT = Path(__file__).parent.parent


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "examples", "examples")
    return tmp_path


def cold_cache(monkeypatch: pytest.MonkeyPatch, where: Path) -> None:
    monkeypatch.setenv("SDLINT_CACHE_DIR", str(where))


def test_recorded_verdicts_are_read_in_cached_mode(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = [
        "examples/roberta-2-labels",
        "--model-config",
        "examples/roberta-5-labels/config.json",
    ]
    code, out, err = run(capsys, "check", "--record-verdicts", "shared", *target)
    assert code == 1 and "SD101" in out
    assert "Recorded 1 verdicts in shared" in err
    (entry,) = Path("shared").rglob("*.json")
    first = entry.read_bytes()
    assert str(repo) not in first.decode() and "/root" not in first.decode()  # no local paths
    run(capsys, "check", "--record-verdicts", "shared", *target)
    assert [p.read_bytes() for p in Path("shared").rglob("*.json")] == [first]  # deterministic

    cold_cache(monkeypatch, repo / "cold")
    code, out, err = run(capsys, "check", "--model-checks=cached", *target)
    assert code == 0 and "SD101" not in out  # the cold cache knows nothing
    assert "model checks skipped for 1 checkpoint: no recorded verdict" in out + err
    code, out, _ = run(capsys, "check", "--model-checks=cached", "--verdicts", "shared", *target)
    assert code == 1 and "SD101" in out
    Path("pyproject.toml").write_text('[tool.sdlint]\nverdicts = "shared"\n')
    code, out, _ = run(capsys, "check", "--model-checks=cached", *target)
    assert code == 1 and "SD101" in out


def test_a_config_change_the_folder_does_not_hold_gets_no_verdict(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(capsys, "check", "--record-verdicts", "shared", "examples/roberta-2-labels")
    config = Path("examples/roberta-2-labels/config.json")
    config.write_text(config.read_text().replace('"negative"', '"bad"'))
    cold_cache(monkeypatch, repo / "cold")
    code, out, err = run(
        capsys,
        "check",
        "--model-checks=cached",
        "--verdicts",
        "shared",
        "examples/roberta-2-labels",
    )
    assert code == 0 and "SD1" not in out
    assert (
        "model checks skipped for 1 checkpoint: no recorded verdict" in out + err
    )  # skipped, not passed


def test_record_with_model_checks_off_writes_nothing(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    code, _, err = run(
        capsys, "check", "--model-checks=off", "--record-verdicts", "shared", "examples"
    )
    assert code == 0 and "Recorded 0 verdicts" in err
    assert not Path("shared").exists()
