"""sdlint: a static linter for safetensors checkpoints.

The library API the CLI is built on (docs/api.md)::

    from sdlint import Settings, check_paths
    report = check_paths(["model/"], Settings(ignore="SD104"))
    for diagnostic in report.diagnostics:
        print(diagnostic.path, diagnostic.code, diagnostic.message)
"""

from __future__ import annotations

__version__ = "0.1.0"

# Not `typing.TYPE_CHECKING`: `import sdlint` (every `python -m sdlint`) does not import typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from sdlint.diagnostic import Applicability, Diagnostic, Fix, Location, Severity
    from sdlint.engine import Report, Settings, check_paths
    from sdlint.errors import InternalError, SdlintError, UsageError
    from sdlint.fixes import FixError, FixOutcome, fix_paths
    from sdlint.rewrite import RewriteError

# Public name -> the module that defines it, imported on first use so `import sdlint` (and every
# `python -m sdlint`) stays as light as the command needs.
_EXPORTS = {
    "Applicability": "diagnostic",
    "Diagnostic": "diagnostic",
    "Fix": "diagnostic",
    "Location": "diagnostic",
    "Severity": "diagnostic",
    "Report": "engine",
    "Settings": "engine",
    "check_paths": "engine",
    "InternalError": "errors",
    "SdlintError": "errors",
    "UsageError": "errors",
    "FixError": "fixes",
    "FixOutcome": "fixes",
    "fix_paths": "fixes",
    "RewriteError": "rewrite",
}

__all__ = [
    "Applicability",
    "Diagnostic",
    "Fix",
    "FixError",
    "FixOutcome",
    "InternalError",
    "Location",
    "Report",
    "RewriteError",
    "SdlintError",
    "Settings",
    "Severity",
    "UsageError",
    "__version__",
    "check_paths",
    "fix_paths",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sdlint' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"sdlint.{module}"), name)


def __dir__() -> list[str]:
    return list(__all__)
