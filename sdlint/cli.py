"""The `sdlint` command: the top-level parser and the single exit decision.

Each subcommand lives in `sdlint.commands` and returns its exit status (sdlint.exit_codes): 0
clean, 1 diagnostics reported, 2 usage or internal error. Exceptions become exit 2 here only: an
`SdlintError` (bad usage or configuration, a fix that could not be applied) as one line, anything
else as an internal error with where to report it.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

from sdlint import __version__
from sdlint.errors import SdlintError
from sdlint.exit_codes import EXIT_BROKEN_PIPE, EXIT_ERROR

# argparse and typing are imported when a command line is parsed: a replayed run has none.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, Protocol

    class _Command(Protocol):  # what a module of sdlint.commands provides
        def add_parser(self, commands: argparse._SubParsersAction[Any]) -> None: ...

        def run(self, args: argparse.Namespace) -> int: ...


ISSUES_URL = "https://github.com/sdlint/sdlint/issues"
# The width of the formatter a parser is built with (see `build_parser`): it formats only the
# subcommands' program names ("sdlint check"), which never wrap at it.
_BUILD_WIDTH = 100

# The subcommands (modules of sdlint.commands, each with `add_parser` and `run`), in help order.
COMMANDS = ("check", "rule", "server", "show", "diff")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, the one subcommand's (a run imports just that command's module:
    `sdlint check` does not pay for `show` and `diff`)."""
    import argparse

    class Parser(argparse.ArgumentParser):
        """Built with a formatter of a fixed width: argparse makes one for every argument added,
        only to check its metavar, and the default one asks the terminal for its width, which
        imports shutil (with bz2 and lzma) in a run that prints no help."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("formatter_class", _BuildFormatter)
            super().__init__(*args, **kwargs)

    class _BuildFormatter(argparse.HelpFormatter):
        def __init__(self, prog: str) -> None:
            super().__init__(prog, width=_BUILD_WIDTH)

    parser = Parser(
        prog="sdlint",
        description="A static linter for safetensors checkpoints. Reads headers only.",
    )
    parser.add_argument("--version", action="version", version=f"sdlint {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (only,) if only else COMMANDS:
        _command(name).add_parser(commands)
    # Help, usage and error messages: argparse's own formatter, at the terminal's width.
    for built in (parser, *commands.choices.values()):
        built.formatter_class = argparse.HelpFormatter
    return parser


def _command(name: str) -> _Command:
    command: _Command = importlib.import_module(f"sdlint.commands.{name}")
    return command


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand when it is the first word (`sdlint check ...`), else None (`sdlint
    --help`, `sdlint --version`, a typo: the full parser answers those)."""
    return argv[0] if argv and argv[0] in COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status. Without `argv` (the `sdlint` command itself), a `check`
    may be answered by the run cache (sdlint/runcache.py); a caller passing `argv` always has
    the command run."""
    command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if command_line and argv[:1] == ["check"]:
            return _check_through_run_cache(argv)
        return _run(argv)
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
        return _internal_error(e)


def _check_through_run_cache(argv: list[str]) -> int:
    """`sdlint check ...`: the stored run's output when nothing it depended on changed, else the
    run, recorded so that it can be stored."""
    from sdlint import runcache

    stored = runcache.replay(argv)
    if stored is not None:
        output, code = stored
        sys.stdout.write(output)
        sys.stdout.flush()  # a closed pipe fails here, not at exit
        return code
    runcache.begin(argv)
    try:
        return _run(argv)
    finally:
        runcache.end()


def _run(argv: list[str]) -> int:
    if argv[:1] == ["check"]:  # the usual command line needs no argparse (see plain_arguments)
        from sdlint.commands import check

        plain = check.plain_arguments(argv[1:])
        if plain is not None:
            code = check.run(plain)
            sys.stdout.flush()  # a closed pipe fails here, not at exit
            return code
    parser = build_parser(_chosen(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help/--version exit 0, usage errors exit 2
        return e.code if isinstance(e.code, int) else EXIT_ERROR
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    code = _command(args.command).run(args)
    sys.stdout.flush()  # a closed pipe fails here, not at exit
    return code


def _internal_error(e: Exception) -> int:
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
