"""The GitHub Action (action.yml) and the GitLab CI template: their shell steps run here as a CI
runner would run them, with the inputs substituted, against the bundled examples. Installing is
observed through a stand-in `python` (no network); checking uses this environment's sdlint."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")  # comes with pre-commit

ROOT = Path(__file__).parent.parent
VENV_BIN = Path(sys.executable).parent
ACTION: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text())
GITLAB: dict[str, Any] = yaml.safe_load((ROOT / "sdlint.gitlab-ci.yml").read_text())
CPU_INDEX = "--index-url https://download.pytorch.org/whl/cpu"


def inputs(**given: str) -> dict[str, str]:
    defaults = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
    unknown = set(given) - set(defaults)
    assert not unknown, unknown
    return {**defaults, **given}


def substitute(text: str, values: Mapping[str, str]) -> str:
    """GitHub's `${{ inputs.x }}` / `${{ github.action_path }}` for the given values."""

    def one(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        assert expression in values, f"unexpected expression {expression!r}"
        return values[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def step(name: str) -> dict[str, Any]:
    return next(s for s in ACTION["runs"]["steps"] if s.get("name") == name)


def run_step(
    name: str, given: Mapping[str, str], cwd: Path, path_first: Path
) -> subprocess.CompletedProcess[str]:
    s = step(name)
    values = {f"inputs.{k}": v for k, v in given.items()}
    values["github.action_path"] = str(ROOT)
    env = {key: substitute(str(value), values) for key, value in s.get("env", {}).items()}
    assert s["shell"] == "bash"
    return subprocess.run(
        ["bash", "-c", s["run"]],
        cwd=cwd,
        env={
            **os.environ,
            **env,
            "PATH": f"{path_first}{os.pathsep}{os.environ['PATH']}",
            "NO_COLOR": "1",
        },
        capture_output=True,
        text=True,
    )


@pytest.fixture
def fake_python(tmp_path: Path) -> tuple[Path, Path]:
    """A `python` that logs its arguments, one call per line, and succeeds."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    log = tmp_path / "python.log"
    script = bin_dir / "python"
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir, log


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A checkout holding the bundled examples and a truncated checkpoint."""
    root = tmp_path / "checkout"
    shutil.copytree(ROOT / "examples", root / "examples")
    data = (root / "examples" / "roberta-2-labels" / "model.safetensors").read_bytes()
    (root / "bad").mkdir()
    (root / "bad" / "model.safetensors").write_bytes(data[:-6])
    return root


def test_inputs_reach_the_scripts_only_through_the_environment() -> None:
    for s in ACTION["runs"]["steps"]:
        assert "${{" not in s.get("run", ""), s.get("name")
    assert ACTION["runs"]["using"] == "composite"
    assert step("Upload SARIF")["with"]["sarif_file"] == "sdlint.sarif"
    assert "inputs.sarif == 'true'" in step("Upload SARIF")["if"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            {},
            [f"-m pip install --quiet torch {CPU_INDEX}", f"-m pip install --quiet {ROOT}[model]"],
        ),
        (
            {"extras": "lsp", "torch-version": "2.13.0"},
            [
                f"-m pip install --quiet torch==2.13.0 {CPU_INDEX}",
                f"-m pip install --quiet {ROOT}[lsp,model]",
            ],
        ),
        ({"model-checks": "off"}, [f"-m pip install --quiet {ROOT}"]),
        (
            {"model-checks": "required"},
            [f"-m pip install --quiet torch {CPU_INDEX}", f"-m pip install --quiet {ROOT}[model]"],
        ),
        ({"model-checks": "cached", "extras": "lsp"}, [f"-m pip install --quiet {ROOT}[lsp]"]),
    ],
)
def test_install_step(
    given: dict[str, str], expected: list[str], fake_python: tuple[Path, Path], tmp_path: Path
) -> None:
    bin_dir, log = fake_python
    result = run_step("Install sdlint", inputs(**given), tmp_path, bin_dir)
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == expected


def test_the_extras_the_action_installs_exist() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    for extra in ("model", "lsp"):
        assert re.search(rf"^{extra} = \[", pyproject, re.MULTILINE), extra


def test_run_step_passes_a_clean_example(workspace: Path) -> None:
    given = inputs(paths="examples/roberta-2-labels", **{"model-checks": "off"})
    result = run_step("Run sdlint", given, workspace, VENV_BIN)
    assert (result.returncode, result.stdout) == (0, ""), result.stderr


def test_run_step_annotates_findings_and_writes_sarif(workspace: Path) -> None:
    given = inputs(paths="examples bad", sarif="true", **{"model-checks": "off"})
    result = run_step("Run sdlint", given, workspace, VENV_BIN)
    assert result.returncode == 1, result.stderr
    assert "::error title=sdlint (SD003),file=bad/model.safetensors," in result.stdout
    assert "SD003" in result.stdout
    sarif = json.loads((workspace / "sdlint.sarif").read_text())
    results = sarif["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"SD003"}


def test_run_step_passes_args_and_exits_2_on_bad_usage(workspace: Path) -> None:
    given = inputs(paths="bad", args="--select SD005", **{"model-checks": "off"})
    assert run_step("Run sdlint", given, workspace, VENV_BIN).returncode == 0
    given = inputs(paths="bad", args="--select NOPE", **{"model-checks": "off"})
    assert run_step("Run sdlint", given, workspace, VENV_BIN).returncode == 2


@pytest.mark.model
def test_run_step_with_model_checks_reports_the_head_mismatch(workspace: Path) -> None:
    pytest.importorskip("transformers")
    given = inputs(
        paths="examples/roberta-2-labels",
        args="--model-config examples/roberta-5-labels/config.json",
    )
    result = run_step("Run sdlint", given, workspace, VENV_BIN)
    assert result.returncode == 1, result.stderr
    assert (
        "::error title=sdlint (SD101),file=examples/roberta-2-labels/model.safetensors,"
        in result.stdout
    )
    assert "SD101" in result.stdout


def gitlab_script(line: int, variables: Mapping[str, str], cwd: Path, path_first: Path) -> Any:
    job = GITLAB["sdlint"]
    env = {k: str(v) for k, v in job["variables"].items()}
    env.update(variables)
    return subprocess.run(
        ["sh", "-c", job["script"][line]],
        cwd=cwd,
        env={**os.environ, **env, "PATH": f"{path_first}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
    )


def test_gitlab_template_installs_and_reports_code_quality(
    workspace: Path, fake_python: tuple[Path, Path]
) -> None:
    bin_dir, log = fake_python
    result = gitlab_script(0, {"SDLINT_REQUIREMENT": "sdlint==0.1.0"}, workspace, bin_dir)
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == [
        f"-m pip install --quiet torch {CPU_INDEX}",
        "-m pip install --quiet sdlint==0.1.0[model]",
    ]
    variables = {"SDLINT_PATHS": "examples bad", "SDLINT_MODEL_CHECKS": "off"}
    result = gitlab_script(1, variables, workspace, VENV_BIN)
    assert result.returncode == 1, result.stderr
    report = json.loads((workspace / "gl-code-quality-report.json").read_text())
    assert {(r["check_name"], r["location"]["path"]) for r in report} == {
        ("SD003", "bad/model.safetensors")
    }
    artifacts = GITLAB["sdlint"]["artifacts"]
    assert artifacts["when"] == "always"
    assert artifacts["reports"]["codequality"] == "gl-code-quality-report.json"
