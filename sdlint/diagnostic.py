"""The value every check produces and every emitter consumes."""

from __future__ import annotations

import enum

from sdlint.record import field, record

TYPE_CHECKING = False  # the edits (sdlint/edits.py) are imported by the rules that make a fix
if TYPE_CHECKING:
    from sdlint.edits import Edit


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Applicability(str, enum.Enum):
    """How safe a fix is (ruff's model): safe fixes keep every tensor's data and meaning."""

    SAFE = "safe"
    UNSAFE = "unsafe"


@record
class Fix:
    applicability: Applicability
    description: str  # imperative: "Strip the prefix `module.` from 39 keys"
    edits: tuple[Edit, ...] = ()  # what applying it changes (not part of the JSON output)

    def applies(self, unsafe: bool) -> bool:
        """Whether `--fix` applies it: safe fixes always, unsafe ones with --unsafe-fixes."""
        return self.applicability is Applicability.SAFE or unsafe


@record
class Location:
    """Where an editor should put the cursor: 1-based line and column in `path`."""

    line: int = 1
    column: int = 1


@record
class Diagnostic:
    """One finding. The first eight fields are the JSON output contract."""

    code: str
    severity: Severity
    message: str
    path: str
    tensor: str | None = None
    expected: tuple[int, ...] | None = None
    actual: tuple[int, ...] | None = None
    fix: Fix | None = None
    location: Location = field(default_factory=Location)
    # Findings of one rule that share a group (a module such as `roberta.encoder.`) are folded
    # into one line of text output unless --verbose; JSON always lists each one.
    group: str | None = None
    # The config.json key the finding is about (`id2label`, `vocab_size`, `auto_map`), so editors
    # can also show it on that line of the config.
    config_key: str | None = None

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path, self.location.line, self.location.column, self.code, self.tensor or "")
