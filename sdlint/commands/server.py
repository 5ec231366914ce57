"""`sdlint server`: the language server for editors (LSP over stdio), an optional extra."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sdlint.exit_codes import EXIT_ERROR


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    commands.add_parser(
        "server",
        help="run the language server for editors (LSP over stdio)",
        description="Serve the Language Server Protocol on stdin/stdout: diagnostics on "
        "config.json and *.safetensors.index.json files. Needs `pip install 'sdlint[lsp]'`.",
    )


def run(args: argparse.Namespace) -> int:
    # Imported here only: pygls is an optional extra, and `sdlint check` must not pay for it.
    try:
        from sdlint.server import serve
    except ImportError as e:
        if (e.name or "").partition(".")[0] not in {"pygls", "lsprotocol"}:
            raise  # a bug in sdlint.server, not a missing extra
        sys.stderr.write("sdlint: error: `sdlint server` needs pygls: pip install 'sdlint[lsp]'\n")
        return EXIT_ERROR
    return serve()
