"""The `sdlint` command: argument parsing and exit codes only; the work is in `sdlint.engine`.

Exit status: 0 clean, 1 diagnostics reported, 2 usage or internal error (decided here only).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from sdlint import __version__
from sdlint.emit import EmitContext, emitters, report_emitter
from sdlint.engine import Settings, check_paths
from sdlint.errors import SdlintError
from sdlint.registry import all_rules, get_rule

ISSUES_URL = "https://github.com/sdlint/sdlint/issues"
EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _codes(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdlint",
        description="A static linter for safetensors checkpoints. Reads headers only.",
    )
    parser.add_argument("--version", action="version", version=f"sdlint {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="lint checkpoints (files, sharded index files, model folders)",
        description="Lint safetensors checkpoints: files, sharded index files or model folders.",
    )
    check.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    check.add_argument(
        "--select",
        action="extend",
        type=_codes,
        metavar="CODES",
        help="only these rule codes or prefixes, comma-separated (default: all default rules)",
    )
    check.add_argument(
        "--extend-select",
        action="extend",
        type=_codes,
        default=[],
        metavar="CODES",
        help="rule codes or prefixes to add to the selection",
    )
    check.add_argument(
        "--ignore",
        action="extend",
        type=_codes,
        default=[],
        metavar="CODES",
        help="rule codes or prefixes to leave out",
    )
    check.add_argument(
        "--output-format",
        choices=sorted(emitters()),
        default="text",
        help="how to print the diagnostics (default: text)",
    )
    check.add_argument(
        "--statistics",
        action="store_true",
        help="print how many findings of each rule instead of the findings",
    )
    check.add_argument(
        "--exit-zero",
        action="store_true",
        help="exit 0 even when diagnostics are reported (still 2 on errors)",
    )
    check.add_argument(
        "--show-fixes",
        action="store_true",
        help="after text output, list the fixes available for the findings",
    )
    check.add_argument(
        "--model-config",
        type=Path,
        metavar="FILE",
        help="the transformers config.json the checkpoint will be loaded into "
        "(default: the config.json beside the weights)",
    )
    check.add_argument(
        "--architecture",
        metavar="NAME",
        help="the transformers class to load into, e.g. RobertaModel "
        "(default: the config's `architectures[0]`)",
    )
    check.add_argument(
        "--no-cache",
        action="store_true",
        help="always build the expected model (default: reuse cached verdicts; "
        "SDLINT_CACHE_DIR sets the cache folder)",
    )
    check.add_argument("-q", "--quiet", action="store_true", help="print diagnostics only")
    check.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="use this configuration file (pyproject.toml or sdlint.toml) for every path, "
        "instead of the one nearest to each path",
    )
    check.add_argument("--isolated", action="store_true", help="ignore every configuration file")
    check.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="list every finding (text output folds a module's findings into one line)",
    )

    rule = commands.add_parser(
        "rule", help="explain a rule", description="Print a rule's documentation."
    )
    which = rule.add_mutually_exclusive_group(required=True)
    which.add_argument("code", nargs="?", metavar="CODE")
    which.add_argument("--all", action="store_true", help="list every rule")

    commands.add_parser(
        "server",
        help="run the language server for editors (LSP over stdio)",
        description="Serve the Language Server Protocol on stdin/stdout: diagnostics on "
        "config.json and *.safetensors.index.json files. Needs `pip install 'sdlint[lsp]'`.",
    )
    return parser


def _use_color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def _run_check(args: argparse.Namespace) -> int:
    settings = Settings(
        select=tuple(args.select) if args.select is not None else None,
        extend_select=tuple(args.extend_select),
        ignore=tuple(args.ignore),
        model_config=args.model_config,
        architecture=args.architecture,
        use_cache=not args.no_cache,
        config_file=args.config,
        isolated=args.isolated,
    )
    report = check_paths(args.paths, settings)
    context = EmitContext(
        files_checked=report.files_checked,
        color=_use_color(sys.stdout),
        quiet=args.quiet,
        verbose=args.verbose,
    )
    emit = report_emitter(
        args.output_format, statistics=args.statistics, show_fixes=args.show_fixes
    )
    emit(report.diagnostics, context, sys.stdout)
    return EXIT_FINDINGS if report.diagnostics and not args.exit_zero else EXIT_CLEAN


def _run_rule(args: argparse.Namespace) -> int:
    if args.all:
        for r in all_rules():
            default = "" if r.enabled_by_default else "  (off by default)"
            sys.stdout.write(f"{r.code}  {r.name:<28} {r.summary}{default}\n")
        return EXIT_CLEAN
    found = get_rule(args.code)
    if found is None:
        sys.stderr.write(f"sdlint: error: unknown rule {args.code!r} (see `sdlint rule --all`)\n")
        return EXIT_ERROR
    sys.stdout.write(found.render_doc())
    return EXIT_CLEAN


def _run_server() -> int:
    # Imported here only: pygls is an optional extra, and `sdlint check` must not pay for it.
    try:
        from sdlint.server import serve
    except ImportError as e:
        if (e.name or "").partition(".")[0] not in {"pygls", "lsprotocol"}:
            raise  # a bug in sdlint.server, not a missing extra
        sys.stderr.write("sdlint: error: `sdlint server` needs pygls: pip install 'sdlint[lsp]'\n")
        return EXIT_ERROR
    return serve()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help/--version exit 0, usage errors exit 2
        return e.code if isinstance(e.code, int) else EXIT_ERROR
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        if args.command == "rule":
            return _run_rule(args)
        if args.command == "server":
            return _run_server()
        return _run_check(args)
    except SdlintError as e:
        sys.stderr.write(f"sdlint: error: {e}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("sdlint: interrupted\n")
        return EXIT_ERROR
    except Exception as e:  # a bug: one line, and where to report it
        sys.stderr.write(
            f"sdlint: internal error: {type(e).__name__}: {e}. This is a bug in sdlint "
            f"{__version__}; please report it with the command you ran at {ISSUES_URL}\n"
        )
        return EXIT_ERROR
