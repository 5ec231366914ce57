"""Importing this package registers every rule (one module per family)."""

from __future__ import annotations

from sdlint.rules import integrity as integrity
from sdlint.rules import model as model
