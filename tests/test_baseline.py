"""Baselines end to end in process: write today's findings, then report only new ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run
from tests.safetensors_files import TensorSpecs, write_sharded, write_tensors

SHARDS: dict[str, TensorSpecs] = {
    "model-00001-of-00002.safetensors": {"a.weight": ("F32", (4, 4))},
    "model-00002-of-00002.safetensors": {"b.weight": ("F32", (4,))},
}


def project(folder: Path, shards: dict[str, TensorSpecs]) -> Path:
    """A sharded checkpoint whose index says a wrong total_size (one SD004 finding) and lists a
    key `ghost.weight` its shard does not hold (another, about that tensor)."""
    weight_map = {name: shard for shard, held in shards.items() for name in held}
    weight_map["ghost.weight"] = "model-00001-of-00002.safetensors"
    return write_sharded(folder, shards, weight_map=weight_map, metadata={"total_size": 1})


def retrain(folder: Path, fill: int) -> None:
    """New weights of the same shapes: every shard rewritten with other data."""
    for shard, tensors in SHARDS.items():
        write_tensors(folder / shard, tensors, fill=fill)


@pytest.fixture
def checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    project(Path("model"), SHARDS)
    return Path("model")


def test_written_baseline_is_sorted_stable_and_relative(
    capsys: pytest.CaptureFixture[str], checkpoint: Path
) -> None:
    code, out, err = run(capsys, "check", "--write-baseline", "ci/baseline.json", str(checkpoint))
    assert (code, out) == (0, "")
    assert "Wrote 2 findings to the baseline ci/baseline.json" in err
    first = Path("ci/baseline.json").read_bytes()
    document = json.loads(first)
    assert document["sdlint-baseline"] == 1
    findings = document["findings"]
    assert [(f["code"], f["path"], f["tensor"]) for f in findings] == [
        ("SD004", "../model/model.safetensors.index.json", None),
        ("SD004", "../model/model.safetensors.index.json", "ghost.weight"),
    ]
    assert all(len(f["fingerprint"]) == 32 for f in findings)
    assert not any(str(Path.cwd()) in f["path"] for f in findings)  # no absolute paths
    # the same run writes the same bytes
    run(capsys, "check", "--write-baseline", "ci/baseline.json", str(checkpoint))
    assert Path("ci/baseline.json").read_bytes() == first


def test_baseline_suppresses_known_findings_also_after_retraining(
    capsys: pytest.CaptureFixture[str], checkpoint: Path
) -> None:
    code, out, _ = run(capsys, "check", str(checkpoint))
    assert code == 1 and out.count("SD004") == 2
    run(capsys, "check", "--write-baseline", "baseline.json", str(checkpoint))
    retrain(checkpoint, fill=7)
    code, out, err = run(capsys, "check", "--baseline", "baseline.json", str(checkpoint))
    assert code == 0, out
    assert "SD004" not in out
    assert "2 findings suppressed by the baseline baseline.json" in err


def test_a_new_finding_and_a_changed_key_set_are_reported(
    capsys: pytest.CaptureFixture[str], checkpoint: Path
) -> None:
    run(capsys, "check", "--write-baseline", "baseline.json", str(checkpoint))
    grown: dict[str, TensorSpecs] = {
        **SHARDS,
        "model-00002-of-00002.safetensors": {"b.weight": ("F32", (4,)), "c.weight": ("F32", (2,))},
    }
    project(checkpoint, grown)  # one more key: the checkpoint is not the one the baseline saw
    code, out, err = run(capsys, "check", "--baseline", "baseline.json", str(checkpoint))
    assert code == 1
    assert out.count("SD004") == 2
    assert "suppressed" not in err


def test_a_shape_change_makes_the_finding_new(
    capsys: pytest.CaptureFixture[str], checkpoint: Path
) -> None:
    run(capsys, "check", "--write-baseline", "baseline.json", str(checkpoint))
    reshaped: dict[str, TensorSpecs] = {
        **SHARDS,
        "model-00001-of-00002.safetensors": {"a.weight": ("F32", (4, 8))},
    }
    project(checkpoint, reshaped)
    code, out, _ = run(capsys, "check", "--baseline", "baseline.json", str(checkpoint))
    assert code == 1 and out.count("SD004") == 2


def test_stale_entries_are_listed_under_verbose(
    capsys: pytest.CaptureFixture[str], checkpoint: Path
) -> None:
    run(capsys, "check", "--write-baseline", "baseline.json", str(checkpoint))
    write_sharded(checkpoint, SHARDS)  # the index fixed: both entries match nothing now
    code, _, err = run(capsys, "check", "--baseline", "baseline.json", str(checkpoint))
    assert code == 0 and "stale" not in err
    code, _, err = run(capsys, "check", "--verbose", "--baseline", "baseline.json", str(checkpoint))
    assert code == 0
    stale = [line for line in err.splitlines() if "stale entry" in line]
    assert len(stale) == 2
    assert (
        "baseline.json: stale entry SD004 model/model.safetensors.index.json ghost.weight: "
        "matches no finding any more" in err
    )


def test_the_baseline_configuration_key(
    capsys: pytest.CaptureFixture[str], checkpoint: Path
) -> None:
    run(capsys, "check", "--write-baseline", "ci/baseline.json", str(checkpoint))
    Path("pyproject.toml").write_text('[tool.sdlint]\nbaseline = "ci/baseline.json"\n')
    code, _, err = run(capsys, "check", str(checkpoint))
    assert code == 0 and "2 findings suppressed" in err


def test_a_missing_or_foreign_baseline_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], checkpoint: Path
) -> None:
    code, _, err = run(capsys, "check", "--baseline", "absent.json", str(checkpoint))
    assert code == 2 and "cannot read the baseline absent.json" in err
    Path("other.json").write_text('{"findings": []}')
    code, _, err = run(capsys, "check", "--baseline", "other.json", str(checkpoint))
    assert code == 2 and "is not an sdlint baseline" in err


def test_a_baseline_key_that_is_not_a_path_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], checkpoint: Path
) -> None:
    Path("pyproject.toml").write_text("[tool.sdlint]\nbaseline = 3\n")
    code, _, err = run(capsys, "check", str(checkpoint))
    assert code == 2 and "`tool.sdlint.baseline` must be a file path" in err
