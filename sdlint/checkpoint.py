"""What gets checked, whatever its format and wherever its bytes are: a `Checkpoint`.

A checkpoint is one weights file, or an index with its shards, with the config.json beside it read
once (and, for a PEFT adapter, its adapter_config.json). Its files are described by their format
module (sdlint/formats/); the model rules and the model layer read only the format-neutral parts
(`tensors`, `signature()`, `file_of`), the integrity rules of a format read its own description.
sdlint/discover.py finds checkpoints from the command line's PATHs.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from sdlint import memo
from sdlint.config_fields import ConfigFile
from sdlint.formats import SAFETENSORS, FileDescription, LfsPointer, Tensor, TensorSpec, Unreadable
from sdlint.formats.index import ShardIndex
from sdlint.formats.safetensors import Header
from sdlint.record import record, replace
from sdlint.sources import FileRef

# A weights file of a PEFT adapter (`adapter_model.safetensors`, `adapter_model.bin`) holds adapter
# tensors, not a model: it is never checked as the model its config.json describes.
ADAPTER_STEM = "adapter_model"
ADAPTER_CONFIG_NAME = "adapter_config.json"

FileResult = FileDescription | Unreadable | LfsPointer


def _well_formed(header: Header) -> bool:
    """Every entry of the header well-formed; within a run (sdlint/memo.py), found once for
    identical headers."""
    if header.usual:
        return True
    entries = header.entries
    return memo.by_identity(
        "well-formed", (entries,), lambda: not any(entry.errors for entry in entries)
    )


def is_adapter_name(name: str) -> bool:
    """A PEFT adapter's weights file (`adapter_model.safetensors`, `adapter_model.bin`, ...)."""
    return name.split(".", 1)[0] == ADAPTER_STEM


@record
class Checkpoint:
    """One unit of checking. `files` are its weights files, described or not, in load order."""

    path: FileRef  # what the user sees: the weights file, or the index
    files: tuple[FileResult, ...]
    index: ShardIndex | None = None
    unreferenced_shards: tuple[FileRef, ...] = ()  # shard-named files the index does not list
    missing_shards: tuple[str, ...] = ()  # shard files the index lists that do not exist
    config: ConfigFile | None = None  # the config.json beside the weights, read once; None: none
    format: str = SAFETENSORS
    adapter_config: ConfigFile | None = None  # adapter_config.json, for a PEFT adapter
    # Shard names the index gives that sdlint refuses to open, and why ("is an absolute path").
    refused_shards: tuple[tuple[str, str], ...] = ()
    # The weights transformers loads instead from the same folder (model.safetensors before
    # pytorch_model.bin): the model rules then skip this checkpoint.
    shadowed_by: FileRef | None = None
    # Shards the index lists that the commit being checked deletes (`check --staged-deletions`).
    deleted_shards: tuple[str, ...] = ()
    # The library other than transformers the checkpoint's folder belongs to, in words, as the
    # files beside the folder say (sdlint/libraries.py `foreign_folder`); None: none recognised.
    library: str | None = None

    @property
    def display_path(self) -> str:
        return self.path.display

    @property
    def folder(self) -> Path | None:
        """The checkpoint's folder on the local disk; None for a remote checkpoint."""
        return self.path.local.parent if self.path.local is not None else None

    @property
    def local_path(self) -> Path | None:
        """The checkpoint on the local disk, or None: fixes are offered only when it is set (a
        remote checkpoint is read-only)."""
        return self.path.local

    @property
    def is_adapter(self) -> bool:
        """A PEFT adapter: its tensors are not the model's; it is checked against its base model
        (sdlint/adapter.py)."""
        return is_adapter_name(self.path.name)

    @property
    def descriptions(self) -> list[FileDescription]:
        """The files that could be read, in load order."""
        return [r for r in self.files if not isinstance(r, (Unreadable, LfsPointer))]

    @property
    def headers(self) -> list[Header]:
        """The safetensors headers among the files."""
        return [r for r in self.files if isinstance(r, Header)]

    @cached_property
    def tensors(self) -> dict[str, Tensor]:
        """Well-formed tensors of the whole checkpoint; on a key in two shards the later shard wins,
        as transformers 5 merges them."""
        merged: dict[str, Tensor] = {}
        for description in self.descriptions:
            merged.update(description.tensors)
        return merged

    def signature(self) -> dict[str, TensorSpec]:
        """What the model layer compares: each tensor's dtype and shape; a key in several shards
        also carries its earlier shards' copies (`TensorSpec.earlier`: 4.x compares them too)."""
        merged = {name: tensor.spec for name, tensor in self.tensors.items()}
        if sum(len(d.tensors) for d in self.descriptions) == len(merged):
            return merged  # no key in two shards: the usual case
        copies: dict[str, list[TensorSpec]] = {}
        for description in self.descriptions:
            for name, tensor in description.tensors.items():
                copies.setdefault(name, []).append(tensor.spec)
        for name, specs in copies.items():
            if len(specs) > 1:
                merged[name] = replace(merged[name], earlier=tuple(specs[:-1]))
        return merged

    @cached_property
    def index_keys(self) -> tuple[str, ...] | None:
        """The index's `weight_map` keys, in its order, where they differ from the shards' own
        keys; None otherwise (no index, or both name the same tensors). transformers 4.x loads
        the keys the index names, 5.x the keys in the shard headers (design doc §11, R3)."""
        if self.index is None or set(self.index.weight_map) == set(self.tensors):
            return None
        return tuple(self.index.weight_map)

    @property
    def fully_readable(self) -> bool:
        return (
            not self.missing_shards
            and not self.refused_shards
            and len(self.descriptions) == len(self.files) > 0
        )

    @cached_property
    def loadable(self) -> bool:
        """Every file read and every entry well-formed: the key set is the one a loader sees."""
        return self.fully_readable and all(map(_well_formed, self.headers))

    @cached_property
    def file_of(self) -> dict[str, FileRef]:
        """The file each tensor is read from (the later shard for a key in two)."""
        return {
            name: description.path
            for description in self.descriptions
            for name in description.tensors
        }

    def copy_of(self, name: str, earlier_copy: int | None) -> tuple[FileRef, Tensor] | None:
        """The file and tensor of one copy of a key: its `earlier_copy`-th earlier shard copy (in
        load order, as `TensorSpec.earlier` holds them), or the last copy for None; None when the
        checkpoint has no such copy."""
        if earlier_copy is None:
            tensor = self.tensors.get(name)
            return None if tensor is None else (self.file_of[name], tensor)
        holders = [d for d in self.descriptions if name in d.tensors][:-1]
        if earlier_copy >= len(holders):
            return None
        holder = holders[earlier_copy]
        return holder.path, holder.tensors[name]
