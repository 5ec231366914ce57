"""`sdlint server`: a language server (LSP over stdio) that shows sdlint's findings in editors.

Editors do not open binary `.safetensors` files as text, so findings are anchored on the JSON files
beside the weights: a `config.json` shows its own findings and, at the key they are about, every
finding of its checkpoints that carries a `config_key` (SD101 on `id2label`, SD102 on
`vocab_size`, ...); a `*.safetensors.index.json` shows its own. Findings in weights files without a
config key are published on the weights file's URI, which clients list in their problems panel.

The unit of work is a folder: `check_paths([folder/"config.json"])` checks exactly the checkpoints
beside that config (not the folders below it, as `check_paths([folder])` would). The project
configuration (`[tool.sdlint]`, `sdlint.toml`) applies as it does on the command line.

A finding with a fix offers it as a quick fix (unsafe ones too, marked, as ruff's server does:
picking one by hand is the opt-in). A fix that only sets config values in open documents is a
text edit the editor applies (and can undo); any other is the command `sdlint.applyFix`, which
checks again and rewrites the files on disk as `check --fix` does. `source.fixAll.sdlint` (the
command `sdlint.fixAll`) applies a folder's safe fixes, never its unsafe ones.

The modules: `workspace` (what to check), `placement` (where findings are shown), `fixes` (quick
fixes and fix commands) and `session` (the LSP server itself).

pygls is an optional dependency (`sdlint[lsp]`); only `sdlint server` imports this package, and
importing it without pygls raises ImportError naming pygls.
"""

from __future__ import annotations

import pygls  # noqa: F401  # first, so a missing extra fails here by name

from sdlint.server.session import SdlintLanguageServer, build_server, serve

__all__ = ["SdlintLanguageServer", "build_server", "serve"]
