"""The rule registry: every rule is documented, and selection behaves like ruff's."""

from __future__ import annotations

import inspect
import re

import pytest

from sdlint.errors import UsageError
from sdlint.registry import Selection, all_rules, select_rules
from sdlint.rule import _cleandoc

DEFAULT = [r.code for r in all_rules() if r.enabled_by_default]


def chosen(*layers: Selection) -> list[str]:
    return [r.code for r in select_rules(layers)]


def test_every_rule_is_documented() -> None:
    for r in all_rules():
        doc = r.render_doc()
        assert doc.startswith(f"# {r.name} ({r.code})")
        for section in ("## What it does", "## Why is this bad?", "## Example", "## Fix safety"):
            assert section in doc, (r.code, section)
        # the example shows the output: a fenced diagnostic line of this rule
        example = r.doc.split("## Example", 1)[1].split("## Fix safety", 1)[0]
        assert re.search(rf"```\n(.*\n)*\S+:\d+:\d+: {r.code} ", example), (r.code, example)


@pytest.mark.parametrize(
    "doc",
    [
        "",
        "one line",
        "  first\n    indented\n  less\n\n",
        "\n\n    only later lines\n\t\ttabbed\n      deeper\n    \n",
        "first\n\n   \n",
    ],
)
def test_rule_docs_are_cleaned_as_inspect_cleans_them(doc: str) -> None:
    """sdlint/rule.py cleans a docstring by hand (inspect costs every run its import)."""
    assert _cleandoc(doc) == inspect.cleandoc(doc)
    for r in all_rules():
        assert r.doc == inspect.cleandoc(r.check.__doc__ or ""), r.code


def test_default_set_leaves_out_informational_rules() -> None:
    assert "SD105" not in DEFAULT and "SD101" in DEFAULT
    assert chosen() == DEFAULT


# The SD1 rules on by default (SD105 is off; SD109 is unused).
DEFAULT_SD1 = [
    "SD101",
    "SD102",
    "SD103",
    "SD104",
    "SD106",
    "SD107",
    "SD108",
    "SD110",
    "SD111",
    "SD112",
]


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        (
            [Selection(select=("SD0",))],
            [
                "SD001",
                "SD002",
                "SD003",
                "SD004",
                "SD005",
                "SD006",
                "SD007",
                "SD008",
                "SD009",
                "SD010",
            ],
        ),
        ([Selection(select=("SD1",), ignore=("SD10",))], ["SD110", "SD111", "SD112"]),
        ([Selection(select=("SD11",))], ["SD110", "SD111", "SD112"]),
        ([Selection(select=("SD101",), ignore=("SD1",))], ["SD101"]),  # more specific wins
        (
            [Selection(select=("SD1",))],
            DEFAULT_SD1,
        ),
        ([Selection(select=("SD105",))], ["SD105"]),
        ([Selection(extend_select=("SD105",), ignore=("SD0", "SD1"))], ["SD105"]),
        (
            [Selection(select=("ALL",), ignore=("SD0",))],
            DEFAULT_SD1,
        ),
        # a configuration layer, then the command line
        (
            [Selection(ignore=("SD104",)), Selection(ignore=("SD0",))],
            ["SD101", "SD102", "SD103", "SD106", "SD107", "SD108", "SD110", "SD111", "SD112"],
        ),
        ([Selection(ignore=("SD0", "SD1")), Selection(extend_select=("SD004",))], ["SD004"]),
        (
            [Selection(extend_select=("SD105",)), Selection(select=("SD10",))],
            ["SD101", "SD102", "SD103", "SD104", "SD106", "SD107", "SD108"],
        ),
        ([Selection(select=("SD105",)), Selection(ignore=("SD0",))], ["SD105"]),
    ],
)
def test_selection(layers: list[Selection], expected: list[str]) -> None:
    assert chosen(*layers) == expected


def test_unknown_selector() -> None:
    with pytest.raises(UsageError, match="unknown rule selector 'SD9'"):
        chosen(Selection(ignore=("SD9",)))


def test_docs_rules_md_is_up_to_date() -> None:
    from pathlib import Path

    from sdlint.registry import rules_markdown

    path = Path(__file__).parent.parent / "docs" / "rules.md"
    assert path.read_text() == rules_markdown(), (
        "regenerate: sdlint rule --all --docs > docs/rules.md"
    )
