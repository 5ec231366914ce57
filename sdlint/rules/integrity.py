"""SD001-SD005: is the file a well-formed safetensors checkpoint? Headers only, no transformers.

Errors here are exactly what the reference reader (`safetensors.safe_open`) rejects; departures from
the written format that it accepts are warnings.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from sdlint.checkpoint import Checkpoint
from sdlint.context import CheckContext
from sdlint.diagnostic import Severity
from sdlint.formats import PICKLE, SAFETENSORS, LfsPointer, Unreadable
from sdlint.formats.safetensors import (
    Header,
    Problem,
    entry_problems,
    layout_problems,
    tensor_bytes,
)
from sdlint.rule import Finding, rule


def _headers(checkpoint: Checkpoint) -> Iterator[Header]:
    yield from checkpoint.headers


@rule(
    "SD001",
    "unreadable-header",
    formats=(SAFETENSORS,),
    summary="The safetensors header cannot be read.",
)
def unreadable_header(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Checks that the file starts with a readable safetensors header: an 8-byte little-endian length N
    no larger than the file nor than 100,000,000 bytes (the reference reader's limit), then
    N bytes of UTF-8 JSON forming an object, whose optional `__metadata__` maps strings to strings.

    Headers that safetensors accepts but the written format forbids (whitespace before the `{`,
    padding with characters other than spaces) are reported as warnings.

    ## Why is this bad?
    No loader can read such a file: `from_pretrained` fails with a bare `SafetensorError` such as
    `HeaderTooLarge` or `InvalidHeaderDeserialization`, after the user has waited for imports.

    ## Example
    A file cut short during download, or a text file renamed to `.safetensors`:
    ```
    model.safetensors:1:1: SD001 header length 2,336,927,755,350,992,246 exceeds the
    100,000,000-byte limit of the safetensors reader (the file starts with the text 'version ')
    ```

    ## Fix safety
    No automatic fix: the bytes of the tensors cannot be recovered from a broken header. Re-export
    or re-download the file.
    """
    for result in ctx.checkpoint.files:
        if isinstance(result, Unreadable):
            yield Finding(result.reason, result.path.display)
        elif isinstance(result, Header):
            for warning in result.warnings:
                yield Finding(warning, result.path.display, Severity.WARNING)


@rule(
    "SD002",
    "invalid-tensor-entry",
    formats=(SAFETENSORS,),
    summary="A tensor entry in the header is malformed.",
)
def invalid_tensor_entry(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Checks every tensor entry of the header: a known dtype (every dtype of the current safetensors
    format, including the 8-, 6- and 4-bit floats), a shape that is a list of non-negative integers,
    `data_offsets` of two integers whose span equals the tensor's size (elements x dtype bits / 8, a
    whole number of bytes), and no tensor name given twice.

    A name given twice is a warning when safetensors still reads the file (it keeps the last entry,
    other readers may keep the first); unknown fields in an entry are warnings too.

    ## Why is this bad?
    safetensors rejects the whole file for one bad entry, often with a message that names no tensor
    (`invalid shape, data type, or offset for tensor`). This rule names the tensor and the numbers.

    ## Example
    ```
    model.safetensors:1:1: SD002 tensor `classifier.weight`: shape [2, 3] of F32 needs 24 bytes,
    but its data_offsets [0, 16] span 16
    ```

    ## Fix safety
    No automatic fix: which of shape, dtype and offsets is wrong cannot be known from the header.
    """
    for header in _headers(ctx.checkpoint):
        yield from _findings(header, entry_problems(header))


@rule(
    "SD003",
    "invalid-data-layout",
    formats=(SAFETENSORS,),
    summary="Tensor data does not tile the data section exactly.",
)
def invalid_data_layout(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Checks, in offset order as the reference reader does, that the tensors' byte ranges start at 0,
    follow each other without gaps or overlaps, and end exactly at the end of the file. A file that
    ends early (a truncated download) reports how many bytes are missing.

    A data section that does not start at a multiple of 8 bytes (an unpadded header) is a warning:
    safetensors writes padded headers so that tensors can be memory-mapped aligned.

    A remote file's size comes from the server (`Content-Range`, `Content-Length`, or the hub's
    listing); when the server gives none, the end of the file is not checked and an info note says
    so.

    ## Why is this bad?
    safetensors refuses such a file (`MetadataIncompleteBuffer`, `InvalidOffset`). Bytes that belong
    to no tensor are also how polyglot files hide a second payload.

    ## Example
    ```
    model.safetensors:1:1: SD003 data section ends at byte 1,048,576 but the file holds only
    524,288 bytes of data: 524,288 bytes are missing (truncated download?)
    ```

    ## Fix safety
    No automatic fix: re-download or re-export the file.
    """
    for header in _headers(ctx.checkpoint):
        yield from _findings(header, layout_problems(header))


