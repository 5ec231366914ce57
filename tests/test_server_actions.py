"""Code actions of `sdlint server`: quick fixes for findings that have a fix, and
`source.fixAll.sdlint`, driven by a real LSP client as in tests/test_server.py (whose session
fixture and helpers this module reuses, with a session of its own)."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("pytest_lsp")

from lsprotocol import types as lsp
from pygls.workspace import PositionCodec
from pytest_lsp import LanguageClient

from sdlint.diagnostic import Applicability, Diagnostic, Severity
from sdlint.edits import RenameTensors, SetConfigValues
from sdlint.engine import Settings, check_paths
from sdlint.fixes import edited_json
from sdlint.formats.safetensors import Header, read_header
from sdlint.server.fixes import FindingRef, document_edit, wanted
from sdlint.server.workspace import OpenDocument
from tests import test_server
from tests.test_server import FIVE_LABELS, TIMEOUT, in_session, open_document, publishing
from tests.tiny_models import edit_config, edit_weights, save_roberta

pytestmark = [pytest.mark.model, pytest.mark.slow]
# test_server's session fixture: this module gets a server of its own, shared by its tests.
session = test_server.client

QUICK_FIX, FIX_ALL_KIND = lsp.CodeActionKind.QuickFix, "source.fixAll.sdlint"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny 2-label classifier saved once, copied into a folder per scenario: with a 5-label
    config, with every key under `module.` (as DistributedDataParallel saves), or both."""
    base = tmp_path_factory.mktemp("models")
    saved = save_roberta(base / "saved")
    out = {}
    for name in ("five-labels", "five-labels-undo", "wrapped", "wrapped-five-labels"):
        out[name] = Path(shutil.copytree(saved, base / name))
    for name in ("five-labels", "five-labels-undo", "wrapped-five-labels"):
        edit_config(
            out[name] / "config.json",
            id2label=FIVE_LABELS,
            label2id={v: int(k) for k, v in FIVE_LABELS.items()},
        )
    for name in ("wrapped", "wrapped-five-labels"):
        edit_weights(
            out[name] / "model.safetensors", lambda t: {"module." + k: v for k, v in t.items()}
        )
    return out


@pytest.fixture(scope="module")
def client(session: LanguageClient) -> LanguageClient:
    """The session, reading code actions as editors do. lsprotocol (2025.0.0) reads every result
    with a `command` member as a Command; but a CodeAction's `command` is an object (a Command),
    a Command's is a string, and that is what tells them apart."""
    converter = session.protocol._converter

    def code_action_or_command(value: Any, _: type) -> lsp.CodeAction | lsp.Command:
        if isinstance(value.get("command"), str):
            return converter.structure(value, lsp.Command)
        return converter.structure(value, lsp.CodeAction)

    converter.register_structure_hook(lsp.Command | lsp.CodeAction, code_action_or_command)
    return session


async def open_config(client: LanguageClient, config: Path, published_on: str) -> list[Any]:
    """Open a config.json; returns the diagnostics then published on `published_on` (the weights
    file's URI, for a finding without a config key)."""
    item = lsp.TextDocumentItem(config.as_uri(), "json", 1, config.read_text())
    return await publishing(
        client,
        published_on,
        lambda: client.text_document_did_open(lsp.DidOpenTextDocumentParams(item)),
    )


async def code_actions(
    client: LanguageClient,
    uri: str,
    diagnostics: list[Any],
    only: Sequence[lsp.CodeActionKind | str] | None = None,
) -> list[Any]:
    point = lsp.Position(0, 0)
    params = lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri),
        range=diagnostics[0].range if diagnostics else lsp.Range(point, point),
        context=lsp.CodeActionContext(diagnostics=diagnostics, only=only),
    )
    result = await asyncio.wait_for(client.text_document_code_action_async(params), TIMEOUT)
    return list(result or [])


async def execute(client: LanguageClient, command: lsp.Command, *uris: str) -> dict[str, list[Any]]:
    """Run a code action's command; returns what the server then publishes for `uris`."""
    for uri in uris:
        client.diagnostics.pop(uri, None)
    params = lsp.ExecuteCommandParams(command=command.command, arguments=command.arguments)
    await asyncio.wait_for(client.workspace_execute_command_async(params), TIMEOUT)

    async def published() -> None:
        while any(uri not in client.diagnostics for uri in uris):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(published(), TIMEOUT)
    return {uri: list(client.diagnostics[uri]) for uri in uris}


def keys(weights: Path) -> list[str]:
    header = read_header(weights)
    assert isinstance(header, Header)
    return list(header.tensors)


def whole(text: str) -> lsp.Range:
    """The range of the whole of an ASCII text (UTF-16 columns are code points then)."""
    lines = text.split("\n")
    return lsp.Range(lsp.Position(0, 0), lsp.Position(len(lines) - 1, len(lines[-1])))


