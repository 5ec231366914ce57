"""The README keeps its promises: its test command is what CI runs, every rule has a row."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from sdlint.cli import main
from sdlint.registry import all_rules

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def first_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", README)[:2]


def test_readme_starts_with_the_two_commands() -> None:
    example, tests = first_commands()
    assert README.index(example) < 200
    assert "sdlint check examples/" in example and "torch==2.13.0" in example
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command() -> None:
    _, tests = first_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert any(line.startswith(tests) for line in ci_lines)


def test_every_rule_has_a_readme_row() -> None:
    rows = dict(re.findall(r"^\| (SD\d{3}) \| ([a-z0-9-]+) \|", README, re.MULTILINE))
    assert rows == {r.code: r.name for r in all_rules()}


def test_example_paths_exist() -> None:
    example, _ = first_commands()
    for path in re.findall(r"examples/[\w./-]+", example):
        assert (ROOT / path).exists(), path


def test_ci_snippets_install_the_model_checks() -> None:
    yaml = "".join(re.findall(r"```yaml\n(.*?)```", README, re.S))
    ci = re.findall(r"pip install [^\n]*", yaml)
    assert ci and all("'sdlint[model]'" in line and "torch==" in line for line in ci), ci


def test_the_pre_commit_example_enables_one_hook_per_block() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", README, re.S)
    hooks = [b for b in blocks if "- id: sdlint" in b]
    assert hooks and all(len(re.findall(r"^\s*- id: ", b, re.M)) == 1 for b in hooks)
    assert "rev: main" in README  # no tag of this repository is named


def test_every_configuration_key_and_flag_is_documented() -> None:
    from sdlint.config import _KEYS

    table = README.split("## Configuration", 1)[1].split("## Rules", 1)[0]
    missing = [key for key in _KEYS if f"\n{key} =" not in table and f"{key}]" not in table]
    assert not missing, missing
    for flag in ("--model-checks", "rule --all --docs", "--head-fix", "--backup"):
        assert flag in README, flag


def test_console_examples_print_what_the_readme_shows(capsys: pytest.CaptureFixture[str]) -> None:
    """Each ```console block's command, run in process from the repository root, prints exactly
    the lines shown."""
    blocks = re.findall(r"```console\n\$ sdlint (.+?)\n(.*?)```", README, re.DOTALL)
    assert blocks
    for command, shown in blocks:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(ROOT)
            main(shlex.split(command))
        assert capsys.readouterr().out == shown, command