def _findings(header: Header, problems: Iterator[Problem]) -> Iterator[Finding]:
    path = header.path.display
    for p in problems:
        severity = Severity.INFO if p.note else None if p.error else Severity.WARNING
        yield Finding(p.message, path, severity, tensor=p.tensor)


@rule(
    "SD004",
    "inconsistent-shard-index",
    formats=(SAFETENSORS, PICKLE),
    summary="A sharded index disagrees with its shards.",
)
def inconsistent_shard_index(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    For a sharded checkpoint (`model.safetensors.index.json`, or `pytorch_model.bin.index.json`
    for torch.save shards, or a variant's, `model.safetensors.index.fp16.json`, with its shards),
    checks that the index is readable and has its
    `metadata`, that every shard it names exists, that every key it maps is in that shard and
    every key of a shard is in the index, that no key is in two shards, and that
    `metadata.total_size` equals the bytes of the shards' tensors (and `total_parameters`, when
    present, their element count). A file named like a shard of the index but not listed by it is
    a warning.

    torch.save shards are read as SD006-SD009 read them, never unpickled. Their `total_size` may
    count each storage once, in full, as `save_pretrained` does (tied weights share a storage), or
    sum the tensors' own bytes, as older writers did; `total_parameters` may count tied copies
    once or each time.

    A shard name must lead to a regular file inside the index's folder tree after following
    symlinks (inside a Hugging Face cache, `models--org--name/snapshots/<rev>/`, the repository's
    cache folder, where the snapshot's symlinks into `blobs/` point). A name that is empty, holds
    a NUL byte, is absolute, climbs out with `..`, is a symlink leading out, or names a folder, a
    device or a FIFO is reported and never opened. With `--staged-deletions` (the pre-commit
    hooks), a shard the commit deletes counts as missing, even when `git rm --cached` left it on
    disk.

    ## Why is this bad?
    transformers 5 reads the keys from the shards, not from the index: a key the index lists
    but its shard lacks loads as missing, a key in two shards silently takes the later copy, and an
    index without `metadata` raises `KeyError`. transformers 4.x and other loaders trust the index
    and disagree: there the same key is left uninitialized without a word, a shard's key the
    index omits is never loaded, and a key in two shards is compared copy by copy (a copy of
    another shape is a size mismatch of its own).

    ## Example
    ```
    model.safetensors.index.json:1:1: SD004 index maps `lm_head.weight` to
    model-00002-of-00002.safetensors, but that shard has no such tensor
    ```

    ## Fix safety
    No automatic fix yet: regenerate the index with `save_pretrained`.
    """
    checkpoint = ctx.checkpoint
    index = checkpoint.index
    if index is None:
        return
    path = index.path.display
    if index.problem:
        yield Finding(index.problem, path)
        return
    if index.metadata is None:
        yield Finding(
            "index has no `metadata` object; "
            "transformers refuses to load it (KeyError: 'metadata')",
            path,
        )
    absent = [(name, "does not exist") for name in checkpoint.missing_shards]
    absent += [(name, "the commit deletes it") for name in checkpoint.deleted_shards]
    for name, why in absent:
        count = sum(1 for shard in index.weight_map.values() if shard == name)
        yield Finding(
            f"shard {name} is listed in the index ({count} tensor{'s' if count != 1 else ''}) but "
            f"{why}",
            path,
        )
    for name, reason in checkpoint.refused_shards:
        count = sum(1 for shard in index.weight_map.values() if shard == name)
        yield Finding(
            f"index maps {count} tensor{'s' if count != 1 else ''} to shard {name!r}, which "
            f"{reason}: a shard must be a regular file inside the checkpoint's folder, so sdlint "
            "does not open it",
            path,
        )
    for unlisted in checkpoint.unreferenced_shards:
        yield Finding(
            f"{unlisted.name} is named like a shard of this index but the index does not list it; "
            "its tensors are never loaded",
            path,
            Severity.WARNING,
        )

    descriptions = checkpoint.descriptions
    shard_names = [d.path.name for d in descriptions]
    # The usual index maps every key of the shards, each to the one shard that holds it, and
    # nothing else: one comparison of two dicts says so, without a look at each key.
    holder: dict[str, str] = {}
    for description, shard_name in zip(descriptions, shard_names, strict=True):
        holder.update(dict.fromkeys(description.tensors, shard_name))
    if holder == index.weight_map and len(holder) == sum(len(d.tensors) for d in descriptions):
        yield from _index_totals_findings(checkpoint, path)
        return
    located: dict[str, list[str]] = {}
    for description, shard_name in zip(descriptions, shard_names, strict=True):
        for name in description.tensors:
            located.setdefault(name, []).append(shard_name)
    readable_shards = set(shard_names)
    for key, shard in index.weight_map.items():
        if shard not in readable_shards:
            continue  # reported above as missing, or by SD001/SD005 for the shard itself
        where = located.get(key, [])
        if shard not in where:
            actually = f" (it is in {', '.join(where)})" if where else ""
            yield Finding(
                f"index maps `{key}` to {shard}, but that shard has no such tensor{actually}",
                path,
                tensor=key,
            )
    for key, shards in located.items():
        if len(shards) > 1:
            yield Finding(
                f"tensor `{key}` is in {len(shards)} shards ({', '.join(shards)}); transformers "
                f"silently keeps the copy in {shards[-1]}",
                path,
                tensor=key,
            )
        if key not in index.weight_map:
            yield Finding(
                f"tensor `{key}` in {shards[0]} is not in the index's weight_map", path, tensor=key
            )

    yield from _index_totals_findings(checkpoint, path)


def _index_totals_findings(checkpoint: Checkpoint, path: str) -> Iterator[Finding]:
    """The index's `metadata.total_size` and `total_parameters` against what its shards hold."""
    index = checkpoint.index
    assert index is not None
    claims = index.metadata is not None and any(f in index.metadata for f in _INDEX_TOTALS)
    if checkpoint.fully_readable and claims:
        assert index.metadata is not None
        for field, (accepted, held) in _index_totals(checkpoint).items():
            claimed = index.metadata.get(field)
            if field not in index.metadata or (claimed in accepted and type(claimed) is int):
                continue
            yield Finding(f"metadata.{field} is {claimed!r} but {held}", path)


# The totals an index's metadata may claim (`_index_totals`): checked only when it claims one.
_INDEX_TOTALS = ("total_size", "total_parameters")


def _index_totals(checkpoint: Checkpoint) -> dict[str, tuple[tuple[int, ...], str]]:
    """What `metadata.total_size` and `total_parameters` may be: the values writers give, and
    how a finding says what the shards hold.

    A safetensors shard holds each tensor once. A torch.save shard holds whole storages, shared by
    the tensors that view them (tied weights): `save_pretrained` (huggingface_hub's
    `split_torch_state_dict_into_shards`) counts each storage once, in full, while older writers
    summed the tensors' own bytes; either is accepted."""
    if checkpoint.format != PICKLE:
        tensors = [t for h in checkpoint.headers for t in h.tensors.values()]
        size, count = tensor_bytes(tensors), sum(math.prod(t.shape) for t in tensors)
        return {
            "total_size": ((size,), f"the shards' tensors hold {size:,} bytes"),
            "total_parameters": ((count,), f"the shards' tensors hold {count:,} elements"),
        }
    from sdlint.formats.pickle import PickleCheckpoint  # only for a torch.save index

    pickles = [d for d in checkpoint.descriptions if isinstance(d, PickleCheckpoint)]
    storage_bytes = sum(s.declared_bytes for p in pickles for s in p.storages)
    entries = [t for p in pickles for t in p.entries]
    own_bytes = sum(t.numel * t.itemsize for t in entries)
    views = {
        (p.path, t.storage, t.storage_offset, t.shape, t.stride): t.numel
        for p in pickles
        for t in p.entries
    }
    count, distinct = sum(t.numel for t in entries), sum(views.values())
    return {
        "total_size": (
            (storage_bytes, own_bytes),
            f"the shards' storages hold {storage_bytes:,} bytes (their tensors {own_bytes:,})",
        ),
        "total_parameters": (
            (count, distinct),
            f"the shards' tensors hold {count:,} elements"
            + (f" ({distinct:,} without tied copies)" if distinct != count else ""),
        ),
    }


@rule(
    "SD005",
    "git-lfs-pointer",
    formats=(SAFETENSORS, PICKLE),
    summary="The file is a Git LFS pointer, not the weights.",
)
def git_lfs_pointer(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Recognises a Git LFS pointer file (a small text file starting with
    `version https://git-lfs.github.com/spec/v1`) standing where the weights should be (a
    safetensors or a torch.save file), and reports the object id and size it points to.

    ## Why is this bad?
    The weights were never fetched: the repository was cloned without `git lfs`, or LFS smudging is
    off. Loaders report a baffling `HeaderTooLarge`, because the text `version ` read as a length is
    about 2.3 exabytes.

    ## Example
    ```
    model.safetensors:1:1: SD005 file is a Git LFS pointer, not the weights (object sha256:4d7a...,
    498,001,234 bytes): fetch them with `git lfs pull --include="model.safetensors"`
    ```

    ## Fix safety
    No automatic fix: sdlint never downloads. Run `git lfs pull`; in CI, check out with LFS enabled
    (e.g. `actions/checkout` with `lfs: true`) before running sdlint.
    """
    for result in ctx.checkpoint.files:
        if isinstance(result, LfsPointer):
            details = []
            if result.oid:
                details.append(f"object {result.oid}")
            if result.size is not None:
                details.append(f"{result.size:,} bytes")
            what = f" ({', '.join(details)})" if details else ""
            yield Finding(
                f"file is a Git LFS pointer, not the weights{what}: fetch them with "
                f'`git lfs pull --include="{result.path.name}"`',
                result.path.display,
            )
