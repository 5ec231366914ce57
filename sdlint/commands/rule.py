"""`sdlint rule`: one rule's documentation, the list of rules, or all docs (docs/rules.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sdlint.exit_codes import EXIT_CLEAN, EXIT_ERROR
from sdlint.registry import all_rules, get_rule, rules_markdown


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    rule = commands.add_parser(
        "rule", help="explain a rule", description="Print a rule's documentation."
    )
    which = rule.add_mutually_exclusive_group(required=True)
    which.add_argument("code", nargs="?", metavar="CODE")
    which.add_argument("--all", action="store_true", help="list every rule")
    rule.add_argument(
        "--docs", action="store_true", help="with --all: every rule's full documentation"
    )


def run(args: argparse.Namespace) -> int:
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
