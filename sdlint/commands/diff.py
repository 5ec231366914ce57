"""`sdlint diff A B`: how two checkpoints differ in tensor names, dtypes and shapes, from their
headers only (sdlint/inspect.py). Exit 1 when they differ, 0 when they hold the same tensors."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from sdlint.commands.inspect_options import add_view_options, write_json
from sdlint.discover import find_checkpoints
from sdlint.dtypes import shape_text
from sdlint.errors import UsageError
from sdlint.exit_codes import EXIT_CLEAN, EXIT_FINDINGS
from sdlint.inspect import DEFAULT_DEPTH, Contents, Difference, compare, describe, shape_change
from sdlint.sources import PathOrUrl, path_or_url
from sdlint.sources.local import display


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    diff = commands.add_parser(
        "diff",
        help="compare two checkpoints' tensors: keys, dtypes and shapes (headers only)",
        description="Compare two checkpoints (weights files, sharded indexes or folders holding "
        "one checkpoint): tensors only in A, only in B, and dtype or shape changes, grouped by "
        "module. Exit 1 when they differ, 0 when they hold the same tensors.",
    )
    diff.add_argument("a", type=path_or_url, metavar="A")
    diff.add_argument("b", type=path_or_url, metavar="B")
    add_view_options(diff, json_is="one object")


def run(args: argparse.Namespace) -> int:
    difference = compare(_one(args.a), _one(args.b))
    if args.output_format == "json":
        write_json(difference.to_dict(), sys.stdout)
    else:
        render(difference, sys.stdout, depth=args.depth)
    return EXIT_FINDINGS if difference.differs else EXIT_CLEAN


def _one(path: PathOrUrl) -> Contents:
    """The one checkpoint `path` names, fully read: a diff of partly read files would lie."""
    found = find_checkpoints([path])
    if len(found) != 1:
        names = ", ".join(c.display_path for c in found)
        raise UsageError(
            f"{display(path)} holds {len(found)} checkpoints ({names}): name one of them"
        )
    contents = describe(found[0])
    if contents.problems:
        raise UsageError(
            f"{contents.problems[0]}: cannot compare {contents.path} (see `sdlint check`)"
        )
    return contents


def render(difference: Difference, out: TextIO, *, depth: int = DEFAULT_DEPTH) -> None:
    """`--- A`/`+++ B`, then per module: `-` only in A, `+` only in B, and one line per change
    (`classifier.out_proj.weight [2, 768] -> [5, 768]`); a summary line last."""
    out.write(f"--- {difference.a}\n+++ {difference.b}\n")
    for group in difference.by_module(depth):
        parts = []
        if group.changed:
            parts.append(f"{len(group.changed)} changed")
        if group.only_in_a:
            parts.append(f"{len(group.only_in_a)} only in A")
        if group.only_in_b:
            parts.append(f"{len(group.only_in_b)} only in B")
        out.write(f"{group.module or '(top level)'}: {', '.join(parts)}\n")
        for change in group.changed:
            out.write(f"  {change.name} {shape_change(change)}\n")
        for row in group.only_in_a:
            out.write(f"  - {row.name} {row.dtype} {shape_text(row.shape)}\n")
        for row in group.only_in_b:
            out.write(f"  + {row.name} {row.dtype} {shape_text(row.shape)}\n")
    if difference.metadata_changed:
        out.write("__metadata__ differs\n")
    if difference.differs:
        out.write(
            f"{len(difference.changed)} changed, {len(difference.only_in_a)} only in A, "
            f"{len(difference.only_in_b)} only in B, {difference.same} same\n"
        )
    else:
        out.write(f"same tensors: {difference.same} names, dtypes and shapes\n")
