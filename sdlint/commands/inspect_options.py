"""What `sdlint show` and `sdlint diff` share: the view options and the JSON output."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from sdlint.inspect import DEFAULT_DEPTH


def add_view_options(parser: argparse.ArgumentParser, *, json_is: str) -> None:
    """`--output-format text|json` (`json_is`: what the JSON document is) and `--depth N`."""
    parser.add_argument(
        "--output-format",
        choices=("text", "json"),
        default="text",
        help=f"text (default), or json: {json_is}",
    )
    parser.add_argument(
        "--depth",
        type=_depth,
        default=DEFAULT_DEPTH,
        metavar="N",
        help=f"group tensors by the first N levels of their module (default: {DEFAULT_DEPTH})",
    )


def _depth(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"N must be a whole number of 1 or more, got {value!r}")
    return int(value)


def write_json(document: Any, out: TextIO) -> None:
    json.dump(document, out, indent=2)
    out.write("\n")
