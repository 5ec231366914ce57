"""`sdlint show`: what a checkpoint holds, from its headers only (sdlint/inspect.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from sdlint.commands.inspect_options import add_view_options, write_json
from sdlint.discover import find_checkpoints
from sdlint.exit_codes import EXIT_CLEAN, EXIT_FINDINGS
from sdlint.inspect import Contents, describe
from sdlint.sources import path_or_url


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    show = commands.add_parser(
        "show",
        help="list a checkpoint's tensors, modules and metadata (headers only)",
        description="Print what checkpoints hold: tensors (name, dtype, shape, bytes) grouped by "
        "module with counts and parameter totals, __metadata__, and each tensor's shard for "
        "sharded checkpoints. Reads headers only.",
    )
    show.add_argument("paths", nargs="+", type=path_or_url, metavar="PATH")
    add_view_options(show, json_is="an array with one object per checkpoint")
    show.add_argument(
        "--summary", action="store_true", help="text output: the modules only, not every tensor"
    )


def run(args: argparse.Namespace) -> int:
    everything = [describe(c) for c in find_checkpoints(args.paths)]
    if args.output_format == "json":
        write_json([c.to_dict(args.depth) for c in everything], sys.stdout)
    else:
        for i, contents in enumerate(everything):
            if i:
                sys.stdout.write("\n")
            render(contents, sys.stdout, depth=args.depth, tensors=not args.summary)
    return EXIT_FINDINGS if any(c.problems for c in everything) else EXIT_CLEAN


def render(contents: Contents, out: TextIO, *, depth: int, tensors: bool = True) -> None:
    """The text form: a summary line, the metadata, a module table, then every tensor."""
    out.write(
        f"{contents.path}: {len(contents.tensors):,} tensors, {contents.parameters:,} "
        f"parameters, {human_bytes(contents.nbytes)}"
        + (f" in {len(contents.files)} files" if contents.files else "")
        + "\n"
    )
    if contents.metadata is not None:
        out.write(f"__metadata__: {json.dumps(dict(contents.metadata), sort_keys=True)}\n")
    if contents.index_metadata is not None:
        out.write(f"index metadata: {json.dumps(dict(contents.index_metadata), sort_keys=True)}\n")
    for problem in contents.problems:
        out.write(f"problem: {problem} (see `sdlint check`)\n")
    modules = contents.modules(depth)
    if modules:
        out.write("\n")
        _table(
            out,
            ("module", "tensors", "parameters", "bytes"),
            [
                (m.module or "(top level)", f"{m.tensors:,}", f"{m.parameters:,}", f"{m.nbytes:,}")
                for m in modules
            ],
            right=(1, 2, 3),
        )
    if tensors and contents.tensors:
        out.write("\n")
        sharded = bool(contents.files)
        _table(
            out,
            ("tensor", "dtype", "shape", "bytes", *(("shard",) if sharded else ())),
            [
                (
                    t.name,
                    t.dtype,
                    "[" + ", ".join(str(d) for d in t.shape) + "]",
                    f"{t.nbytes:,}" if t.nbytes is not None else "?",
                    *((t.shard or "",) if sharded else ()),
                )
                for t in contents.tensors
            ],
            right=(3,),
        )


def _table(
    out: TextIO, heading: tuple[str, ...], rows: list[tuple[str, ...]], right: tuple[int, ...]
) -> None:
    widths = [max(len(row[i]) for row in [heading, *rows]) for i in range(len(heading))]
    for row in [heading, *rows]:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        out.write("  ".join(cells).rstrip() + "\n")


def human_bytes(size: int) -> str:
    """`101.6 kB`, `498.6 MB`: decimal units, as file browsers and the Hub print them."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