@in_session
async def test_capabilities(client: LanguageClient) -> None:
    capabilities = client.server_capabilities  # type: ignore[attr-defined]
    assert list(capabilities.execute_command_provider.commands) == [
        "sdlint.applyFix",
        "sdlint.fixAll",
    ]
    kinds = capabilities.code_action_provider.code_action_kinds
    assert list(kinds) == [lsp.CodeActionKind.QuickFix, FIX_ALL_KIND]


@in_session
async def test_config_fix_is_an_edit_of_the_open_document(
    client: LanguageClient, models: dict[str, Path]
) -> None:
    config = models["five-labels"] / "config.json"
    uri, text = config.as_uri(), config.read_text()
    diagnostics = await open_document(client, config)
    assert [d.code for d in diagnostics] == ["SD101", "SD101"]
    # The fix the rule attaches, as `check --fix --unsafe-fixes` would apply it.
    report = check_paths([config], Settings(use_cache=False))
    [fix] = {d.fix for d in report.diagnostics if d.code == "SD101"}  # weight and bias share it
    assert fix is not None and fix.applicability is Applicability.UNSAFE
    [edit] = fix.edits
    assert isinstance(edit, SetConfigValues)
    values = {key: json.loads(value) for key, value in edit.values}
    expected = edited_json(text, values)
    assert len(json.loads(expected)["id2label"]) == 2

    # One fix for the head's weight and bias: offered once, resolving both diagnostics.
    [action] = await code_actions(client, uri, diagnostics)
    assert list(action.diagnostics) == diagnostics
    assert action.title == fix.description + " (unsafe)"
    assert (action.kind, action.command, action.is_preferred) == ("quickfix", None, None)
    assert list(action.edit.changes) == [uri]
    assert list(action.edit.changes[uri]) == [lsp.TextEdit(whole(text), expected)]

    # The editor's text, unsaved edits included, is what the values are set in.
    edited = text.replace('"model_type"', '"note": "unsaved",\n  "model_type"')
    change = lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=edited)],
    )
    moved = await publishing(client, uri, lambda: client.text_document_did_change(change))
    [action] = await code_actions(client, uri, moved, [QUICK_FIX])
    [text_edit] = action.edit.changes[uri]
    assert text_edit.new_text == edited_json(edited, values)
    assert json.loads(text_edit.new_text)["note"] == "unsaved"
    assert config.read_text() == text  # nothing is written: the editor applies the edit

    # Only unsafe fixes here: fix-all has nothing to offer.
    assert await code_actions(client, uri, moved, only=[lsp.CodeActionKind.SourceFixAll]) == []


async def published_until(
    client: LanguageClient, uri: str, done: Callable[[list[Any]], bool], send: Callable[[], None]
) -> list[Any]:
    """Send a notification, then wait until what the server publishes for `uri` satisfies `done`
    (an edit is published at once, re-placed, and again once the folder is checked)."""
    client.diagnostics.pop(uri, None)
    send()

    async def wait() -> list[Any]:
        while uri not in client.diagnostics or not done(list(client.diagnostics[uri])):
            await asyncio.sleep(0.01)
        return list(client.diagnostics[uri])

    return await asyncio.wait_for(wait(), TIMEOUT)


def change(uri: str, version: int, text: str) -> lsp.DidChangeTextDocumentParams:
    return lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
    )


@in_session
async def test_the_edited_text_is_checked_before_saving(
    client: LanguageClient, models: dict[str, Path]
) -> None:
    """After the quick fix edits the buffer, its findings go without a save; an undo (the old text
    again) brings them back. The file on disk is never written."""
    config = models["five-labels-undo"] / "config.json"
    uri, text = config.as_uri(), config.read_text()
    diagnostics = await open_document(client, config)
    assert [d.code for d in diagnostics] == ["SD101", "SD101"]
    [action] = await code_actions(client, uri, diagnostics, [QUICK_FIX])
    [fixed] = action.edit.changes[uri]

    def codes(published: list[Any]) -> list[str]:
        return [d.code for d in published]

    def send(version: int, new_text: str) -> Callable[[], None]:
        return lambda: client.text_document_did_change(change(uri, version, new_text))

    fixed_text = send(2, fixed.new_text)
    assert await published_until(client, uri, lambda p: codes(p) == [], fixed_text) == []
    back = await published_until(client, uri, lambda p: codes(p) != [], send(3, text))
    assert codes(back) == ["SD101", "SD101"]
    assert config.read_text() == text


