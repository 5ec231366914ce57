"""Exceptions that end a run with exit status 2. Bad *input files* are diagnostics, never these."""

from __future__ import annotations


class SdlintError(Exception):
    """Base class: the CLI prints the message on one line and exits 2."""


class UsageError(SdlintError):
    """The command line or a configuration file asks for something impossible."""
