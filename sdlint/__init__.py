"""sdlint: a static linter for safetensors checkpoints.

The library API the CLI is built on::

    from sdlint import check_paths, Settings
    report = check_paths(["model/"], Settings())
    for diagnostic in report.diagnostics: ...
"""

from __future__ import annotations

__version__ = "0.1.0"
