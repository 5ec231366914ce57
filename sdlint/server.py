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

pygls is an optional dependency (`sdlint[lsp]`); only `sdlint server` imports this module.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import PositionCodec

from sdlint import __version__
from sdlint.checkpoint import INDEX_SUFFIX, WEIGHTS_SUFFIX
from sdlint.config import CONFIG_FILES, ConfigResolver
from sdlint.config_fields import CONFIG_NAME
from sdlint.diagnostic import Applicability, Diagnostic, Location, Severity
from sdlint.edits import Edit, SetConfigValues
from sdlint.engine import Settings, check_paths, resolve
from sdlint.errors import SdlintError
from sdlint.fixes import apply, edited_json, fix_paths
from sdlint.json_locations import key_locations

logger = logging.getLogger("sdlint.server")

SOURCE = "sdlint"
_SEVERITIES = {
    Severity.ERROR: lsp.DiagnosticSeverity.Error,
    Severity.WARNING: lsp.DiagnosticSeverity.Warning,
    Severity.INFO: lsp.DiagnosticSeverity.Information,
}
# What the server asks a client to watch (when it may register watchers dynamically): weights
# written by a training run or `git lfs pull`, JSON and settings changed outside the editor.
_WATCHED = (
    "**/*" + WEIGHTS_SUFFIX,
    "**/*" + INDEX_SUFFIX,
    "**/" + CONFIG_NAME,
    *("**/" + name for name in CONFIG_FILES),
)
APPLY_FIX = "sdlint.applyFix"  # arguments: one FindingRef.to_json()
FIX_ALL = "sdlint.fixAll"  # arguments: the folders, as paths
FIX_ALL_KIND = lsp.CodeActionKind.SourceFixAll.value + ".sdlint"


# --- what to check, and where its findings go (no LSP session needed) ---


def _norm(path: str | Path) -> Path:
    """One spelling per file, so a diagnostic's path and a document's URI compare equal.

    Not `resolve()`: in a Hugging Face cache the weights are symlinks into `blobs/`, and
    diagnostics must land on the path the editor shows, not on the blob.
    """
    return Path(os.path.normpath(Path(path).absolute()))


def path_of(uri: str) -> Path | None:
    """The local file a URI names; None for other schemes (untitled buffers, remote files)."""
    fs_path = to_fs_path(uri)
    return _norm(fs_path) if fs_path else None


def is_document_to_lint(path: Path) -> bool:
    """The text documents whose opening or saving triggers a check of their folder."""
    return path.name == CONFIG_NAME or path.name.endswith(INDEX_SUFFIX)


def is_settings_file(path: Path) -> bool:
    """A project configuration file: changing it may change every folder's findings."""
    return path.name in CONFIG_FILES


def lint_inputs(folder: Path) -> list[Path]:
    """What to pass `check_paths` for one folder: its checkpoints only, never the folders below."""
    config = folder / CONFIG_NAME
    if config.is_file():
        return [config]  # stands for every checkpoint beside it
    try:
        return sorted(
            p
            for p in folder.iterdir()
            if p.name.endswith((WEIGHTS_SUFFIX, INDEX_SUFFIX)) and p.is_file()
        )
    except OSError:  # the folder went away: nothing to check, stale diagnostics get cleared
        return []


@dataclass(frozen=True)
class FolderFindings:
    diagnostics: tuple[Diagnostic, ...] = ()
    # Every file of a checked checkpoint -> the config.json it was checked against: the one
    # beside it, or another named by the project configuration (`model-config` globs).
    config_of: Mapping[Path, Path] = field(default_factory=dict)


def check_folder(folder: Path) -> FolderFindings:
    """Lint one folder (runs in a worker thread: a cold cache builds a transformers model)."""
    inputs = lint_inputs(folder)
    if not inputs:
        return FolderFindings()
    report = check_paths(inputs)
    resolver = ConfigResolver()
    config_of: dict[Path, Path] = {}
    for checkpoint in report.checkpoints:
        # The engine's own precedence decides which config a checkpoint was checked against.
        target = resolve(Settings(), resolver.for_path(checkpoint.path), checkpoint.path).target
        config = _norm(target.config_path or checkpoint.folder / CONFIG_NAME)
        files = [checkpoint.path, *(result.path for result in checkpoint.files)]
        files += checkpoint.unreferenced_shards
        files += [checkpoint.folder / name for name in checkpoint.missing_shards]
        config_of.update((_norm(f), config) for f in files)
    return FolderFindings(report.diagnostics, config_of)


