"""One module per subcommand, each with `add_parser(subparsers)` and `run(args) -> int`.

`sdlint.cli` builds the top-level parser from them and owns the single exit decision (exceptions
become exit 2 there); a command returns the exit status it decided (sdlint.exit_codes).
"""
