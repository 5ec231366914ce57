"""Heavy imports stay off the paths that do not need them: a fresh `sdlint check` on integrity
rules, and a warm model or adapter check, import none of torch, transformers, peft (nor numpy,
pygls)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "roberta-2-labels"
FIVE_LABELS = ROOT / "examples" / "roberta-5-labels" / "config.json"
HEAVY = ("torch", "transformers", "peft", "numpy", "safetensors", "pygls")

SCRIPT = f"""
import json, sys
from sdlint.cli import main
code = main(sys.argv[1:])
heavy = [m for m in {HEAVY!r} if m in sys.modules]
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


def sdlint_in_fresh_process(cache: Path, *argv: str) -> dict[str, object]:
    env = {**os.environ, "SDLINT_CACHE_DIR": str(cache)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, "check", "-q", *argv],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=ROOT,
    )
    report: dict[str, object] = json.loads(result.stderr.strip().splitlines()[-1])
    return report


@pytest.mark.slow
def test_integrity_checks_import_nothing_heavy(tmp_path: Path) -> None:
    report = sdlint_in_fresh_process(
        tmp_path, str(EXAMPLE / "model.safetensors"), "--select", "SD0"
    )
    assert report == {"code": 0, "heavy": []}


@pytest.mark.slow
@pytest.mark.model
def test_warm_model_check_imports_neither_torch_nor_transformers(tmp_path: Path) -> None:
    argv = (str(EXAMPLE), "--model-config", str(FIVE_LABELS))
    cold = sdlint_in_fresh_process(tmp_path, *argv)
    assert cold["code"] == 1 and "torch" in str(cold["heavy"])  # the first run builds the model
    warm = sdlint_in_fresh_process(tmp_path, *argv)
    assert warm == {"code": 1, "heavy": []}
    light = sdlint_in_fresh_process(tmp_path, *argv, "--model-checks=cached")
    assert light == {"code": 1, "heavy": []}  # the recorded verdict, as the light hook sees it


@pytest.mark.slow
def test_pickle_checks_import_nothing_heavy(tmp_path: Path) -> None:
    """torch.save files are read and checked where torch is not installed: never imported."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "pytorch_model.bin"
    torch.save({"w": torch.zeros(2)}, path)
    report = sdlint_in_fresh_process(tmp_path / "cache", str(path), "--select", "SD0")
    assert report == {"code": 0, "heavy": []}


@pytest.mark.slow
@pytest.mark.model
def test_warm_adapter_check_imports_neither_torch_nor_peft(tmp_path: Path) -> None:
    """A PEFT adapter's verdict is cached like a model's: the second run imports none of them."""
    pytest.importorskip("peft")
    from tests.peft_adapters import peft_config, save_adapter, save_base
    from tests.tiny_models import edit_config

    base = save_base(tmp_path / "base", num_labels=2)
    adapter = save_adapter(tmp_path / "adapter", base, peft_config("lora"))
    edit_config(base / "config.json", id2label={str(i): f"L{i}" for i in range(5)})
    argv = (str(adapter), "--model-config", str(base / "config.json"))
    cache = tmp_path / "cache"
    cold = sdlint_in_fresh_process(cache, *argv)
    assert cold["code"] == 1 and "peft" in str(cold["heavy"])  # the SD101 head mismatch
    assert sdlint_in_fresh_process(cache, *argv) == {"code": 1, "heavy": []}
    light = sdlint_in_fresh_process(cache, *argv, "--model-checks=cached")
    assert light == {"code": 1, "heavy": []}