def _string_end(line: str, start: int) -> int:
    """The index just past the JSON string starting at `line[start]` (a `"`), or the line's end."""
    i = start + 1
    while i < len(line):
        if line[i] == "\\":
            i += 2
        elif line[i] == '"':
            return i + 1
        else:
            i += 1
    return len(line)


def lsp_range(lines: Sequence[str] | None, location: Location, codec: PositionCodec) -> lsp.Range:
    """The range to underline for a 1-based `location`: the whole key when it points at one.

    sdlint columns count code points; LSP counts in the negotiated encoding (UTF-16 by default),
    so positions go through the codec whenever the text is known.
    """
    line, column = max(location.line - 1, 0), max(location.column - 1, 0)
    if lines is None or line >= len(lines):  # binary weights, or a location past the text
        point = lsp.Position(line=line, character=column)
        return lsp.Range(start=point, end=point)
    text = lines[line].rstrip("\r")
    column = min(column, len(text))
    end = _string_end(text, column) if text[column : column + 1] == '"' else column + 1
    end = min(end, len(text))
    return lsp.Range(
        start=codec.position_to_client_units(lines, lsp.Position(line=line, character=column)),
        end=codec.position_to_client_units(lines, lsp.Position(line=line, character=end)),
    )


def to_lsp_diagnostic(
    d: Diagnostic,
    location: Location,
    lines: Sequence[str] | None,
    codec: PositionCodec,
    prefix: str = "",
) -> lsp.Diagnostic:
    return lsp.Diagnostic(
        range=lsp_range(lines, location, codec),
        message=f"{prefix}: {d.message}" if prefix else d.message,
        severity=_SEVERITIES.get(d.severity, lsp.DiagnosticSeverity.Error),
        code=d.code,
        source=SOURCE,
    )


def _relative(path: Path, folder: Path) -> str:
    """`path` as seen from `folder` (`../ckpt/model.safetensors` for a shared config)."""
    try:
        return Path(os.path.relpath(path, folder)).as_posix()
    except ValueError:  # another drive (Windows)
        return path.as_posix()


@dataclass(frozen=True)
class Placed:
    """A published diagnostic and the finding it shows: code actions start from the former (as
    the client sends it back) and need the latter's fix."""

    diagnostic: lsp.Diagnostic
    finding: Diagnostic


def place_findings(
    findings: FolderFindings, text_of: Callable[[Path], str | None], codec: PositionCodec
) -> dict[Path, list[Placed]]:
    """Place one folder's findings on files: each on its own file, and one that has a
    `config_key` at that key of the config its checkpoint was checked against, in the text
    `text_of` gives (the editor's, unsaved edits included, so the key is found where it is now).

    A finding in a weights file that has a config key is shown on the config only (prefixed with
    the file it is about), so the problems panel lists it once.
    """
    configs = set(findings.config_of.values())
    texts: dict[Path, str | None] = {}

    def text(path: Path) -> str | None:
        if path not in texts:
            texts[path] = text_of(path)
        return texts[path]

    out: dict[Path, list[Placed]] = {}
    for d in findings.diagnostics:
        path = _norm(d.path)
        config = findings.config_of.get(path)
        if path in configs or path.name == CONFIG_NAME:
            target, location, prefix = path, d.location, ""
        elif d.config_key is not None and config is not None and text(config) is not None:
            target, location, prefix = config, Location(), _relative(path, config.parent)
        else:
            # An index is JSON, measured like a config; weights files are binary, with no lines.
            own_text = text(path) if path.name.endswith(".json") else None
            own_lines = own_text.split("\n") if own_text is not None else None
            placed = Placed(to_lsp_diagnostic(d, d.location, own_lines, codec), d)
            out.setdefault(path, []).append(placed)
            continue
        target_text = text(target)
        if d.config_key is not None and target_text is not None:
            # `d.location` was measured on the file on disk; the key moves with unsaved edits.
            location = key_locations(target_text).get(d.config_key, location)
        lines = target_text.split("\n") if target_text is not None else None
        placed = Placed(to_lsp_diagnostic(d, location, lines, codec, prefix), d)
        out.setdefault(target, []).append(placed)
    return out


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


# --- applying fixes (no LSP session needed) ---


