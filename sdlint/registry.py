"""The rules sdlint has, by code, and ruff-style selection among them.

The rules themselves are listed explicitly in `sdlint/rules/__init__.py` (what a rule is:
`sdlint/rule.py`); this module only reads that list, so importing a rule never registers anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sdlint.errors import UsageError
from sdlint.record import record
from sdlint.rule import Rule
from sdlint.rules import RULES


def all_rules() -> list[Rule]:
    """Every rule, by code."""
    return list(_BY_CODE.values())


def _by_code(rules: Iterable[Rule]) -> dict[str, Rule]:
    out: dict[str, Rule] = {}
    for r in sorted(rules, key=lambda r: r.code):
        if r.code in out:
            raise ValueError(f"duplicate rule code {r.code}")
        out[r.code] = r
    return out


_BY_CODE = _by_code(RULES)


def rules_markdown() -> str:
    """Every rule's documentation, as docs/rules.md holds it (a test keeps the two equal)."""
    intro = (
        "# sdlint rules\n\n"
        "Generated from the rules' own documentation (`sdlint rule CODE` prints one); regenerate "
        "with `sdlint rule --all --docs > docs/rules.md`.\n"
    )
    return intro + "".join("\n" + _demote_headings(r.render_doc()) for r in all_rules())


def _demote_headings(markdown: str) -> str:
    """One level deeper, outside code fences: each rule becomes a section of one page."""
    out, fenced = [], False
    for line in markdown.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        out.append("#" + line if line.startswith("#") and not fenced else line)
    return "".join(out)


def get_rule(code: str) -> Rule | None:
    return _BY_CODE.get(code.upper())


def selector_matches(selector: str, code: str) -> bool:
    """Whether a (normalised) selector picks a rule code: ALL, a prefix, or the code itself."""
    return selector == "ALL" or code.startswith(selector)


def _strength(selector: str) -> int:
    """The more specific selector wins; ALL (and a rule carried over from before) the least."""
    return 0 if selector == "ALL" else len(selector)


def validate_selectors(selectors: Iterable[str]) -> list[str]:
    """Normalised selectors; raises UsageError for one that names no rule."""
    codes = [r.code for r in all_rules()]
    out = []
    for raw in selectors:
        selector = raw.strip().upper()
        if not selector:
            continue
        if selector != "ALL" and not any(code.startswith(selector) for code in codes):
            raise UsageError(
                f"unknown rule selector {raw!r}: expected a code or prefix such as SD1 or SD101 "
                "(see `sdlint rule --all`)"
            )
        out.append(selector)
    return out


@record
class Selection:
    """One layer of rule selection (a configuration file, then the command line), as in ruff."""

    select: tuple[str, ...] | None = None  # replaces what earlier layers selected
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()


def select_rules(layers: Sequence[Selection] = ()) -> list[Rule]:
    """Rules enabled by ruff-style selection layers, applied in order.

    Selectors are codes or prefixes; within a layer the most specific matching selector decides
    between select and ignore. A layer with `select` replaces the set so far; one without it
    extends and trims it. A rule that is off by default is only turned on by its full code (a broad
    prefix such as `SD1` does not opt into informational rules).
    """
    rules = all_rules()
    enabled = {r.code for r in rules if r.enabled_by_default}
    for layer in layers:
        selected = None if layer.select is None else validate_selectors(layer.select)
        extended = validate_selectors(layer.extend_select)
        ignored = validate_selectors(layer.ignore)
        now = set()
        for r in rules:
            candidates = [s for s in (selected or []) + extended if selector_matches(s, r.code)]
            if not r.enabled_by_default:
                candidates = [s for s in candidates if s == r.code]
            if selected is None and r.code in enabled:
                candidates.append("")  # carried over from the layers before
            if not candidates:
                continue
            chosen = max(candidates, key=_strength)
            ignored_by = [s for s in ignored if selector_matches(s, r.code)]
            if ignored_by and max(map(_strength, ignored_by)) >= _strength(chosen):
                continue
            now.add(r.code)
        enabled = now
    return [r for r in rules if r.code in enabled]
