"""8 `sdlint check` processes started at once on the same folders with a cold shared cache (what
pre-commit's parallel runs and several editors do) report what a sequential run reports, and leave
a cache a warm run can answer from without importing torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.tiny_models import edit_config, save_roberta

pytestmark = pytest.mark.model
PROCESSES = 8
WARM = """
import sys
from sdlint.cli import main
code = main(sys.argv[1:])
sys.stderr.write("heavy:" + ",".join(m for m in ("torch", "transformers") if m in sys.modules))
raise SystemExit(code)
"""


def sdlint(cache: Path, *argv: str, code: str | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SDLINT_CACHE_DIR": str(cache)}
    command = ["-c", code, *argv] if code else ["-m", "sdlint", *argv]
    return subprocess.Popen(
        [sys.executable, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )


def findings(output: bytes) -> list[tuple[str, str]]:
    return sorted((d["code"], d["message"]) for d in json.loads(output))


def test_parallel_cold_runs_agree_with_a_sequential_run(tmp_path: Path) -> None:
    clean = save_roberta(tmp_path / "clean")
    wrong = save_roberta(tmp_path / "wrong")
    labels = {str(i): f"LABEL_{i}" for i in range(5)}
    edit_config(wrong / "config.json", id2label=labels)  # SD101: the head has 2 labels
    argv = ("check", str(clean), str(wrong), "--output-format", "json", "--isolated")

    sequential = sdlint(tmp_path / "sequential-cache", *argv)
    expected_out, expected_err = sequential.communicate(timeout=600)
    assert sequential.returncode == 1, expected_err
    expected = findings(expected_out)
    assert any(code == "SD101" for code, _ in expected)

    shared = tmp_path / "shared-cache"
    runs = [sdlint(shared, *argv) for _ in range(PROCESSES)]  # started together, cache cold
    for run in runs:
        out, err = run.communicate(timeout=900)
        assert run.returncode == 1, err
        assert findings(out) == expected
    entries = sorted(shared.rglob("*"))
    assert not [p for p in entries if p.name.endswith(".tmp")]  # no half-written entry left

    warm = sdlint(shared, *argv, code=WARM)
    out, err = warm.communicate(timeout=600)
    assert warm.returncode == 1
    assert findings(out) == expected
    assert err.decode().endswith("heavy:")  # answered from the cache: no torch, no transformers