@dataclass(frozen=True)
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
        return cls(str(folder), d.code, str(_norm(d.path)), d.tensor, d.message)

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
        return same and _norm(d.path) == _norm(self.path)


def fix_finding(ref: FindingRef) -> bool:
    """Check the folder again and apply the fix of the finding `ref` names, alone (runs in a worker
    thread). False when the finding, or its fix, is gone: nothing is changed then. Raises
    FixError, or SdlintError for an invalid project configuration."""
    inputs = lint_inputs(_norm(ref.folder))
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
    values: dict[Path, dict[str, Any]] = {}
    for edit in edits:
        if not isinstance(edit, SetConfigValues):
            return None
        target = values.setdefault(_norm(edit.file), {})
        target.update({key: json.loads(value) for key, value in edit.values})
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


# --- the LSP session ---


@dataclass(frozen=True)
class OpenDocument:
    uri: str  # as the client spelled it: diagnostics must be published on the same URI
    version: int | None
    text: str


class SdlintLanguageServer(LanguageServer):
    """Keeps each folder's latest findings, so edits re-place them without checking again."""

    def __init__(self) -> None:
        # Full sync: config.json files are small, and whole texts keep the server simple.
        super().__init__(
            "sdlint", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Full
        )
        self.findings: dict[Path, FolderFindings] = {}
        # Per folder, its findings as placed on each file. LSP replaces a file's whole list on
        # each publish, and a config named by a `model-config` glob may serve several folders.
        self._placed: dict[Path, dict[Path, list[Placed]]] = {}
        self._requested: dict[Path, int] = {}  # per folder: number of the latest check requested
        # One check or fix at a time: building a transformers model patches process-wide torch
        # state (init functions, default dtype), which concurrent builds in two threads would
        # share; and a check must not read a file a fix is rewriting.
        self._check_lock = asyncio.Lock()

    def open_documents(self) -> dict[Path, OpenDocument]:
        out: dict[Path, OpenDocument] = {}
        for uri, doc in dict(self.workspace.text_documents).items():
            path = path_of(uri)
            if path is not None:
                out[path] = OpenDocument(doc.uri, doc.version, doc.source)
        return out

    async def check(self, folder: Path) -> None:
        """Check `folder` in a worker thread and publish. A request overtaken by a later one for
        the same folder is dropped: saving twice quickly checks once more, not twice."""
        number = self._requested[folder] = self._requested.get(folder, 0) + 1
        async with self._check_lock:
            if self._requested[folder] != number:
                return
            try:
                findings = await asyncio.to_thread(check_folder, folder)
            except SdlintError as e:  # mostly an invalid project configuration: show the user
                logger.error("%s", e)
                self.show(lsp.MessageType.Error, f"sdlint: {e}")
                return
            except Exception as e:  # a bug, or a file that vanished mid-check: keep serving
                logger.exception("checking %s failed", folder)
                self.window_log_message(
                    lsp.LogMessageParams(
                        type=lsp.MessageType.Error,
                        message=f"sdlint: checking {folder} failed: {type(e).__name__}: {e}",
                    )
                )
                return
        self.findings[folder] = findings
        self.publish(folder)

    async def check_all(self) -> None:
        for folder in sorted(self.findings):
            await self.check(folder)

    def folders_showing(self, path: Path) -> list[Path]:
        """The checked folders whose findings are placed on `path`'s text, or would be."""
        return sorted(
            folder
            for folder in self.findings
            if folder == path.parent
            or path in self._placed.get(folder, {})
            or path in self.findings[folder].config_of.values()
        )

    def placed_on(self, path: Path) -> list[Placed]:
        return [p for by_file in self._placed.values() for p in by_file.get(path, [])]

    def finding_of(self, path: Path, shown: lsp.Diagnostic) -> tuple[Path, Diagnostic] | None:
        """The folder and finding behind a diagnostic the client shows on `path`.

        By code and message, the range picking among equals: a client may send a diagnostic as
        it showed it before the latest edit moved its key.
        """
        if shown.source != SOURCE:
            return None
        same = [
            (folder, p)
            for folder, by_file in self._placed.items()
            for p in by_file.get(path, [])
            if (p.diagnostic.code, p.diagnostic.message) == (shown.code, shown.message)
        ]
        exact = [(folder, p) for folder, p in same if p.diagnostic.range == shown.range]
        chosen = exact or same
        return (chosen[0][0], chosen[0][1].finding) if chosen else None

    def quick_fix(
        self, folder: Path, d: Diagnostic, shown: lsp.Diagnostic
    ) -> lsp.CodeAction | None:
        fix = d.fix
        if fix is None or not fix.edits:
            return None
        safe = fix.applicability is Applicability.SAFE
        title = fix.description if safe else fix.description + " (unsafe)"
        action = lsp.CodeAction(
            title=title,
            kind=lsp.CodeActionKind.QuickFix,
            diagnostics=[shown],
            is_preferred=safe or None,  # what an editor's "auto fix" may pick without asking
        )
        edit = document_edit(fix.edits, self.open_documents(), self.workspace.position_codec)
        if edit is not None:
            action.edit = edit
        else:
            action.command = lsp.Command(
                title=title, command=APPLY_FIX, arguments=[FindingRef.of(folder, d).to_json()]
            )
        return action

    def code_actions(self, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        path = path_of(params.text_document.uri)
        if path is None:
            return []
        only = params.context.only
        actions: list[lsp.CodeAction] = []
        if wanted(lsp.CodeActionKind.QuickFix.value, only):
            for shown in params.context.diagnostics:
                found = self.finding_of(path, shown)
                action = self.quick_fix(*found, shown) if found is not None else None
                if action is not None:
                    actions.append(action)
        if wanted(FIX_ALL_KIND, only):
            folders = [
                str(folder)
                for folder in self.folders_showing(path)
                if any(
                    d.fix is not None and d.fix.edits and d.fix.applies(unsafe=False)
                    for d in self.findings[folder].diagnostics
                )
            ]
            if folders:
                title = "sdlint: apply all safe fixes"
                actions.append(
                    lsp.CodeAction(
                        title=title,
                        kind=FIX_ALL_KIND,
                        command=lsp.Command(title=title, command=FIX_ALL, arguments=folders),
                    )
                )
        return actions

    async def run_fix(self, folder: Path, work: Callable[[], object]) -> None:
        """Run `work` (it rewrites files of `folder`; a string it returns is shown to the user) in
        a worker thread, alone; then check the folder again and publish, even after an error: a
        fix of several shards may have rewritten some before it failed."""
        async with self._check_lock:
            try:
                notice = await asyncio.to_thread(work)
            except SdlintError as e:  # FixError says which file, and that the original is intact
                logger.error("%s", e)
                self.show(lsp.MessageType.Error, f"sdlint: {e}")
            except Exception as e:  # a bug, or a file that vanished mid-fix: keep serving
                logger.exception("fixing %s failed", folder)
                self.show(
                    lsp.MessageType.Error,
                    f"sdlint: fixing {folder} failed: {type(e).__name__}: {e}",
                )
            else:
                if isinstance(notice, str):
                    self.show(lsp.MessageType.Warning, notice)
        await self.check(folder)

    def show(self, kind: lsp.MessageType, message: str) -> None:
        self.window_show_message(lsp.ShowMessageParams(type=kind, message=message))

    def publish(self, folder: Path) -> None:
        """Send the folder's latest findings, and empty lists where diagnostics went away."""
        documents = self.open_documents()

        def text_of(path: Path) -> str | None:
            doc = documents.get(path)
            return doc.text if doc is not None else _read_text(path)

        before = self._placed.get(folder, {})
        placed = place_findings(
            self.findings.get(folder, FolderFindings()), text_of, self.workspace.position_codec
        )
        self._placed[folder] = placed
        targets = set(placed) | set(before)
        # An open config or index always gets an answer, an empty one meaning "checked, clean".
        targets |= {p for p in documents if p.parent == folder and is_document_to_lint(p)}
        for path in sorted(targets):
            merged = [p.diagnostic for p in self.placed_on(path)]
            doc = documents.get(path)
            uri = doc.uri if doc is not None else from_fs_path(str(path))
            if not uri:
                continue
            self.text_document_publish_diagnostics(
                lsp.PublishDiagnosticsParams(
                    uri=uri, diagnostics=merged, version=doc.version if doc is not None else None
                )
            )


def build_server() -> SdlintLanguageServer:
    """A server with sdlint's handlers registered (a fresh one per call)."""
    server = SdlintLanguageServer()

    async def on_open_or_save(ls: SdlintLanguageServer, uri: str, saved: bool) -> None:
        path = path_of(uri)
        if path is None:
            return
        if is_document_to_lint(path):
            await ls.check(path.parent)
        elif saved and is_settings_file(path):  # opening one changes nothing
            await ls.check_all()

    def replace_findings(ls: SdlintLanguageServer, uri: str) -> None:
        # Findings come from the files on disk (checked again on save); an edit, or closing
        # without saving, only moves the config keys they point at: re-place, no new check.
        path = path_of(uri)
        if path is not None:
            for folder in ls.folders_showing(path):
                ls.publish(folder)

    @server.feature(lsp.INITIALIZED)
    async def initialized(ls: SdlintLanguageServer, params: lsp.InitializedParams) -> None:
        # Clients report changes to files that are not open only for patterns the server asked
        # for; weights are never open, so ask (when the client lets servers register watchers).
        workspace = ls.client_capabilities.workspace
        watched = workspace.did_change_watched_files if workspace is not None else None
        if watched is None or not watched.dynamic_registration:
            return
        options = lsp.DidChangeWatchedFilesRegistrationOptions(
            watchers=[lsp.FileSystemWatcher(glob_pattern=pattern) for pattern in _WATCHED]
        )
        registration = lsp.Registration(
            id="sdlint-watched-files",
            method=lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            register_options=options,
        )
        try:
            await ls.client_register_capability_async(
                lsp.RegistrationParams(registrations=[registration])
            )
        except Exception:  # refused: documents are still checked on open and save
            logger.warning("the client did not accept file watchers", exc_info=True)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: SdlintLanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
        await on_open_or_save(ls, params.text_document.uri, saved=False)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: SdlintLanguageServer, params: lsp.DidSaveTextDocumentParams) -> None:
        await on_open_or_save(ls, params.text_document.uri, saved=True)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SdlintLanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
        replace_findings(ls, params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SdlintLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
        replace_findings(ls, params.text_document.uri)

    @server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix, FIX_ALL_KIND]),
    )
    def code_action(ls: SdlintLanguageServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        return ls.code_actions(params)

    # Commands take their arguments raw (`*arguments`): pygls would otherwise convert each to the
    # parameter's annotated type, and a malformed one deserves sdlint's own error message.
    @server.command(APPLY_FIX)
    async def apply_fix(ls: SdlintLanguageServer, *arguments: Any) -> None:
        try:
            (ref,) = map(FindingRef.from_json, arguments)
        except ValueError as e:  # also for the wrong number of arguments
            raise JsonRpcInvalidParams(f"{APPLY_FIX} takes one finding: {e}") from e

        def work() -> str | None:
            if fix_finding(ref):
                return None
            where = f"{Path(ref.path).name}: {ref.tensor}" if ref.tensor else Path(ref.path).name
            return f"sdlint: {ref.code} in {where} is no longer reported; nothing was changed"

        await ls.run_fix(_norm(ref.folder), work)

    @server.command(FIX_ALL)
    async def fix_all(ls: SdlintLanguageServer, *arguments: Any) -> None:
        if not all(isinstance(a, str) for a in arguments):
            raise JsonRpcInvalidParams(f"{FIX_ALL} takes folder paths")
        for folder in sorted({_norm(a) for a in arguments}):
            await ls.run_fix(folder, functools.partial(fix_folder, folder))

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def did_change_watched_files(
        ls: SdlintLanguageServer, params: lsp.DidChangeWatchedFilesParams
    ) -> None:
        paths = [p for p in map(path_of, (c.uri for c in params.changes)) if p is not None]
        if any(is_settings_file(p) for p in paths):
            await ls.check_all()
            return
        folders = {
            p.parent for p in paths if p.name.endswith(WEIGHTS_SUFFIX) or is_document_to_lint(p)
        }
        for folder in sorted(folders):  # one at a time anyway: `check` serializes
            await ls.check(folder)

    return server


def serve() -> NoReturn:
    """Serve LSP on stdin/stdout until the client says exit, then end the process. Logs go to
    stderr."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(levelname)s: %(message)s"
    )
    server = build_server()
    # stdout carries the protocol: keep a private handle on it, and point file descriptor 1 and
    # sys.stdout at stderr so a stray print (ours or a library's, even from C) cannot corrupt it.
    sys.stdout.flush()
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    try:
        server.start_io(sys.stdin.buffer, protocol_out)
    finally:
        protocol_out.close()
    # Exit at once: the client waits for this process, and finalizing torch after a model was
    # built takes seconds. Nothing is pending: the verdict cache is written as it goes.
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)
