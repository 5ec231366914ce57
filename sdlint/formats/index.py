"""A shard index (`*.safetensors.index.json`): which shard file holds each tensor."""

from __future__ import annotations

import json
from pathlib import Path

from sdlint.record import field, record
from sdlint.sources import FileRef, ReadError
from sdlint.sources.local import read_bounded

MAX_INDEX_SIZE = 100_000_000


@record
class ShardIndex:
    """A `*.safetensors.index.json`. `problem` is set when it cannot be used at all."""

    path: FileRef
    weight_map: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, object] | None = None
    problem: str | None = None

    @property
    def shard_names(self) -> list[str]:
        """The shard files transformers reads: sorted distinct `weight_map` values."""
        return sorted(set(self.weight_map.values()))


def read_index(path: Path) -> ShardIndex:
    """Read and parse a local index through the guarded open. Never raises on bad input."""
    ref = FileRef.of(path)
    try:
        raw = read_bounded(path, MAX_INDEX_SIZE)
    except ReadError as e:
        return ShardIndex(ref, problem=index_read_problem(e))
    return parse_index(ref, raw)


def index_read_problem(e: ReadError) -> str:
    """An index's problem when it cannot be read: "cannot read the index: Permission denied", "the
    index is 200,000,000 bytes, more than...", "cannot read the index: HTTP 500 ..."."""
    if e.special:
        return "index is " + e.reason
    if "the file" in e.reason:
        return e.reason.replace("the file", "the index")
    return f"cannot read the index: {e.reason}"


def parse_index(path: FileRef, raw: bytes) -> ShardIndex:
    """An index's bytes, however they were read (a remote index is fetched whole)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return ShardIndex(path, problem="index is not valid UTF-8")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as e:
        return ShardIndex(path, problem=f"index is not valid JSON: {e}")
    if not isinstance(document, dict):
        return ShardIndex(path, problem="index is not a JSON object")
    weight_map = document.get("weight_map")
    # JSON object keys are strings: only the values need a look (all at once, without a Python
    # loop over 100k keys).
    if not isinstance(weight_map, dict) or not set(map(type, weight_map.values())) <= {str}:
        return ShardIndex(
            path, problem="index has no `weight_map` object of tensor name -> shard file"
        )
    metadata = document.get("metadata")
    return ShardIndex(
        path,
        weight_map=dict(weight_map),
        metadata=dict(metadata) if isinstance(metadata, dict) else None,
        problem=None,
    )
