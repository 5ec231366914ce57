"""Heavy imports stay off the paths that do not need them: a fresh `sdlint check` on integrity
rules, and a warm model or adapter check, import none of torch, transformers, peft (nor numpy,
pygls)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "roberta-2-labels"
FIVE_LABELS = ROOT / "examples" / "roberta-5-labels" / "config.json"
HEAVY = ("torch", "transformers", "peft", "numpy", "safetensors", "pygls")
# What a local check without a fix has no use for: each costs milliseconds of every warm run.
UNUSED_ON_A_CHECK = (
    "importlib.metadata",  # version lookups read the dist-info instead (sdlint/model/cache.py)
    "sdlint.formats.pickle",  # only when a torch.save file is found
    "sdlint.inspect",  # `show` and `diff`
    "sdlint.fixes",
    "sdlint.rewrite",
    "sdlint.sources.http",
    "tempfile",  # only when a verdict is written
    "concurrent.futures",  # only when processes start (sdlint/parallel.py), and its logging
    "logging",
    "unicodedata",  # only to escape a message that is not printable (sdlint/emit/text.py)
    "dataclasses",  # sdlint's value types are records (sdlint/record.py): no inspect, ast, dis
    "inspect",
    # a plain `check` command line is read without argparse (commands/check.py plain_arguments),
    # and so without gettext and the locale module its lookups import
    "argparse",
    "gettext",
    "locale",
    "hashlib",  # a verdict's key is sha256'd by CPython's own module (sdlint/environment.py)
)

# What a check of a safetensors file with no model to compare (no config.json) has no use for
# besides those: the model layer's value types, the PEFT view, the hashing behind cache keys, the
# edits a fix is made of.
UNUSED_ON_A_HEADER_CHECK = (
    *UNUSED_ON_A_CHECK,
    "sdlint.edits",
    "sdlint.model.verdict",
    "sdlint.model.cache",
    "sdlint.adapter",
    "typing",  # annotations only (`TYPE_CHECKING`), as the replayed run (test below)
    "shutil",  # argparse's formatter asks it for the terminal's width: only to print help
    "threading",  # only to read a header of 100 kB or more (sdlint/formats/safetensors.py)
    "tomllib",  # only for a configuration file (a pyproject.toml that never names sdlint is none)
)

SCRIPT = f"""
import json, sys
from sdlint.cli import main
code = main(sys.argv[1:])
heavy = [m for m in {HEAVY!r} if m in sys.modules]
unused = [m for m in {UNUSED_ON_A_CHECK!r} if m in sys.modules]
light = [m for m in {UNUSED_ON_A_HEADER_CHECK!r} if m in sys.modules]
print(json.dumps({{"code": code, "heavy": heavy, "unused": unused, "light": light}}), file=sys.stderr)
"""


def sdlint_in_fresh_process(cache: Path, *argv: str) -> dict[str, object]:
    """`sdlint check -q ARGV...` in a fresh process: its exit code and the heavy modules loaded."""
    report = fresh_process(cache, "check", "-q", *argv)
    del report["unused"], report["light"]
    return report


def fresh_process(cache: Path, *argv: str) -> dict[str, object]:
    env = {**os.environ, "SDLINT_CACHE_DIR": str(cache)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *argv],
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
@pytest.mark.model
def test_a_warm_model_check_imports_no_typing(tmp_path: Path) -> None:
    """Outside a project that configures sdlint (whose TOML parser, tomllib, imports typing), a
    warm model check with a finding and its fix imports no typing: verdicts are decoded without
    type hints (sdlint/model/verdict.py), the model layer and the edits annotate only under
    `TYPE_CHECKING`."""
    folder = tmp_path / "model"
    shutil.copytree(EXAMPLE, folder)
    argv = ("check", "-q", str(folder), "--model-config", str(FIVE_LABELS))
    assert fresh_process(tmp_path / "cache", *argv)["code"] == 1  # builds and stores the verdict
    warm = fresh_process(tmp_path / "cache", *argv)
    assert warm["code"] == 1 and warm["heavy"] == [] and warm["unused"] == []
    assert "sdlint.model.verdict" in str(warm["light"]) and "typing" not in str(warm["light"])


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


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["--version"], ["rule", "SD101"], ["rule", "--all"]])
def test_version_and_rule_docs_import_nothing_heavy(tmp_path: Path, argv: list[str]) -> None:
    report = fresh_process(tmp_path, *argv)
    assert report["code"] == 0 and report["heavy"] == []


@pytest.mark.slow
def test_a_check_imports_only_what_it_uses(tmp_path: Path) -> None:
    """A local safetensors check (integrity and a warm model check) loads neither the pickle
    reader, nor importlib.metadata, nor the other commands' modules."""
    argv = ("check", "-q", str(EXAMPLE), "--model-checks=cached")
    assert fresh_process(tmp_path, *argv, "--select", "SD0")["unused"] == []
    assert fresh_process(tmp_path, *argv)["unused"] == []


@pytest.mark.slow
def test_a_header_check_imports_no_model_fix_or_adapter_modules(tmp_path: Path) -> None:
    """A safetensors file with no config.json beside it is checked from its header alone: every
    rule runs, and what only a model comparison, a PEFT adapter or a fix uses stays unimported
    (each module costs every such run milliseconds, its dataclasses most of them)."""
    weights = tmp_path / "model" / "model.safetensors"
    weights.parent.mkdir()
    weights.write_bytes((EXAMPLE / "model.safetensors").read_bytes())
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    report = fresh_process(tmp_path / "cache", "check", "-q", str(weights))
    assert report["code"] == 0 and report["heavy"] == []
    assert report["light"] == []
    truncated = tmp_path / "broken" / "model.safetensors"  # a finding, with its own module set
    truncated.parent.mkdir()
    truncated.write_bytes(weights.read_bytes()[:-1])
    report = fresh_process(tmp_path / "cache", "check", "-q", str(truncated))
    assert report["code"] == 1 and report["light"] == []


# `sdlint check` as the command runs it (`main()` reads sys.argv): the run cache may answer.
COMMAND = f"""
import json, sys
from sdlint.cli import main
sys.argv = ["sdlint", *sys.argv[1:]]
code = main()
watched = ("argparse", "dataclasses", "typing", "hashlib", *{HEAVY!r})
loaded = [m for m in sorted(sys.modules) if m.startswith("sdlint") or m in watched]
print(json.dumps({{"code": code, "loaded": loaded}}), file=sys.stderr)
"""


@pytest.mark.slow
def test_a_replayed_check_imports_only_the_run_cache(tmp_path: Path) -> None:
    """A run the run cache answers (sdlint/runcache.py) imports none of the rules, formats,
    emitters, argparse, dataclasses or typing: what it costs beyond Python's start is a few
    stats and one small read."""
    argv = ["check", str(EXAMPLE / "model.safetensors"), "--select", "SD0"]
    env = {**os.environ, "SDLINT_CACHE_DIR": str(tmp_path)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", COMMAND, *argv],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    checked, replayed = (json.loads(r.stderr.strip().splitlines()[-1]) for r in runs)
    assert "sdlint.engine" in checked["loaded"]  # the first run checked
    assert runs[1].stdout == runs[0].stdout and checked["code"] == replayed["code"] == 0
    assert replayed["loaded"] == [
        "sdlint",
        "sdlint.cli",
        "sdlint.environment",
        "sdlint.errors",
        "sdlint.exit_codes",
        "sdlint.runcache",
    ]
