"""`sdlint check`: lint checkpoints, and with `--fix`/`--diff` fix them; the work is in
`sdlint.engine` (and `sdlint.fixes`), the output in `sdlint.emit`."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

from sdlint import runcache
from sdlint.config import HEAD_FIXES, MODEL_CHECKS, ConfigResolver
from sdlint.diagnostic import Diagnostic, Severity
from sdlint.emit import FORMATS, EmitContext, report_emitter
from sdlint.engine import Report, Settings, check_paths
from sdlint.errors import UsageError
from sdlint.exit_codes import EXIT_CLEAN, EXIT_FINDINGS
from sdlint.parallel import default_jobs
from sdlint.record import replace
from sdlint.sources import PathOrUrl, path_or_url
from sdlint.sources.local import display

TYPE_CHECKING = False  # typing is not imported at run time (a check has no use for it)
if TYPE_CHECKING:
    import argparse
    from typing import Any, TextIO

    # What `run` reads its options from: argparse's namespace, or `plain_arguments`'s.
    Arguments = argparse.Namespace | SimpleNamespace

    from sdlint.emit import Emitter
    from sdlint.fixes import FixOutcome


def _codes(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        import argparse

        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return int(value)


# The options of `sdlint check`, in help order: the flags and the keywords of argparse's
# `add_argument` (`add_parser` builds the parser from them; `plain_arguments` reads the plain
# command lines from them without argparse). Actions are those two understand: store (no action),
# "store_true", "extend", and _BOOLEAN_OPTIONAL for argparse.BooleanOptionalAction.
_BOOLEAN_OPTIONAL = "boolean-optional"
_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (
        ("--select",),
        {
            "action": "extend",
            "type": _codes,
            "metavar": "CODES",
            "help": "only these rule codes or prefixes, comma-separated (default: all default "
            "rules)",
        },
    ),
    (
        ("--extend-select",),
        {
            "action": "extend",
            "type": _codes,
            "default": [],
            "metavar": "CODES",
            "help": "rule codes or prefixes to add to the selection",
        },
    ),
    (
        ("--ignore",),
        {
            "action": "extend",
            "type": _codes,
            "default": [],
            "metavar": "CODES",
            "help": "rule codes or prefixes to leave out",
        },
    ),
    (
        ("--output-format",),
        {
            "choices": sorted(FORMATS),
            "default": "text",
            "help": "how to print the diagnostics (default: text)",
        },
    ),
    (
        ("--statistics",),
        {
            "action": "store_true",
            "help": "print how many findings of each rule instead of the findings",
        },
    ),
    (
        ("--exit-zero",),
        {
            "action": "store_true",
            "help": "exit 0 even when diagnostics are reported (still 2 on errors)",
        },
    ),
    (
        ("--show-fixes",),
        {
            "action": "store_true",
            "help": "after text output, list the fixes available for the findings",
        },
    ),
    (
        ("--model-config",),
        {
            "type": path_or_url,
            "metavar": "FILE",
            "help": "the transformers config.json the checkpoint will be loaded into, a file, URL "
            "or hf://ORG/NAME[@REVISION][/config.json] (default: the config.json beside the "
            "weights)",
        },
    ),
    (
        ("--jobs",),
        {
            "type": _positive,
            "metavar": "N",
            "help": "processes for many checkpoints (reading headers, building expected models) "
            "and remote reads in flight (default: the number of CPUs, and 8 remote reads); the "
            "output does not depend on it",
        },
    ),
    (
        ("--architecture",),
        {
            "metavar": "NAME",
            "help": "the transformers class to load into, e.g. RobertaModel "
            "(default: the config's `architectures[0]`)",
        },
    ),
    (
        ("--no-cache",),
        {
            "action": "store_true",
            "help": "always build the expected model (default: reuse cached verdicts; "
            "SDLINT_CACHE_DIR sets the cache folder)",
        },
    ),
    (
        ("--model-checks",),
        {
            "choices": MODEL_CHECKS,
            "help": "auto: build the expected model with transformers when no verdict is cached; "
            "cached: only use verdicts a run with transformers recorded (never imports it); "
            "off: integrity checks only; required: auto where transformers is installed, cached "
            "where not, and a skipped model check is a finding (SD108) instead of a note "
            "(default: the configuration's model-checks, else auto)",
        },
    ),
    (
        ("--record-verdicts",),
        {
            "type": Path,
            "metavar": "DIR",
            "help": "write the model verdicts of the checked checkpoints into DIR, a folder to "
            "commit so that the light hook (--model-checks=cached) reports them for everyone",
        },
    ),
    (
        ("--verdicts",),
        {
            "type": Path,
            "metavar": "DIR",
            "help": "with --model-checks=cached: also read the verdicts recorded in DIR "
            "(default: the `verdicts` configuration key)",
        },
    ),
    (
        ("--staged-deletions",),
        {
            "action": "store_true",
            "help": "also check the index of every shard the staged git commit deletes, that "
            "shard counted as missing (the pre-commit hooks: pre-commit passes no deleted file); "
            "with no PATH and nothing deleted, there is nothing to check",
        },
    ),
    (("-q", "--quiet"), {"action": "store_true", "help": "print diagnostics only"}),
    (
        ("--config",),
        {
            "type": Path,
            "metavar": "FILE",
            "help": "use this configuration file (pyproject.toml or sdlint.toml) for every path, "
            "instead of the one nearest to each path",
        },
    ),
    (("--isolated",), {"action": "store_true", "help": "ignore every configuration file"}),
    (
        ("--fix",),
        {
            "action": _BOOLEAN_OPTIONAL,
            "help": "apply the fixes that are safe (with --unsafe-fixes, the unsafe ones too)",
        },
    ),
    (
        ("--unsafe-fixes",),
        {
            "action": _BOOLEAN_OPTIONAL,
            "help": "also apply (with --fix) or show fixes that change what the checkpoint means",
        },
    ),
    (
        ("--diff",),
        {
            "action": "store_true",
            "help": "show what --fix would change without writing anything",
        },
    ),
    (
        ("--head-fix",),
        {
            "choices": HEAD_FIXES,
            "help": "SD101's fix: edit num_labels/id2label in the config (config, the default) "
            "or re-initialize the head tensors (reinit); both are unsafe",
        },
    ),
    (
        ("--backup",),
        {
            "action": _BOOLEAN_OPTIONAL,
            "help": "keep each original next to the fixed file (model.safetensors.bak)",
        },
    ),
    (
        ("--exit-non-zero-on-fix",),
        {
            "action": "store_true",
            "help": "exit 1 when --fix changed a file, even if nothing remains",
        },
    ),
    (
        ("--baseline",),
        {
            "type": Path,
            "metavar": "FILE",
            "help": "report only the findings this baseline file does not hold (see "
            "--write-baseline)",
        },
    ),
    (
        ("--write-baseline",),
        {
            "type": Path,
            "metavar": "FILE",
            "help": "record today's findings in FILE (JSON) and exit 0; later runs with "
            "--baseline FILE report only new ones",
        },
    ),
    (
        ("-v", "--verbose"),
        {
            "action": "store_true",
            "help": "list every finding (text output folds a module's findings into one line)",
        },
    ),
)


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    import argparse

    check = commands.add_parser(
        "check",
        help="lint checkpoints (files, sharded index files, model folders)",
        description="Lint safetensors checkpoints: files, sharded index files or model folders.",
    )
    check.add_argument(
        "paths",
        nargs="*",
        type=path_or_url,
        metavar="PATH",
        help="a file, index or folder; or a URL (https://HOST/model.safetensors, an index URL) or "
        "a hub repository (hf://ORG/NAME[@REVISION]), read by HTTP range requests, never "
        "downloaded",
    )
    for flags, options in _OPTIONS:
        if options.get("action") == _BOOLEAN_OPTIONAL:
            options = {**options, "action": argparse.BooleanOptionalAction}
        check.add_argument(*flags, **options)


def plain_arguments(argv: Sequence[str]) -> SimpleNamespace | None:
    """The namespace argparse makes of `sdlint check ARGV`, without argparse (importing it and
    building the parser cost every run several milliseconds, most of them in gettext lookups and
    regular expressions), when ARGV has only the plain forms: PATHs in one run (before or after
    the options), options spelled out in full (`--select SD1`, `--select=SD1`, `-q`), each value
    one that argparse accepts. For anything else (an abbreviation, `-qv`, `--`, `-h`, a value
    argparse refuses, PATHs on both sides of an option) None: argparse parses it and words any
    error. tests/commands/test_check_arguments.py holds the two to the same answers."""
    values: dict[str, Any] = {"command": "check", "paths": None}
    known: dict[str, tuple[str, dict[str, Any], bool]] = {}
    for flags, options in _OPTIONS:
        dest = next(flag for flag in flags if flag.startswith("--"))[2:].replace("-", "_")
        action = options.get("action")
        values[dest] = options.get("default", False if action == "store_true" else None)
        for flag in flags:
            known[flag] = (dest, options, True)
        if action == _BOOLEAN_OPTIONAL:
            known[f"--no-{flags[0][2:]}"] = (dest, options, False)
    index = 0
    while index < len(argv):
        word = argv[index]
        if not word.startswith("-"):  # PATHs: one run of them, as argparse takes `nargs="*"`
            if values["paths"] is not None:
                return None
            end = index
            while end < len(argv) and not argv[end].startswith("-"):
                end += 1
            try:
                values["paths"] = [path_or_url(path) for path in argv[index:end]]
            except Exception:
                return None
            index = end
            continue
        flag, equals, given = word.partition("=")
        if flag not in known or (equals and flag.startswith("--no-")):
            return None
        dest, options, positive = known[flag]
        action = options.get("action")
        if action in ("store_true", _BOOLEAN_OPTIONAL):
            if equals:
                return None
            values[dest] = positive
            index += 1
            continue
        if not equals:
            index += 1
            if index == len(argv) or argv[index].startswith("-"):
                return None
            given = argv[index]
        try:
            value = options.get("type", str)(given)
        except Exception:
            return None
        if "choices" in options and value not in options["choices"]:
            return None
        if action == "extend":
            value = [*(values[dest] or ()), *value]
        values[dest] = value
        index += 1
    if values["paths"] is None:
        values["paths"] = []
    return SimpleNamespace(**values)


def _use_color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def run(args: Arguments) -> int:
    deleted: list[Path] = []
    if args.staged_deletions:
        from sdlint.discover import indexes_of_deleted
        from sdlint.staged import staged_deletions

        deleted = staged_deletions()
        runcache.staged([str(path) for path in deleted])
        args.paths = [*args.paths, *indexes_of_deleted(deleted)]
        if not args.paths:  # a commit with no checkpoint file in it (the hooks always run)
            recorder = runcache.recording()
            if recorder is not None and _replayable(args, False, None):
                recorder.store("", EXIT_CLEAN)  # nothing printed: a note neither
            return EXIT_CLEAN
    elif not args.paths:
        raise UsageError("check: give at least one PATH")
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
        jobs=args.jobs or 8,
        processes=args.jobs or default_jobs(),
        verdicts=args.verdicts,
        deleted=deleted,
    )
    paths: list[PathOrUrl] = args.paths
    remote = [p for p in paths if isinstance(p, str)]
    if remote and (args.fix or args.diff):
        raise UsageError(
            f"{remote[0]}: remote checkpoints are read-only; --fix and --diff need local files "
            "(download the checkpoint first)"
        )
    # Fixing is decided once per run, by the command line or else the configuration in force for
    # the first PATH.
    first = paths[0] if isinstance(paths[0], Path) else Path()  # a URL: the current folder's
    project = ConfigResolver(config_file=args.config, isolated=args.isolated).for_path(first)
    fix = _choose(args.fix, project.fix) and not remote
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
    if args.record_verdicts is not None:
        from sdlint.verdicts import record

        count = record(report.checkpoints, settings, args.record_verdicts, report.model_config)
        if not args.quiet:
            sys.stderr.write(f"Recorded {count} verdicts in {display(args.record_verdicts)}\n")
    if args.write_baseline is not None:
        return _write_baseline(args.write_baseline, report)
    baseline = args.baseline or project.baseline
    if baseline is not None:
        report = _apply_baseline(baseline, report, args)
    context = EmitContext(
        files_checked=report.files_checked,
        color=_use_color(sys.stdout),
        quiet=args.quiet,
        verbose=args.verbose,
        unsafe_fixes=unsafe,
        fixed=len(fixed),
        notes=report.notes,
    )
    emit = report_emitter(
        args.output_format, statistics=args.statistics, show_fixes=args.show_fixes
    )
    if args.exit_zero:
        code = EXIT_CLEAN
    elif failing(report.diagnostics) or (fixed and args.exit_non_zero_on_fix):
        code = EXIT_FINDINGS
    else:
        code = EXIT_CLEAN
    recorder = runcache.recording()
    if recorder is None or not _replayable(args, fix, baseline):
        emit(report.diagnostics, context, sys.stdout)
        return code
    # Kept for the run cache: the output as it will be printed, and the note that replaces it
    # when the cache cannot be written.
    output = _rendered(emit, report.diagnostics, context)
    note = recorder.store(output, code)
    if note is not None:
        output = _rendered(emit, report.diagnostics, replace(context, notes=(*context.notes, note)))
    sys.stdout.write(output)
    return code


def _replayable(args: Arguments, fix: bool, baseline: Path | None) -> bool:
    """Whether the run cache may keep this run: one that only reads files and prints a report
    (no fixes, no written files, no baseline, the cache not turned off). git's answer to
    `--staged-deletions` is kept with the run and asked again by a replay."""
    return not (
        fix
        or args.no_cache
        or args.record_verdicts is not None
        or args.write_baseline is not None
        or baseline is not None
    )


def _rendered(emit: Emitter, diagnostics: Sequence[Diagnostic], context: EmitContext) -> str:
    buffer = io.StringIO()
    emit(diagnostics, context, buffer)
    return buffer.getvalue()


def failing(diagnostics: Sequence[Diagnostic]) -> bool:
    """Whether findings fail the run: any error or warning. Info findings (a new task head,
    SD105's dtype note) are shown but never fail it, nor block a commit."""
    return any(d.severity is not Severity.INFO for d in diagnostics)


def _write_baseline(path: Path, report: Report) -> int:
    from sdlint import baseline

    count = baseline.write(path, report.diagnostics, report.checkpoints)
    sys.stderr.write(f"Wrote {count} findings to the baseline {display(path)}\n")
    return EXIT_CLEAN


def _apply_baseline(path: Path, report: Report, args: Arguments) -> Report:
    """The report without the baseline's findings; the count (and, with --verbose, the stale
    entries) on stderr, so that stdout stays the report."""
    from sdlint import baseline

    filtered = baseline.apply(path, report.diagnostics, report.checkpoints)
    if filtered.suppressed and not args.quiet:
        s = "" if filtered.suppressed == 1 else "s"
        sys.stderr.write(
            f"{filtered.suppressed} finding{s} suppressed by the baseline {display(path)}\n"
        )
    if args.verbose:
        for entry in filtered.stale:
            where = f"{entry.path} {entry.tensor}".rstrip()
            sys.stderr.write(
                f"{display(path)}: stale entry {entry.code} {where}: matches no finding any "
                "more (write the baseline again to drop it)\n"
            )
    return replace(report, diagnostics=filtered.diagnostics)


def _choose(flag: bool | None, configured: bool | None) -> bool:
    return flag if flag is not None else bool(configured)


def _run_diff(args: Arguments, settings: Settings, unsafe: bool) -> int:
    """`--diff`: what `--fix` would change, on stdout; nothing is written."""
    from sdlint.fixes import plan_pass, render_diff

    report = check_paths(args.paths, settings)
    fix_pass = plan_pass(report.diagnostics, unsafe)
    sys.stdout.write(render_diff(fix_pass))
    hidden = len(plan_pass(report.diagnostics, True).diagnostics) - len(fix_pass.diagnostics)
    more = f" ({hidden} more with --unsafe-fixes)" if hidden and not unsafe else ""
    count = len(fix_pass.diagnostics)
    sys.stderr.write(f"Would fix {count} problem{'' if count == 1 else 's'}{more}.\n")
    if args.exit_zero:
        return EXIT_CLEAN
    return EXIT_FINDINGS if failing(report.diagnostics) else EXIT_CLEAN


def _report_fixes(outcome: FixOutcome) -> None:
    """Progress goes to stderr: stdout carries only the report."""
    for path in outcome.changed:
        sys.stderr.write(f"Fixed {display(path)}\n")
    for path in outcome.backups:
        sys.stderr.write(f"Kept the original as {display(path)}\n")
