"""The rule registry: every rule declares its code, name, summary, docs and fix availability here.

A rule is one function decorated with `@rule(...)`; its docstring is the documentation `sdlint rule`
prints, with the fixed sections "What it does", "Why is this bad?", "Example" and "Fix safety".
The function receives the checkpoint under check and yields `Finding`s; the engine stamps them with
the rule's code.
"""

from __future__ import annotations

import enum
import inspect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sdlint.diagnostic import Fix, Location, Severity
from sdlint.errors import UsageError

if TYPE_CHECKING:
    from sdlint.context import CheckContext


class FixAvailability(str, enum.Enum):
    NONE = "none"
    SOMETIMES = "sometimes"
    ALWAYS = "always"


@dataclass(frozen=True)
class Finding:
    """What a rule reports; the engine adds the rule's code to make a `Diagnostic`."""

    message: str
    path: str
    severity: Severity | None = None  # None: the rule's default severity
    tensor: str | None = None
    expected: tuple[int, ...] | None = None
    actual: tuple[int, ...] | None = None
    fix: Fix | None = None
    location: Location = field(default_factory=Location)
    group: str | None = None
    config_key: str | None = None


CheckFunction = Callable[["CheckContext"], Iterable[Finding]]

_REQUIRED_SECTIONS = ("## What it does", "## Why is this bad?", "## Example", "## Fix safety")


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    summary: str
    doc: str
    check: CheckFunction
    severity: Severity = Severity.ERROR
    fix: FixAvailability = FixAvailability.NONE
    enabled_by_default: bool = True
    needs_model: bool = False  # needs the expected model (transformers, or a cached verdict)
    # The checkpoint formats (sdlint/formats/) the rule checks; None: every format.
    formats: frozenset[str] | None = None

    def applies_to(self, checkpoint_format: str) -> bool:
        return self.formats is None or checkpoint_format in self.formats

    def render_doc(self) -> str:
        fix_line = {
            FixAvailability.NONE: "Fix is not available.",
            FixAvailability.SOMETIMES: "Fix is sometimes available.",
            FixAvailability.ALWAYS: "Fix is always available.",
        }[self.fix]
        default = (
            ""
            if self.enabled_by_default
            else (
                f"\nNot enabled by default: turn it on with `--select {self.code}` "
                f"or `--extend-select {self.code}`.\n"
            )
        )
        return (
            f"# {self.name} ({self.code})\n\n{self.summary}\n\n{fix_line}\n{default}\n{self.doc}\n"
        )


RULES: dict[str, Rule] = {}


def rule(
    code: str,
    name: str,
    *,
    summary: str,
    severity: Severity = Severity.ERROR,
    fix: FixAvailability = FixAvailability.NONE,
    enabled_by_default: bool = True,
    needs_model: bool = False,
    formats: Iterable[str] | None = None,
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a rule; refuses (at import time) a duplicate code or missing documentation."""

    def register(check: CheckFunction) -> CheckFunction:
        if not re.fullmatch(r"SD\d{3}", code) or code in RULES:
            raise ValueError(f"bad or duplicate rule code {code!r}")
        doc = inspect.cleandoc(check.__doc__ or "")
        missing = [s for s in _REQUIRED_SECTIONS if s not in doc]
        if missing:
            raise ValueError(f"rule {code} documentation lacks {', '.join(missing)}")
        RULES[code] = Rule(
            code,
            name,
            summary,
            doc,
            check,
            severity,
            fix,
            enabled_by_default,
            needs_model,
            frozenset(formats) if formats is not None else None,
        )
        return check

    return register


def all_rules() -> list[Rule]:
    import sdlint.rules  # noqa: F401  (registers the rules on import)

    return [RULES[code] for code in sorted(RULES)]


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
    return {r.code: r for r in all_rules()}.get(code.upper())


def _matches(selector: str, code: str) -> bool:
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


@dataclass(frozen=True)
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
            candidates = [s for s in (selected or []) + extended if _matches(s, r.code)]
            if not r.enabled_by_default:
                candidates = [s for s in candidates if s == r.code]
            if selected is None and r.code in enabled:
                candidates.append("")  # carried over from the layers before
            if not candidates:
                continue
            chosen = max(candidates, key=_strength)
            ignored_by = [s for s in ignored if _matches(s, r.code)]
            if ignored_by and max(map(_strength, ignored_by)) >= _strength(chosen):
                continue
            now.add(r.code)
        enabled = now
    return [r for r in rules if r.code in enabled]
