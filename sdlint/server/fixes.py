"""Fixes in the language server: a quick fix as a text edit of open documents when it only sets
config values in them, otherwise as a command that checks again and rewrites the files on disk as
`check --fix` does. No LSP session needed."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.workspace import PositionCodec

from sdlint.diagnostic import Diagnostic
from sdlint.edits import Edit, SetConfigValues, config_values
from sdlint.engine import Settings, check_paths
from sdlint.fixes import apply, edited_json, fix_paths
from sdlint.record import record
from sdlint.server.workspace import OpenDocument, lint_inputs, norm_path

APPLY_FIX = "sdlint.applyFix"  # arguments: one FindingRef.to_json()
FIX_ALL = "sdlint.fixAll"  # arguments: the folders, as paths
FIX_ALL_KIND = lsp.CodeActionKind.SourceFixAll.value + ".sdlint"


@record
class FindingRef:
    """What `sdlint.applyFix` is given: enough to find the finding again in a fresh check, so the
    fix applied is the one the files on disk call for now, not one computed before they changed."""

    folder: str
    code: str
    path: str
    tensor: str | None
    message: str

    @classmethod
    def of(cls, folder: Path, d: Diagnostic) -> FindingRef:
        return cls(str(folder), d.code, str(norm_path(d.path)), d.tensor, d.message)

    def to_json(self) -> dict[str, str | None]:
        return {
            "folder": self.folder,
            "code": self.code,
            "path": self.path,
            "tensor": self.tensor,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, value: object) -> FindingRef:
        """Raises ValueError for anything `to_json` did not make."""
        strings = ("folder", "code", "path", "message")
        if (
            not isinstance(value, dict)
            or not all(isinstance(value.get(k), str) for k in strings)
            or not isinstance(value.get("tensor"), (str, type(None)))
        ):
            raise ValueError("expected {folder, code, path, tensor, message}, as code actions give")
        return cls(**{k: value[k] for k in strings}, tensor=value.get("tensor"))

    def matches(self, d: Diagnostic) -> bool:
        same = (d.code, d.tensor, d.message) == (self.code, self.tensor, self.message)
        return same and norm_path(d.path) == norm_path(self.path)


def fix_finding(ref: FindingRef) -> bool:
    """Check the folder again and apply the fix of the finding `ref` names, alone (runs in a worker
    thread). False when the finding, or its fix, is gone: nothing is changed then. Raises
    FixError, or SdlintError for an invalid project configuration."""
    inputs = lint_inputs(norm_path(ref.folder))
    if not inputs:
        return False
    report = check_paths(inputs)
    for d in report.diagnostics:
        if d.fix is not None and d.fix.edits and ref.matches(d):
            # No backup, as `check --fix` without --backup: weights are rewritten atomically
            # and verified, and a backup of every checkpoint would double its size on disk.
            apply(d.fix.edits, report.checkpoints, backup=False)
            return True
    return False


def fix_folder(folder: Path) -> int:
    """Apply the folder's safe fixes as `check --fix` does, pass after pass until none is left
    (runs in a worker thread). Returns the number of findings fixed. Raises as `fix_finding`."""
    inputs = lint_inputs(folder)
    return len(fix_paths(inputs, Settings(), unsafe=False).fixed) if inputs else 0


def _edited_text(text: str, values: dict[str, Any]) -> str | None:
    """`text` with `values` set, or None when the editor's text is not a JSON object right now
    (mid-edit): there is nothing to apply the values to."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return edited_json(text, values) if isinstance(document, dict) else None


def _whole(text: str, codec: PositionCodec) -> lsp.Range:
    lines = text.split("\n")
    end = lsp.Position(line=len(lines) - 1, character=len(lines[-1]))
    return lsp.Range(
        start=lsp.Position(line=0, character=0), end=codec.position_to_client_units(lines, end)
    )


def document_edit(
    edits: Sequence[Edit], documents: Mapping[Path, OpenDocument], codec: PositionCodec
) -> lsp.WorkspaceEdit | None:
    """The fix as an edit of open documents' text, when it only sets config values in open
    documents; None when it touches weights or a file that is not open (the command applies it),
    or when it would change nothing.

    The new text is computed from the editor's text, unsaved edits included, so applying it keeps
    them; the whole document is replaced, as `check --fix` rewrites the whole file.
    """
    if not all(isinstance(edit, SetConfigValues) for edit in edits):
        return None
    values = {norm_path(path): new for path, new in config_values(edits).items()}
    changes: dict[str, list[lsp.TextEdit]] = {}
    for path, new in values.items():
        doc = documents.get(path)
        if doc is None:
            return None
        text = _edited_text(doc.text, new)
        if text is None:
            return None
        if text != doc.text:
            changes[doc.uri] = [lsp.TextEdit(range=_whole(doc.text, codec), new_text=text)]
    return lsp.WorkspaceEdit(changes=changes) if changes else None


def _kind_text(kind: lsp.CodeActionKind | str) -> str:
    return kind.value if isinstance(kind, lsp.CodeActionKind) else kind


def wanted(kind: str, only: Sequence[lsp.CodeActionKind | str] | None) -> bool:
    """Whether a code action request asks for `kind`: kinds are hierarchical, so `source` asks
    for `source.fixAll.sdlint`; no `only` asks for every kind."""
    if only is None:
        return True
    return any(kind == k or kind.startswith(k + ".") for k in map(_kind_text, only))
