"""`sdlint server` end to end: a real LSP client (pytest-lsp) drives `python -m sdlint server` in a
subprocess over stdio, on tiny RoBERTa checkpoints built in code. One server session serves the
whole module (each test uses its own folder), so the model is built once per run."""

from __future__ import annotations

import asyncio
import fnmatch
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("pytest_lsp")

import pytest_asyncio
from lsprotocol import types as lsp
from pygls.workspace import PositionCodec
from pytest_lsp import LanguageClient, make_test_lsp_client

from sdlint.diagnostic import Diagnostic, Location, Severity
from sdlint.server.placement import lsp_range, place_findings
from sdlint.server.workspace import FolderFindings, is_document_to_lint, lint_inputs
from tests.safetensors_files import write_sharded
from tests.tiny_models import edit_config, save_roberta

pytestmark = [pytest.mark.model, pytest.mark.slow]
# The session tests share the module-scoped client, so they run on its event loop.
in_session = pytest.mark.asyncio(loop_scope="module")
ROOT = Path(__file__).parent.parent
# A cold cache builds the expected model in the server: importing torch alone takes seconds.
TIMEOUT = 120.0
FIVE_LABELS = {str(i): f"LABEL_{i}" for i in range(5)}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny 2-label classifier saved once, copied into a folder per scenario."""
    base = tmp_path_factory.mktemp("models")
    saved = save_roberta(base / "saved")
    out = {}
    for name in ("five-labels", "clean", "broken-config", "truncated"):
        out[name] = Path(shutil.copytree(saved, base / name))
    edit_config(
        out["five-labels"] / "config.json",
        id2label=FIVE_LABELS,
        label2id={v: int(k) for k, v in FIVE_LABELS.items()},
    )
    (out["broken-config"] / "config.json").write_text('{"model_type": "roberta",\n  "id2label": ')
    return out


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LanguageClient]:
    client = make_test_lsp_client()
    registrations: list[lsp.Registration] = []

    def register_capability(params: lsp.RegistrationParams) -> None:
        registrations.extend(params.registrations)

    client.feature(lsp.CLIENT_REGISTER_CAPABILITY)(register_capability)
    env = {**os.environ, "SDLINT_CACHE_DIR": str(tmp_path_factory.mktemp("server-cache"))}
    await client.start_io(sys.executable, "-m", "sdlint", "server", env=env, cwd=str(ROOT))
    capabilities = lsp.ClientCapabilities(
        workspace=lsp.WorkspaceClientCapabilities(
            did_change_watched_files=lsp.DidChangeWatchedFilesClientCapabilities(
                dynamic_registration=True
            )
        ),
        text_document=lsp.TextDocumentClientCapabilities(
            publish_diagnostics=lsp.PublishDiagnosticsClientCapabilities(version_support=True)
        ),
    )
    result = await client.initialize_session(lsp.InitializeParams(capabilities=capabilities))
    assert result.server_info is not None and result.server_info.name == "sdlint"

    async def registered() -> None:  # the server asks right after `initialized`
        while not registrations:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(registered(), TIMEOUT)
    client.registrations = registrations  # type: ignore[attr-defined]
    client.server_capabilities = result.capabilities  # type: ignore[attr-defined]
    yield client
    await client.shutdown_session()
    await client.stop()  # type: ignore[no-untyped-call]  # pytest-lsp leaves it unannotated


async def publishing(client: LanguageClient, uri: str, send: Callable[[], None]) -> list[Any]:
    """Send a notification, then wait for the diagnostics the server publishes for `uri`.

    Polls the client's record of publications: pytest-lsp's `wait_for_notification` holds one
    waiter per method, and misses a publication that arrives in the same read as the one before.
    """
    client.diagnostics.pop(uri, None)
    send()

    async def wait() -> list[Any]:
        while uri not in client.diagnostics:
            await asyncio.sleep(0.01)
        return list(client.diagnostics[uri])

    return await asyncio.wait_for(wait(), TIMEOUT)


async def open_document(client: LanguageClient, path: Path) -> list[Any]:
    uri = path.as_uri()
    item = lsp.TextDocumentItem(uri=uri, language_id="json", version=1, text=path.read_text())
    return await publishing(
        client, uri, lambda: client.text_document_did_open(lsp.DidOpenTextDocumentParams(item))
    )


def weights_changed(client: LanguageClient, weights: Path) -> Callable[[], None]:
    event = lsp.FileEvent(uri=weights.as_uri(), type=lsp.FileChangeType.Changed)
    return lambda: client.workspace_did_change_watched_files(
        lsp.DidChangeWatchedFilesParams(changes=[event])
    )


def line_of(text: str, needle: str) -> int:
    """The 0-based line of the first line containing `needle`."""
    return next(i for i, line in enumerate(text.split("\n")) if needle in line)


@in_session
async def test_head_mismatch_on_the_id2label_line(
    client: LanguageClient, models: dict[str, Path]
) -> None:
    config = models["five-labels"] / "config.json"
    diagnostics = await open_document(client, config)

    text = config.read_text()
    row = line_of(text, '"id2label"')
    column = text.split("\n")[row].index('"id2label"')
    assert [d.code for d in diagnostics] == ["SD101", "SD101"]  # the head's weight and bias
    for d in diagnostics:
        assert d.severity == lsp.DiagnosticSeverity.Error
        assert d.source == "sdlint"
        assert d.range == lsp.Range(
            lsp.Position(row, column), lsp.Position(row, column + len('"id2label"'))
        )
        assert d.message.startswith("model.safetensors: `classifier.out_proj.")
        assert "checkpoint head has 2 labels, config has num_labels=5" in d.message


@in_session
async def test_unsaved_edits_move_the_diagnostics(
    client: LanguageClient, models: dict[str, Path]
) -> None:
    config = models["five-labels"] / "config.json"
    assert len(await open_document(client, config)) == 2
    uri = config.as_uri()
    edited = "\n\n" + config.read_text()
    change = lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=edited)],
    )
    diagnostics = await publishing(client, uri, lambda: client.text_document_did_change(change))
    assert {d.range.start.line for d in diagnostics} == {line_of(edited, '"id2label"')}
    # Closed without saving: back to the file on disk.
    close = lsp.DidCloseTextDocumentParams(lsp.TextDocumentIdentifier(uri))
    diagnostics = await publishing(client, uri, lambda: client.text_document_did_close(close))
    assert {d.range.start.line for d in diagnostics} == {line_of(config.read_text(), '"id2label"')}


@in_session
async def test_clean_folder_publishes_an_empty_list(
    client: LanguageClient, models: dict[str, Path]
) -> None:
    assert await open_document(client, models["clean"] / "config.json") == []


@in_session
async def test_invalid_config_is_a_diagnostic_not_a_crash(
    client: LanguageClient, models: dict[str, Path]
) -> None:
    diagnostics = await open_document(client, models["broken-config"] / "config.json")
    assert [(d.code, d.severity) for d in diagnostics] == [("SD107", lsp.DiagnosticSeverity.Error)]
    assert "not valid JSON" in diagnostics[0].message
    # Still serving: a clean folder is checked afterwards.
    assert await open_document(client, models["clean"] / "config.json") == []


@in_session
@pytest.mark.parametrize("variant", ["", ".fp16"])
async def test_an_index_finding_sits_at_its_weight_map_entry(
    client: LanguageClient, tmp_path: Path, variant: str
) -> None:
    """A variant's index (`save_pretrained(variant="fp16")`) is a document to check too."""
    folder = tmp_path / "sharded"
    first, second = (f"model{variant}-0000{i}-of-00002.safetensors" for i in (1, 2))
    index = write_sharded(
        folder,
        {
            first: {"a.weight": ("F32", (2,))},
            second: {"b.weight": ("F32", (2,)), "c": ("F32", (2,))},
        },
        weight_map={
            "a.weight": first,
            "b.weight": second,
            "c": first,  # it is in the other shard
        },
        index_name=f"model.safetensors.index{variant}.json",
    )
    diagnostics = await open_document(client, index)
    assert [d.code for d in diagnostics] == ["SD004"]
    assert diagnostics[0].message.startswith(f"index maps `c` to {first}")
    text = index.read_text()
    row = line_of(text, '"c":')
    column = text.split("\n")[row].index('"c"')
    assert diagnostics[0].range == lsp.Range(
        lsp.Position(row, column), lsp.Position(row, column + len('"c"'))
    )


