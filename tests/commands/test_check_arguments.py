"""`sdlint check`'s plain command lines are read without argparse (commands/check.py
`plain_arguments`): for every command line it reads, the namespace is argparse's own; every other
one is left to argparse."""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import random
import sys
from pathlib import Path

import pytest

from sdlint.cli import build_parser, main
from sdlint.commands import check
from sdlint.commands.check import plain_arguments


@functools.cache
def full_parser() -> argparse.ArgumentParser:
    return build_parser()


def argparse_answer(argv: list[str]) -> dict[str, object] | None:
    """The full parser's namespace for `sdlint check ARGV`, None when argparse refuses it."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return vars(full_parser().parse_args(["check", *argv]))
        except SystemExit:
            return None


PLAIN = [
    [],
    ["model.safetensors"],
    ["a", "b", "-q"],
    ["-q", "a", "b"],
    ["--select", "SD0", "x"],
    ["--select=SD0,SD1", "--select", "SD105", "--extend-select", "SD2", "--ignore=SD003", "x"],
    ["x", "--model-config", "five/config.json", "-q"],
    ["x", "--model-config", "hf://org/name@main/config.json"],
    ["https://host/model.safetensors"],
    ["--output-format", "json", "--statistics", "--exit-zero", "--show-fixes", "x"],
    ["--jobs", "3", "--architecture", "RobertaModel", "--no-cache", "x"],
    ["--model-checks=cached", "--verdicts", "v", "--record-verdicts", "r", "x"],
    ["--staged-deletions"],
    ["--config", "pyproject.toml", "--isolated", "-v", "x"],
    ["--fix", "--no-unsafe-fixes", "--backup", "--no-backup", "--exit-non-zero-on-fix", "x"],
    ["--no-fix", "--unsafe-fixes", "--diff", "--head-fix", "reinit", "x"],
    ["--baseline", "b.json", "--write-baseline=w.json", "x"],
    ["", "a=b", "--select="],
]

REFUSED = [
    ["-h"],
    ["--help"],
    ["--version"],
    ["-qv", "x"],
    ["--sel", "SD0", "x"],  # an abbreviation argparse accepts: its answer, through argparse
    ["--", "-x"],
    ["-", "x"],
    ["a", "--select", "SD0", "b"],  # PATHs on both sides of an option: argparse refuses
    ["--select"],
    ["--select", "-q"],
    ["--jobs", "0", "x"],
    ["--output-format", "xml", "x"],
    ["--head-fix=both", "x"],
    ["--fix=yes", "x"],
    ["--no-fix=1", "x"],
    ["-q=1", "x"],
    ["--bogus", "x"],
]


@pytest.mark.parametrize("argv", PLAIN)
def test_plain_command_lines_are_read_as_argparse_reads_them(argv: list[str]) -> None:
    plain = plain_arguments(argv)
    assert plain is not None
    assert vars(plain) == argparse_answer(argv)


@pytest.mark.parametrize("argv", REFUSED)
def test_other_command_lines_are_left_to_argparse(argv: list[str]) -> None:
    assert plain_arguments(argv) is None


WORDS = [
    "x",
    "y.safetensors",
    "",
    "-",
    "--",
    "-q",
    "-v",
    "-qv",
    "-h",
    "--quiet",
    "--select",
    "--select=SD1",
    "--sel",
    "SD0,SD101",
    "--extend-select",
    "--ignore",
    "--output-format",
    "json",
    "xml",
    "--jobs",
    "2",
    "0",
    "--model-config",
    "--model-config=c.json",
    "--model-checks",
    "cached",
    "--head-fix",
    "config",
    "--fix",
    "--no-fix",
    "--fix=1",
    "--unsafe-fixes",
    "--backup",
    "--no-backup",
    "--diff",
    "--baseline",
    "--staged-deletions",
    "--version",
    "-1",
]


def test_random_command_lines_agree_with_argparse() -> None:
    """Thousands of command lines of the words above: whenever `plain_arguments` answers, the
    answer is argparse's, and it answers for most command lines argparse accepts."""
    rng = random.Random(11)
    answered = accepted = 0
    for _ in range(3000):
        argv = [rng.choice(WORDS) for _ in range(rng.randrange(7))]
        plain = plain_arguments(argv)
        expected = argparse_answer(argv)
        accepted += expected is not None
        if plain is not None:
            answered += 1
            assert vars(plain) == expected, argv
    assert answered > accepted / 2 > 100


def test_the_command_runs_on_plain_arguments(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`sdlint check PATH` runs the check without importing argparse; usage errors still come
    from argparse, worded as before."""
    seen: list[object] = []

    def run(args: object) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr(check, "run", run)
    monkeypatch.delitem(sys.modules, "argparse", raising=False)
    assert main(["check", str(tmp_path), "-q"]) == 0
    assert "argparse" not in sys.modules
    assert vars(seen[0]) == argparse_answer([str(tmp_path), "-q"])
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert main(["check", "--jobs", "0", str(tmp_path)]) == 2
    assert stderr.getvalue().endswith(
        "sdlint check: error: argument --jobs: expected a positive whole number, got '0'\n"
    )
    assert seen == [seen[0]]
