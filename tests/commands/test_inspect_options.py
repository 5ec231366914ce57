"""The options `sdlint show` and `sdlint diff` share, held alike for both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run

ROOT = Path(__file__).parent.parent.parent
TWO = str(ROOT / "examples" / "roberta-2-labels")
FIVE = str(ROOT / "examples" / "roberta-5-labels")
COMMANDS = [["show", TWO], ["diff", TWO, FIVE]]


@pytest.mark.parametrize("command", COMMANDS, ids=["show", "diff"])
@pytest.mark.parametrize("depth", ["0", "-1", "two"])
def test_a_depth_below_1_is_a_usage_error(
    command: list[str], depth: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *command, f"--depth={depth}")
    assert code == 2 and "N must be a whole number of 1 or more" in err


@pytest.mark.parametrize("command", COMMANDS, ids=["show", "diff"])
def test_json_output_is_one_document(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, *command, "--output-format", "json", "--depth", "1")
    assert out.endswith("}\n") or out.endswith("]\n")
    json.loads(out)
