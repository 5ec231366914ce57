"""The `sdlint` command: argument parsing and exit codes only; the work is in `sdlint.engine`.

Exit status: 0 clean, 1 diagnostics reported, 2 usage or internal error (decided here only).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from sdlint import __version__
from sdlint.config import HEAD_FIXES, ConfigResolver
from sdlint.diagnostic import Diagnostic
from sdlint.emit import FORMATS, EmitContext, report_emitter
from sdlint.engine import Settings, check_paths
from sdlint.errors import SdlintError
from sdlint.registry import all_rules, get_rule, rules_markdown
from sdlint.sources.local import display

if TYPE_CHECKING:
    from sdlint.fixes import FixOutcome

ISSUES_URL = "https://github.com/sdlint/sdlint/issues"
EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `cat` in `cat big | head -1`


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
        choices=sorted(FORMATS),
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
    check.add_argument(
        "--model-checks",
        choices=("auto", "cached", "off"),
        default="auto",
        help="auto: build the expected model with transformers when no verdict is cached; "
        "cached: only use verdicts a run with transformers recorded (never imports it); "
        "off: integrity checks only",
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
        "--fix",
        action=argparse.BooleanOptionalAction,
        help="apply the fixes that are safe (with --unsafe-fixes, the unsafe ones too)",
    )
    check.add_argument(
        "--unsafe-fixes",
        action=argparse.BooleanOptionalAction,
        help="also apply (with --fix) or show fixes that change what the checkpoint means",
    )
    check.add_argument(
        "--diff",
        action="store_true",
        help="show what --fix would change without writing anything",
    )
    check.add_argument(
        "--head-fix",
        choices=HEAD_FIXES,
        help="SD101's fix: edit num_labels/id2label in the config (config, the default) or "
        "re-initialize the head tensors (reinit); both are unsafe",
    )
    check.add_argument(
        "--backup",
        action=argparse.BooleanOptionalAction,
        help="keep each original next to the fixed file (model.safetensors.bak)",
    )
    check.add_argument(
        "--exit-non-zero-on-fix",
        action="store_true",
        help="exit 1 when --fix changed a file, even if nothing remains",
    )
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
    rule.add_argument(
        "--docs", action="store_true", help="with --all: every rule's full documentation"
    )

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
        head_fix=args.head_fix,
        model_checks=args.model_checks,
    )
    # Fixing is decided once per run, by the command line or else the configuration in force for
    # the first PATH.
    project = ConfigResolver(config_file=args.config, isolated=args.isolated).for_path(
        args.paths[0]
    )
    fix = _choose(args.fix, project.fix)
    unsafe = _choose(args.unsafe_fixes, project.unsafe_fixes)
    if args.diff:
        return _run_diff(args, settings, unsafe)
    fixed: list[Diagnostic] = []
    if fix:
        from sdlint.fixes import fix_paths  # the rewriting machinery, only when fixing

        outcome = fix_paths(
            args.paths, settings, unsafe=unsafe, backup=_choose(args.backup, project.backup)
        )
        report, fixed = outcome.report, outcome.fixed
        _report_fixes(outcome)
    else:
        report = check_paths(args.paths, settings)
    context = EmitContext(
        files_checked=report.files_checked,
        color=_use_color(sys.stdout),
        quiet=args.quiet,
        verbose=args.verbose,
        unsafe_fixes=unsafe,
        fixed=len(fixed),
    )
    emit = report_emitter(
        args.output_format, statistics=args.statistics, show_fixes=args.show_fixes
    )
    emit(report.diagnostics, context, sys.stdout)
    if args.exit_zero:
        return EXIT_CLEAN
    if report.diagnostics or (fixed and args.exit_non_zero_on_fix):
        return EXIT_FINDINGS
    return EXIT_CLEAN


def _choose(flag: bool | None, configured: bool | None) -> bool:
    return flag if flag is not None else bool(configured)


def _run_diff(args: argparse.Namespace, settings: Settings, unsafe: bool) -> int:
    """`--diff`: what `--fix` would change, on stdout; nothing is written."""
    from sdlint.fixes import plan_pass, render_diff

    report = check_paths(args.paths, settings)
    fix_pass = plan_pass(report.diagnostics, unsafe)
    sys.stdout.write(render_diff(fix_pass))
    hidden = len(plan_pass(report.diagnostics, True).diagnostics) - len(fix_pass.diagnostics)
    more = f" ({hidden} more with --unsafe-fixes)" if hidden and not unsafe else ""
    sys.stderr.write(f"Would fix {len(fix_pass.diagnostics)} problems{more}.\n")
    if args.exit_zero:
        return EXIT_CLEAN
    return EXIT_FINDINGS if report.diagnostics else EXIT_CLEAN


def _report_fixes(outcome: FixOutcome) -> None:
    """Progress goes to stderr: stdout carries only the report."""
    for path in outcome.changed:
        sys.stderr.write(f"Fixed {display(path)}\n")
    for path in outcome.backups:
        sys.stderr.write(f"Kept the original as {display(path)}\n")


def _run_rule(args: argparse.Namespace) -> int:
    if args.all and args.docs:
        sys.stdout.write(rules_markdown())
        return EXIT_CLEAN
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
            code = _run_rule(args)
        elif args.command == "server":
            code = _run_server()
        else:
            code = _run_check(args)
        sys.stdout.flush()  # a closed pipe fails here, not at exit
        return code
    except BrokenPipeError:  # `sdlint ... | head -1`: the reader left, as other CLI tools do
        _silence_stdout()
        return EXIT_BROKEN_PIPE
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


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (captured by a test harness)
        pass
