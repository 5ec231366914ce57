"""sdlint: a static linter for safetensors checkpoints.

The library API the CLI is built on::

    from sdlint import Settings, check_paths
    report = check_paths(["model/"], Settings(ignore=("SD104",)))
    for diagnostic in report.diagnostics:
        print(diagnostic.path, diagnostic.code, diagnostic.message)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from sdlint.diagnostic import Diagnostic, Fix
    from sdlint.engine import Report, Settings, check_paths

__all__ = ["Diagnostic", "Fix", "Report", "Settings", "__version__", "check_paths"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import sdlint` (and every `python -m sdlint`) stays as light as the command needs.
    if name in ("Report", "Settings", "check_paths"):
        from sdlint import engine

        return getattr(engine, name)
    if name in ("Diagnostic", "Fix"):
        from sdlint import diagnostic

        return getattr(diagnostic, name)
    raise AttributeError(f"module 'sdlint' has no attribute {name!r}")
