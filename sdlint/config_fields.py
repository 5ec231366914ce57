"""A transformers config.json as the read stage reads it (once), and facts read from it without
importing transformers: the label count and the config field that explains a tensor dimension
(`vocab_size`, `hidden_size`, ...)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path

from sdlint import memo
from sdlint.record import record
from sdlint.sources import FileRef, ReadError, Source
from sdlint.sources.local import LocalFile

TYPE_CHECKING = False  # typing is not imported at run time (a check has no use for it)
if TYPE_CHECKING:
    from typing import Any

CONFIG_NAME = "config.json"
# Why a ConfigFile has no document.
UNREADABLE = "unreadable"  # missing, not a regular file, too large, an OS error
NOT_JSON = "not-json"
NOT_OBJECT = "not-object"

# When several fields hold the same number, the first of these explains a dimension best.
_PREFERRED_FIELDS = (
    "num_labels",
    "vocab_size",
    "hidden_size",
    "d_model",
    "n_embd",
    "max_position_embeddings",
    "n_positions",
    "intermediate_size",
    "ffn_dim",
    "encoder_ffn_dim",
    "decoder_ffn_dim",
    "n_inner",
    "type_vocab_size",
    "num_experts",
    "num_local_experts",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "image_size",
    "patch_size",
    "num_channels",
)


@record
class ConfigFile:
    """A config.json read once and passed on: to the rules (values, key locations, fixes) and to
    the model layer (the cache key is its bytes, the oracle builds the model from `document`).

    `problem` says why there is no `document` (UNREADABLE, NOT_JSON, NOT_OBJECT) and `reason`
    words it in one line; the oracle turns it into a ConfigProblem.
    """

    path: FileRef
    raw: bytes = b""
    document: dict[str, Any] | None = None
    problem: str | None = None
    reason: str = ""
    refused: bool = False  # not a regular file, or over the size limit: never read

    @property
    def display(self) -> str:
        return self.path.display

    @cached_property
    def text(self) -> str:
        """The text as read ("" if unreadable)."""
        return self.raw.decode("utf-8", "replace")

    @property
    def data(self) -> dict[str, Any]:
        """The parsed object, or {} when there is none."""
        return self.document if self.document is not None else {}


# An editor's unsaved config texts, which stand in for the files on disk (the language server
# checks what the user sees), keyed by absolute normalised path (`unsaved_texts`).
Unsaved = Mapping[Path, bytes]


def unsaved_texts(texts: Mapping[Path, bytes]) -> dict[Path, bytes]:
    """`texts` keyed as `read_config` looks them up."""
    return {_absolute(path): raw for path, raw in texts.items()}


def _absolute(path: Path) -> Path:
    return Path(os.path.normpath(path.absolute()))


def read_config(file: Path | Source, unsaved: Unsaved | None = None) -> ConfigFile:
    """Read and parse a config.json through its source (a Path: the guarded open), or take its
    text from `unsaved` (see `unsaved_texts`) when it is there. Never raises on bad input."""
    source = LocalFile(file) if isinstance(file, Path) else file
    path = source.ref
    local = path.local
    if unsaved and local is not None and _absolute(local) in unsaved:
        return parse_config_bytes(path, unsaved[_absolute(local)])
    try:
        raw = source.read_bounded()
    except ReadError as e:
        return ConfigFile(path, problem=UNREADABLE, reason=e.reason, refused=e.refused)
    return parse_config_bytes(path, raw)


def parse_config_bytes(path: FileRef, raw: bytes) -> ConfigFile:
    """The config `raw` holds. Within a run (sdlint/memo.py), identical bytes are parsed once (200
    fine-tunes of one base have a few distinct configs): their ConfigFiles share the document,
    which is read, never changed (the oracle builds the model from a deep copy)."""
    known = memo.table("config-document")
    if known is None:
        return ConfigFile(path, raw, *_parse_config(raw))
    parsed = known.get(raw)
    if parsed is None:
        parsed = known[raw] = _parse_config(raw)
    return ConfigFile(path, raw, *parsed)


def _parse_config(raw: bytes) -> tuple[dict[str, Any] | None, str | None, str]:
    """(document, problem, reason) of a ConfigFile with these bytes."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError included
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        return None, NOT_JSON, reason
    if not isinstance(document, dict):
        return None, NOT_OBJECT, type(document).__name__
    return document, None, ""


def num_labels(config: Mapping[str, Any]) -> int | None:
    """The label count transformers derives: `id2label` wins over `num_labels` (which
    `save_pretrained` does not even write)."""
    id2label = config.get("id2label")
    if isinstance(id2label, dict) and id2label:
        return len(id2label)
    value = config.get("num_labels")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _int_fields(config: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, int]]:
    for key, value in config.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            yield prefix + key, value
        elif isinstance(value, dict) and key.endswith("config"):  # text_config, vision_config, ...
            yield from _int_fields(value, f"{prefix}{key}.")


def explaining_field(config: Mapping[str, Any], model_dim: int) -> str | None:
    """The config field whose value is `model_dim`, preferring the usual suspects."""
    fields = dict(_int_fields(config))
    labels = num_labels(config)
    if labels is not None:
        fields["num_labels"] = labels
    matches = [name for name, value in fields.items() if value == model_dim]
    if not matches:
        return None

    def rank(name: str) -> tuple[int, int]:
        leaf = name.rsplit(".", 1)[-1]
        order = (
            _PREFERRED_FIELDS.index(leaf) if leaf in _PREFERRED_FIELDS else len(_PREFERRED_FIELDS)
        )
        return order, name.count(".")

    return min(matches, key=rank)


def differing_dims(expected: tuple[int, ...], actual: tuple[int, ...]) -> list[tuple[int, int]]:
    """(model dim, checkpoint dim) for each axis where the shapes differ (same rank only)."""
    if len(expected) != len(actual):
        return []
    return [(e, a) for e, a in zip(expected, actual, strict=True) if e != a]