@in_session
async def test_weights_fix_is_a_command(client: LanguageClient, models: dict[str, Path]) -> None:
    folder = models["wrapped"]
    config, weights = folder / "config.json", folder / "model.safetensors"
    diagnostics = await open_config(client, config, weights.as_uri())
    assert [d.code for d in diagnostics] == ["SD106"]

    [action] = await code_actions(client, weights.as_uri(), diagnostics, [QUICK_FIX])
    total = len(keys(weights))
    assert action.title == f"Strip the prefix `module.` from {total} keys (data untouched)"
    assert (action.kind, action.is_preferred, action.edit) == ("quickfix", True, None)
    assert action.command.command == "sdlint.applyFix"

    published = await execute(client, action.command, weights.as_uri())
    assert published[weights.as_uri()] == []
    assert not [k for k in keys(weights) if k.startswith("module.")]
    assert len(keys(weights)) == total

    # Again, on the files as they now are: the finding is gone, nothing is changed.
    before, messages = weights.read_bytes(), len(client.messages)
    assert await execute(client, action.command, config.as_uri()) == {config.as_uri(): []}
    [message] = client.messages[messages:]
    assert message.type == lsp.MessageType.Warning
    assert (
        message.message
        == "sdlint: SD106 in model.safetensors is no longer reported; nothing was changed"
    )
    assert weights.read_bytes() == before


@in_session
async def test_fix_all_applies_only_safe_fixes(
    client: LanguageClient, models: dict[str, Path]
) -> None:
    folder = models["wrapped-five-labels"]
    config, weights = folder / "config.json", folder / "model.safetensors"
    text = config.read_text()
    on_weights = await open_config(client, config, weights.as_uri())
    on_config = list(client.diagnostics[config.as_uri()])  # published just before, in path order
    assert [d.code for d in on_weights] == ["SD106"]  # safe
    assert [d.code for d in on_config] == ["SD101", "SD101"]  # unsafe

    for only in ([lsp.CodeActionKind.SourceFixAll], ["source"], [FIX_ALL_KIND]):
        [action] = await code_actions(client, config.as_uri(), [], only=only)
        assert action.kind == FIX_ALL_KIND
        assert action.command.command == "sdlint.fixAll"
        assert list(action.command.arguments) == [str(folder)]
    # Asked for everything: the unsafe quick fixes, and fix-all.
    everything = await code_actions(client, config.as_uri(), on_config)
    assert [a.kind for a in everything] == ["quickfix", FIX_ALL_KIND]
    assert [a.title.endswith(" (unsafe)") for a in everything] == [True, False]

    published = await execute(client, action.command, weights.as_uri(), config.as_uri())
    assert published[weights.as_uri()] == []
    assert [d.code for d in published[config.as_uri()]] == ["SD101", "SD101"]
    assert not [k for k in keys(weights) if k.startswith("module.")]
    assert config.read_text() == text
    # Nothing safe is left to fix.
    assert await code_actions(client, config.as_uri(), [], only=[FIX_ALL_KIND]) == []


# --- without a session ---


def test_wanted_kinds_are_hierarchical() -> None:
    assert wanted(FIX_ALL_KIND, None)
    assert wanted(FIX_ALL_KIND, ["source"]) and wanted(FIX_ALL_KIND, ["source.fixAll"])
    assert not wanted(FIX_ALL_KIND, [lsp.CodeActionKind.QuickFix, "source.fixAll.ruff"])
    assert not wanted("quickfix", ["source"]) and not wanted("quickfix", ["quick"])


def test_finding_ref_round_trip(tmp_path: Path) -> None:
    d = Diagnostic("SD104", Severity.WARNING, "never loaded", str(tmp_path / "m.safetensors"), "w")
    ref = FindingRef.of(tmp_path, d)
    assert ref.matches(d) and not ref.matches(Diagnostic("SD104", Severity.WARNING, "x", d.path))
    assert FindingRef.from_json(json.loads(json.dumps(ref.to_json()))) == ref
    bad: object
    for bad in (None, [], {**ref.to_json(), "code": 104}, {**ref.to_json(), "tensor": 1}):
        with pytest.raises(ValueError):
            FindingRef.from_json(bad)


def test_only_config_edits_of_open_documents_are_text_edits(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    doc = OpenDocument(config.as_uri(), 1, '{\n  "num_labels": 5\n}\n')
    codec = PositionCodec()
    set_two = SetConfigValues(config, (("num_labels", "2"),))
    edit = document_edit([set_two], {config: doc}, codec)
    assert edit is not None and edit.changes is not None
    assert edit.changes[doc.uri][0].new_text == '{\n  "num_labels": 2\n}\n'
    assert document_edit([set_two], {}, codec) is None  # not open: the command writes the file
    rename = RenameTensors(tmp_path / "model.safetensors", (("module.w", "w"),))
    assert document_edit([set_two, rename], {config: doc}, codec) is None
    mid_edit = OpenDocument(doc.uri, 2, '{\n  "num_labels": ')
    assert document_edit([set_two], {config: mid_edit}, codec) is None
    unchanged = SetConfigValues(config, (("num_labels", "5"),))
    assert document_edit([unchanged], {config: doc}, codec) is None