@in_session
async def test_changed_weights_are_checked_again(
    client: LanguageClient, models: dict[str, Path]
) -> None:
    """A weights file the editor never opens: the client reports the change (the server asked it
    to watch `**/*.safetensors`), and the finding is published on the weights file's URI."""
    registered = client.registrations  # type: ignore[attr-defined]
    watchers = [  # register_options arrive as plain JSON: the client cannot know their type
        w["globPattern"]
        for r in registered
        if r.method == lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES
        for w in r.register_options["watchers"]
    ]
    assert "**/*.safetensors" in watchers
    # and every index, a variant's too
    assert any(fnmatch.fnmatch("model.safetensors.index.fp16.json", w[3:]) for w in watchers)

    folder = models["truncated"]
    assert await open_document(client, folder / "config.json") == []
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-4])
    diagnostics = await publishing(client, weights.as_uri(), weights_changed(client, weights))
    assert [d.code for d in diagnostics] == ["SD003"]

    # Repaired on disk: the weights file's diagnostics are cleared.
    weights.write_bytes(data)
    assert await publishing(client, weights.as_uri(), weights_changed(client, weights)) == []


def test_check_does_not_import_pygls(models: dict[str, Path]) -> None:
    script = (
        "import sys\n"
        "from sdlint.cli import main\n"
        "code = main(['check', '-q', '--select', 'SD0', sys.argv[1]])\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('pygls', 'lsprotocol')]\n"
        "raise SystemExit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(models["clean"])],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_server_without_pygls_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sdlint.cli import main

    # `import pygls...` now fails, submodules included (they would be found in sys.modules).
    for name in [m for m in sys.modules if m.split(".")[0] == "pygls"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "sdlint.server", raising=False)
    assert main(["server"]) == 2
    assert capsys.readouterr().err == (
        "sdlint: error: `sdlint server` needs pygls: pip install 'sdlint[lsp]'\n"
    )


# --- placing findings, without a session ---

CONFIG_TEXT = '{\n  "vocab_size": 120,\n  "note": "\U0001f600", "id2label": {"0": "A"}\n}\n'


def finding(path: Path, config_key: str | None) -> Diagnostic:
    return Diagnostic("SD102", Severity.WARNING, "it differs", str(path), config_key=config_key)


def test_findings_with_a_config_key_go_on_the_config(tmp_path: Path) -> None:
    config, weights = tmp_path / "config.json", tmp_path / "model.safetensors"
    findings = FolderFindings(
        (finding(weights, "vocab_size"), finding(weights, None), finding(weights, "id2label")),
        {weights: config},
    )
    texts: dict[Path, str | None] = {config: CONFIG_TEXT}
    placed = place_findings(findings, texts.get, PositionCodec())
    assert [p.finding for p in placed[config]] == [findings.diagnostics[0], findings.diagnostics[2]]

    on_config = [p.diagnostic for p in placed[config]]
    assert [d.message for d in on_config] == ["model.safetensors: it differs"] * 2
    assert on_config[0].range == lsp.Range(lsp.Position(1, 2), lsp.Position(1, 14))
    # After a non-BMP character, LSP's default UTF-16 columns run one ahead of code points.
    assert on_config[1].range.start == lsp.Position(2, CONFIG_TEXT.split("\n")[2].index('"id2') + 1)
    assert on_config[1].severity == lsp.DiagnosticSeverity.Warning
    # Without a config key, the finding stays on the weights file.
    assert [(p.diagnostic.message, p.diagnostic.range.start) for p in placed[weights]] == [
        ("it differs", lsp.Position(0, 0))
    ]


def test_without_the_config_text_findings_stay_on_their_file(tmp_path: Path) -> None:
    config, weights = tmp_path / "config.json", tmp_path / "model.safetensors"
    findings = FolderFindings((finding(weights, "vocab_size"),), {weights: config})
    placed = place_findings(findings, lambda path: None, PositionCodec())
    assert list(placed) == [weights]


def test_a_range_never_leaves_its_line() -> None:
    codec = PositionCodec()
    lines = ['{"unterminated', "x"]
    assert lsp_range(lines, Location(1, 2), codec) == lsp.Range(
        lsp.Position(0, 1), lsp.Position(0, 14)
    )
    assert lsp_range(lines, Location(2, 9), codec) == lsp.Range(
        lsp.Position(1, 1), lsp.Position(1, 1)
    )
    assert lsp_range(lines, Location(7, 3), codec) == lsp.Range(
        lsp.Position(6, 2), lsp.Position(6, 2)
    )


def test_a_variant_index_is_linted_and_checked_when_opened(tmp_path: Path) -> None:
    """Without a config.json, a folder is checked through its weights and indexes: a variant's
    index among them (else each of its shards is checked as a lone checkpoint)."""
    index = write_sharded(
        tmp_path,
        {f"model.fp16-0000{i}-of-00002.safetensors": {f"w{i}": ("F16", (2,))} for i in (1, 2)},
        index_name="model.safetensors.index.fp16.json",
    )
    assert [p.name for p in lint_inputs(tmp_path)] == [
        "model.fp16-00001-of-00002.safetensors",
        "model.fp16-00002-of-00002.safetensors",
        index.name,
    ]
    assert is_document_to_lint(index)
