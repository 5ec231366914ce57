"""The LSP session: keeps each folder's latest findings, checks a folder when one of its JSON files
is opened or saved (or a watched file changes), publishes the findings where `placement` puts
them, and answers code actions and fix commands with `fixes`."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path

from sdlint import __version__
from sdlint.config import CONFIG_FILES
from sdlint.config_fields import CONFIG_NAME
from sdlint.diagnostic import Applicability, Diagnostic, Fix
from sdlint.errors import SdlintError
from sdlint.formats.names import SAFETENSORS_INDEX_GLOBS
from sdlint.formats.safetensors import WEIGHTS_SUFFIX
from sdlint.server.fixes import (
    APPLY_FIX,
    FIX_ALL,
    FIX_ALL_KIND,
    FindingRef,
    document_edit,
    fix_finding,
    fix_folder,
    wanted,
)
from sdlint.server.placement import SOURCE, Placed, place_findings
from sdlint.server.workspace import (
    FolderFindings,
    OpenDocument,
    check_folder,
    is_document_to_lint,
    is_settings_file,
    norm_path,
    path_of,
    read_text,
)

logger = logging.getLogger("sdlint.server")

# What the server asks a client to watch (when it may register watchers dynamically): weights
# written by a training run or `git lfs pull`, JSON and settings changed outside the editor.
_WATCHED = (
    "**/*" + WEIGHTS_SUFFIX,
    *("**/" + glob for glob in SAFETENSORS_INDEX_GLOBS),  # plain, and a variant's
    "**/" + CONFIG_NAME,
    *("**/" + name for name in CONFIG_FILES),
)


# How long the text of a config must stay unchanged before it is checked: typing checks once,
# after the pause, rather than once per keystroke.
DEBOUNCE_SECONDS = 0.3


class SdlintLanguageServer(LanguageServer):
    """Keeps each folder's latest findings: an edit re-places them at once (a key moved), and
    checks the folder again with the editor's text once the edits pause."""

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
        self._debounced: dict[Path, asyncio.Task[None]] = {}  # per folder: its check to come

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
            # The configs as the editor has them now, unsaved edits included (as ruff's server).
            unsaved = {
                path: doc.text
                for path, doc in self.open_documents().items()
                if path.name == CONFIG_NAME
            }
            try:
                findings = await asyncio.to_thread(check_folder, folder, unsaved)
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

    def check_soon(self, folder: Path) -> None:
        """Check `folder` once no call for it has come for DEBOUNCE_SECONDS."""
        pending = self._debounced.pop(folder, None)
        if pending is not None:
            pending.cancel()

        async def later() -> None:
            await asyncio.sleep(DEBOUNCE_SECONDS)
            del self._debounced[folder]  # from here on, a new edit schedules a new check
            await self.check(folder)

        self._debounced[folder] = asyncio.ensure_future(later())

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
        self, folder: Path, d: Diagnostic, shown: list[lsp.Diagnostic]
    ) -> lsp.CodeAction | None:
        """The action applying `d`'s fix, which resolves every diagnostic in `shown`."""
        fix = d.fix
        if fix is None or not fix.edits:
            return None
        safe = fix.applicability is Applicability.SAFE
        title = fix.description if safe else fix.description + " (unsafe)"
        action = lsp.CodeAction(
            title=title,
            kind=lsp.CodeActionKind.QuickFix,
            diagnostics=shown,
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
            # One action per fix: a config fix shared by the findings of a head's weight and
            # bias is offered once, for both.
            fixes: dict[tuple[Path, Fix], tuple[Diagnostic, list[lsp.Diagnostic]]] = {}
            for shown in params.context.diagnostics:
                found = self.finding_of(path, shown)
                if found is None or found[1].fix is None:
                    continue
                folder, d = found
                fixes.setdefault((folder, found[1].fix), (d, []))[1].append(shown)
            for (folder, _), (d, resolved) in fixes.items():
                action = self.quick_fix(folder, d, resolved)
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
            return doc.text if doc is not None else read_text(path)

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

    def edited(ls: SdlintLanguageServer, uri: str) -> None:
        # An edit, or closing without saving, moves the config keys the findings point at:
        # re-place them at once. A config's text is also what its folders are checked against
        # (the editor's, unsaved edits included): check them again once the edits pause.
        path = path_of(uri)
        if path is None:
            return
        folders = ls.folders_showing(path)
        for folder in folders:
            ls.publish(folder)
        if path.name == CONFIG_NAME:
            for folder in {*folders, path.parent}:
                ls.check_soon(folder)

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
    async def did_change(ls: SdlintLanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
        edited(ls, params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: SdlintLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
        edited(ls, params.text_document.uri)

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

        await ls.run_fix(norm_path(ref.folder), work)

    @server.command(FIX_ALL)
    async def fix_all(ls: SdlintLanguageServer, *arguments: Any) -> None:
        if not all(isinstance(a, str) for a in arguments):
            raise JsonRpcInvalidParams(f"{FIX_ALL} takes folder paths")
        for folder in sorted({norm_path(a) for a in arguments}):
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
