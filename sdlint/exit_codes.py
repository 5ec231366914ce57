"""The exit statuses of every command, in a leaf module so commands never import `sdlint.cli`.

0 clean, 1 diagnostics reported, 2 usage or internal error (141 when stdout's reader left).
`sdlint.cli.main` makes the one decision that turns an exception into an exit status; a command
returns the status it decided.
"""

from __future__ import annotations

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `cat` in `cat big | head -1`
