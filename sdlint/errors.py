"""Exceptions that end a run with exit status 2. Bad *input files* are diagnostics, never these.

An `SdlintError` is the user's to act on (one line, `sdlint: error: ...`); an `InternalError` is a
bug sdlint caught itself, reported like any other bug (`sdlint: internal error: ...` and where to
report it), so it is deliberately not an `SdlintError`.
"""

from __future__ import annotations


class SdlintError(Exception):
    """Base class: the CLI prints the message on one line and exits 2."""


class UsageError(SdlintError):
    """The command line or a configuration file asks for something impossible."""


class InternalError(Exception):
    """sdlint found a bug in itself (an invariant that does not hold); never the user's input."""
