"""Where the language server shows a finding: on its own file, or at the key of the config.json
its checkpoint was checked against, in the text the editor has now (unsaved edits included),
with LSP positions in the client's encoding. No LSP session needed."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from lsprotocol import types as lsp
from pygls.workspace import PositionCodec

from sdlint.config_fields import CONFIG_NAME
from sdlint.diagnostic import Diagnostic, Location, Severity
from sdlint.json_locations import key_locations, string_end
from sdlint.record import record
from sdlint.server.workspace import FolderFindings, norm_path

SOURCE = "sdlint"
_SEVERITIES = {
    Severity.ERROR: lsp.DiagnosticSeverity.Error,
    Severity.WARNING: lsp.DiagnosticSeverity.Warning,
    Severity.INFO: lsp.DiagnosticSeverity.Information,
}


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
    end = string_end(text, column) if text[column : column + 1] == '"' else column + 1
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


@record
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
        path = norm_path(d.path)
        config = findings.config_of.get(path)
        if path in configs or path.name == CONFIG_NAME:
            target, location, prefix = path, d.location, ""
        elif d.config_key is not None and config is not None and text(config) is not None:
            target, location, prefix = config, Location(), _relative(path, config.parent)
        else:
            # An index is JSON, measured like a config; weights files are binary, with no lines.
            own_text = text(path) if path.name.endswith(".json") else None
            own_lines = own_text.split("\n") if own_text is not None else None
            location = d.location
            if own_text is not None and d.tensor is not None and location == Location():
                # A finding about one tensor of an index sits at its `weight_map` entry (or at
                # `weight_map` itself when the entry is missing), wherever edits moved it.
                found = key_locations(own_text)
                location = found.get(f"weight_map.{d.tensor}") or found.get("weight_map", location)
            placed = Placed(to_lsp_diagnostic(d, location, own_lines, codec), d)
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
