"""`--jobs N`: many checkpoints read and their models computed by N processes, with the output
byte for byte that of `--jobs 1`, and each distinct model computed once across the processes."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import sdlint.model
import sdlint.parallel
from sdlint.config_fields import ConfigFile
from sdlint.model import LoadVerdict, Mismatch, TensorSpec
from sdlint.model.cache import CACHE_DIR_ENV
from sdlint.parallel import chunks, spread
from tests.cli_helpers import run
from tests.safetensors_files import write_tensors

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork"), reason="the workers are forked on Linux and spawned elsewhere"
)

CONFIG = {"model_type": "bert", "architectures": ["BertForSequenceClassification"]}


def _square(n: int) -> tuple[int, int]:
    return n * n, os.getpid()


def test_spread_keeps_the_order_and_uses_other_processes() -> None:
    results = spread(_square, list(range(40)), 3)
    assert [square for square, _ in results] == [n * n for n in range(40)]
    assert os.getpid() not in {pid for _, pid in results}
    assert spread(_square, [3], 3) == [(9, os.getpid())]  # one item: no process started


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_chunks_cover_the_items_in_order(count: int) -> None:
    items = list(range(10))
    parts = chunks(items, count)
    assert len(parts) == min(count, 10) and all(parts)
    assert [i for part in parts for i in part] == items
    assert chunks([], 3) == [[]]


class ComputationLog:
    """Stands in for the oracle in every process: one file per computation (the workers' counts
    do not come back to the test process), the verdict a head mismatch for 5-label configs."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir()

    def __call__(
        self,
        config: ConfigFile,
        tensors: Mapping[str, TensorSpec],
        architecture: str | None,
        index_keys: object = None,
    ) -> LoadVerdict:
        (self.folder / f"{os.getpid()}-{len(list(self.folder.iterdir()))}").write_bytes(config.raw)
        labels = config.data.get("num_labels", 2)
        mismatched = tuple(
            Mismatch(name, name, spec.shape, (labels, *spec.shape[1:]), in_base_model=False)
            for name, spec in sorted(tensors.items())
            if name.startswith("classifier.") and spec.shape[0] != labels
        )
        return LoadVerdict(
            architecture="BertForSequenceClassification",
            architecture_source="config",
            model_type="bert",
            base_model_prefix="bert",
            has_base_model=True,
            transformers_version="5.24.0",
            dtype="float32",
            config_dtype=None,
            mismatched=mismatched,
        )

    @property
    def computations(self) -> list[bytes]:
        return [p.read_bytes() for p in self.folder.iterdir()]


def many_checkpoints(folder: Path, count: int) -> None:
    """`count` fine-tunes in one tree: 3 distinct configs, one broken file, one lone shard."""
    for i in range(count):
        labels = 2 + i % 3
        tensors: dict[str, tuple[str, tuple[int, ...]]] = {
            "bert.embeddings.word_embeddings.weight": ("F32", (16, 8)),
            "classifier.weight": ("F32", (2, 8)),
            "classifier.bias": ("F32", (2,)),
        }
        model = folder / f"run-{i:02d}"
        write_tensors(model / "model.safetensors", tensors)
        (model / "config.json").write_text(json.dumps({**CONFIG, "num_labels": labels}))
    (folder / "run-00" / "model.safetensors").write_bytes(b"\x08" + bytes(7) + b"not json")


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ComputationLog:
    fake = ComputationLog(tmp_path / "computations")
    monkeypatch.setattr(sdlint.model, "_predict", fake)
    monkeypatch.setattr(sdlint.parallel, "HEADERS_FROM", 4)  # read 12 checkpoints in processes
    monkeypatch.setattr(sdlint.parallel, "VERDICTS_FROM", 2)  # and build 3 models in processes
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    return fake


def spy_on_pools(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    started: list[int] = []
    real = sdlint.parallel._pool

    def pool(workers: int) -> Any:
        started.append(workers)
        return real(workers)

    monkeypatch.setattr(sdlint.parallel, "_pool", pool)
    return started


@pytest.mark.parametrize("output_format", ["text", "json"])
def test_jobs_change_nothing_in_the_output(
    log: ComputationLog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    output_format: str,
) -> None:
    many_checkpoints(tmp_path / "models", 12)
    monkeypatch.chdir(tmp_path)
    argv = ["check", "models", "--no-cache", "--output-format", output_format, "--isolated"]
    serial = run(capsys, *argv, "--jobs", "1")
    assert len(log.computations) == 3  # one per distinct config, also with --no-cache
    started = spy_on_pools(monkeypatch)
    parallel = run(capsys, *argv, "--jobs", "3")
    assert started == [3, 3]  # headers, then the model computations
    assert parallel == serial
    assert serial[0] == 1 and "SD101" in serial[1] and "SD001" in serial[1]


def test_each_distinct_model_is_computed_once_across_processes(
    log: ComputationLog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    many_checkpoints(tmp_path / "models", 12)
    monkeypatch.chdir(tmp_path)
    started = spy_on_pools(monkeypatch)
    code, out, _ = run(capsys, "check", "models", "--jobs", "2", "--isolated")
    assert code == 1
    assert started == [2, 2]
    configs = sorted(json.loads(raw)["num_labels"] for raw in log.computations)
    assert configs == [2, 3, 4]  # 11 readable checkpoints, 3 distinct configs
    # The workers wrote the disk cache: a second run computes nothing and says the same.
    again = run(capsys, "check", "models", "--jobs", "2", "--isolated")
    assert again == (code, out, "") and len(log.computations) == 3


def test_one_checkpoint_starts_no_process(
    log: ComputationLog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    many_checkpoints(tmp_path / "models", 2)
    monkeypatch.chdir(tmp_path)
    started = spy_on_pools(monkeypatch)
    run(capsys, "check", "models/run-01", "--jobs", "4", "--isolated")
    assert started == [] and len(log.computations) == 1


def test_a_cache_that_cannot_be_written_is_noted_alike(
    log: ComputationLog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The workers could not store their verdicts: the run's note says so, as with --jobs 1."""
    import errno

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    many_checkpoints(tmp_path / "models", 12)
    monkeypatch.chdir(tmp_path)
    started = spy_on_pools(monkeypatch)
    serial = run(capsys, "check", "models", "--jobs", "1", "--isolated")
    parallel = run(capsys, "check", "models", "--jobs", "3", "--isolated")
    assert started == [3, 3]
    assert "cannot be written" in serial[1]
    assert parallel == serial
