"""What the language server checks: the folder of a file, the files whose opening or saving
triggers a check, and one folder's findings. No LSP session needed."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pygls.uris import to_fs_path

from sdlint.config import CONFIG_FILES, ConfigResolver
from sdlint.config_fields import CONFIG_NAME
from sdlint.diagnostic import Diagnostic
from sdlint.engine import Settings, check_paths, resolve
from sdlint.formats.names import is_safetensors_index_name
from sdlint.formats.safetensors import WEIGHTS_SUFFIX
from sdlint.record import field, record


def norm_path(path: str | Path) -> Path:
    """One spelling per file, so a diagnostic's path and a document's URI compare equal.

    Not `resolve()`: in a Hugging Face cache the weights are symlinks into `blobs/`, and
    diagnostics must land on the path the editor shows, not on the blob.
    """
    return Path(os.path.normpath(Path(path).absolute()))


def path_of(uri: str) -> Path | None:
    """The local file a URI names; None for other schemes (untitled buffers, remote files)."""
    fs_path = to_fs_path(uri)
    return norm_path(fs_path) if fs_path else None


def is_document_to_lint(path: Path) -> bool:
    """The text documents whose opening or saving triggers a check of their folder."""
    return path.name == CONFIG_NAME or is_safetensors_index_name(path.name)


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
            if (p.name.endswith(WEIGHTS_SUFFIX) or is_safetensors_index_name(p.name))
            and p.is_file()
        )
    except OSError:  # the folder went away: nothing to check, stale diagnostics get cleared
        return []


@record
class FolderFindings:
    diagnostics: tuple[Diagnostic, ...] = ()
    # Every file of a checked checkpoint -> the config.json it was checked against: the one
    # beside it, or another named by the project configuration (`model-config` globs).
    config_of: Mapping[Path, Path] = field(default_factory=dict)


def check_folder(folder: Path, unsaved: Mapping[Path, str] | None = None) -> FolderFindings:
    """Lint one folder (runs in a worker thread: a cold cache builds a transformers model), with
    the editor's `unsaved` config.json texts in place of the files on disk."""
    inputs = lint_inputs(folder)
    if not inputs:
        return FolderFindings()
    texts = {path: text.encode("utf-8") for path, text in (unsaved or {}).items()}
    settings = Settings(unsaved=texts)
    report = check_paths(inputs, settings)
    resolver = ConfigResolver()
    config_of: dict[Path, Path] = {}
    for checkpoint in report.checkpoints:
        # The engine's own precedence decides which config a checkpoint was checked against.
        home = checkpoint.folder
        if home is None:  # an editor's folder holds local checkpoints only
            continue
        target = resolve(settings, resolver, checkpoint.path).target
        given = target.config_path.local if target.config_path is not None else None
        config = norm_path(given or home / CONFIG_NAME)
        files = [checkpoint.path, *(result.path for result in checkpoint.files)]
        files += checkpoint.unreferenced_shards
        config_of.update((norm_path(f.local), config) for f in files if f.local is not None)
        config_of.update((norm_path(home / n), config) for n in checkpoint.missing_shards)
    return FolderFindings(report.diagnostics, config_of)


@record
class OpenDocument:
    uri: str  # as the client spelled it: diagnostics must be published on the same URI
    version: int | None
    text: str


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
