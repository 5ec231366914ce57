"""What a rule is: its code, name, summary, docs and fix availability, in one place.

A rule is one function decorated with `@rule(...)`, which turns it into a `Rule` value (nothing is
registered: `sdlint/rules/__init__.py` lists the rules explicitly). Its docstring is the
documentation `sdlint rule` prints, with the fixed sections "What it does", "Why is this bad?",
"Example" and "Fix safety". The function receives the checkpoint under check and yields
`Finding`s; the engine stamps them with the rule's code.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable

from sdlint.diagnostic import Fix, Location, Severity
from sdlint.record import field, record

TYPE_CHECKING = False  # typing is not imported at run time (a check has no use for it)
if TYPE_CHECKING:
    from sdlint.context import CheckContext


class FixAvailability(str, enum.Enum):
    """Whether a rule's findings may carry a fix. The engine refuses a fix from a rule that
    declares NONE, and a test holds every SOMETIMES rule to a finding that has one."""

    NONE = "none"
    SOMETIMES = "sometimes"


@record
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

REQUIRED_SECTIONS = ("## What it does", "## Why is this bad?", "## Example", "## Fix safety")


@record
class Rule:
    code: str
    name: str
    summary: str
    doc: str
    check: CheckFunction
    severity: Severity = Severity.ERROR
    fix: FixAvailability = FixAvailability.NONE
    enabled_by_default: bool = True
    # The checkpoint formats (sdlint/formats/) the rule checks; None: every format.
    formats: frozenset[str] | None = None

    def applies_to(self, checkpoint_format: str) -> bool:
        return self.formats is None or checkpoint_format in self.formats

    def render_doc(self) -> str:
        fix_line = {
            FixAvailability.NONE: "Fix is not available.",
            FixAvailability.SOMETIMES: "Fix is sometimes available.",
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


def rule(
    code: str,
    name: str,
    *,
    summary: str,
    severity: Severity = Severity.ERROR,
    fix: FixAvailability = FixAvailability.NONE,
    enabled_by_default: bool = True,
    formats: Iterable[str] | None = None,
) -> Callable[[CheckFunction], Rule]:
    """Make a check function a `Rule`; refuses (at import time) a bad code or missing docs."""

    def make(check: CheckFunction) -> Rule:
        if not re.fullmatch(r"SD\d{3}", code):
            raise ValueError(f"bad rule code {code!r}")
        doc = _cleandoc(check.__doc__ or "")
        missing = [s for s in REQUIRED_SECTIONS if s not in doc]
        if missing:
            raise ValueError(f"rule {code} documentation lacks {', '.join(missing)}")
        return Rule(
            code,
            name,
            summary,
            doc,
            check,
            severity,
            fix,
            enabled_by_default,
            frozenset(formats) if formats is not None else None,
        )

    return make


def _cleandoc(doc: str) -> str:
    """`inspect.cleandoc`, by hand: importing inspect (with ast, dis and tokenize) costs every
    run about 8 ms, and a rule's docstring needs only this. tests/test_registry.py holds every
    rule's doc to inspect's answer."""
    lines = doc.expandtabs().split("\n")
    indents = [len(line) - len(line.lstrip()) for line in lines[1:] if line.lstrip()]
    margin = min(indents, default=0)
    lines = [lines[0].lstrip(), *(line[margin:] for line in lines[1:])]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)
