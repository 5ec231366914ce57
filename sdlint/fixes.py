"""`check --fix` and `--diff`: apply the fixes the rules attached to their findings.

As in ruff: safe fixes by default, unsafe ones with `--unsafe-fixes`; fixes that touch the same
tensor or key are applied one per pass, and the checkpoints are linted again after every pass
until nothing applicable is left. Weights go through `sdlint.rewrite` (streaming, verified,
atomic); an index is rebuilt from its rewritten shards; config.json is rewritten atomically with
its key order and indentation kept.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sdlint.checkpoint import Checkpoint
from sdlint.diagnostic import Diagnostic
from sdlint.edits import (
    Conversion,
    ConvertIndex,
    ConvertToSafetensors,
    DropTensors,
    Edit,
    InitTensor,
    RenameTensors,
    config_values,
    init_chunks,
    touched_names,
)
from sdlint.engine import PathArg, Report, Settings, check_paths
from sdlint.errors import InternalError, SdlintError
from sdlint.formats.index import read_index
from sdlint.formats.pickle import PickleCheckpoint, read_pickle_checkpoint
from sdlint.formats.safetensors import Header, read_header
from sdlint.record import field, record
from sdlint.rewrite import (
    ConvertResult,
    NewTensor,
    RewriteError,
    RewritePlan,
    convert_index,
    convert_pickle,
    rewrite_safetensors,
    write_text_atomic,
)
from sdlint.sources.local import display

MAX_PASSES = 10


class FixError(SdlintError):
    """A fix could not be applied; the message says which file and that the original is intact."""


@record
class FixPass:
    """The fixes applied together: no two touch the same tensor or config key of one file."""

    diagnostics: tuple[Diagnostic, ...]
    edits: tuple[Edit, ...]


@record(frozen=False)
class FixOutcome:
    report: Report  # the findings left after fixing
    fixed: list[Diagnostic] = field(default_factory=list)
    changed: list[Path] = field(default_factory=list)
    backups: list[Path] = field(default_factory=list)


def plan_pass(diagnostics: Sequence[Diagnostic], unsafe: bool) -> FixPass:
    """The applicable fixes that can go together, in diagnostic order; the rest wait a pass."""
    chosen: list[Diagnostic] = []
    edits: list[Edit] = []
    taken: set[tuple[Path, str]] = set()
    for d in diagnostics:
        if d.fix is None or not d.fix.edits or not d.fix.applies(unsafe):
            continue
        new = [e for e in d.fix.edits if e not in edits]  # two findings may share one fix
        claims = {(e.file, name) for e in new for name in touched_names(e)}
        # Two files converted to one name (`model.pt` and `model.pth`): one per pass.
        claims |= {(e.target, "") for e in new if isinstance(e, Conversion)}
        if claims & taken:
            continue
        taken |= claims
        edits.extend(new)
        chosen.append(d)
    return FixPass(tuple(chosen), tuple(edits))


def fix_paths(
    paths: Sequence[PathArg],
    settings: Settings | None = None,
    *,
    unsafe: bool = False,
    backup: bool = False,
) -> FixOutcome:
    """Lint, apply the applicable fixes, lint again, until none is left. Raises FixError when a
    fix cannot be applied, InternalError when fixes do not settle (a bug)."""
    report = check_paths(paths, settings)
    outcome = FixOutcome(report)
    for _ in range(MAX_PASSES):
        fix_pass = plan_pass(report.diagnostics, unsafe)
        if not fix_pass.edits:
            return outcome
        changed, backups = apply(fix_pass.edits, report.checkpoints, backup=backup)
        outcome.fixed.extend(fix_pass.diagnostics)
        outcome.changed.extend(p for p in changed if p not in outcome.changed)
        outcome.backups.extend(backups)
        # A converted file named on the command line is now its safetensors file.
        moved = {e.file.resolve(): e.target for e in fix_pass.edits if isinstance(e, Conversion)}
        paths = [p if Path(p).exists() else moved.get(Path(p).resolve(), p) for p in paths]
        report = check_paths(paths, settings)
        outcome.report = report
    codes = sorted({d.code for d in plan_pass(report.diagnostics, unsafe).diagnostics})
    raise InternalError(
        f"fixes did not settle after {MAX_PASSES} passes (still fixable: {', '.join(codes)}); "
        "the fixes applied so far are complete and in place"
    )


def apply(
    edits: Sequence[Edit], checkpoints: Sequence[Checkpoint], *, backup: bool = False
) -> tuple[list[Path], list[Path]]:
    """Apply one pass of edits, all or nothing. Returns the files changed and the backups made.

    Each file is replaced atomically (sdlint.rewrite). When a pass changes several files (a head
    re-initialised in the weights and its labels in config.json, shards and their index, the
    shards of a sharded pickle checkpoint and its index converted), the originals are kept as
    hard links until the pass is done, and should any file fail, the ones already replaced are
    put back: the folder is left as it was, never half fixed. (A crash or a power cut between two
    replacements can still leave the first one done.)
    """
    plans = _weight_plans(edits)
    texts = _config_texts(edits)
    conversions = list(dict.fromkeys(e for e in edits if isinstance(e, ConvertToSafetensors)))
    new_indexes = list(dict.fromkeys(e for e in edits if isinstance(e, ConvertIndex)))
    indexes = [c for c in checkpoints if c.index is not None and set(plans) & _shards(c)]
    # One file is atomic by itself; several need the originals kept to undo the pass (a
    # conversion removes its original, so it always keeps it until the pass is done).
    files = len(plans) + len(indexes) + len(texts) + len(conversions) + len(new_indexes)
    keep = backup or files > 1
    done: list[tuple[Path, Path | None]] = []  # (file replaced, its original) in order
    converted: list[ConvertResult] = []
    try:
        for conversion in conversions:
            converted.append(convert_pickle(conversion.file, conversion.target, backup=keep))
        for new_index in new_indexes:  # once its shards are converted: it counts their bytes
            text = _converted_index(new_index)
            converted.append(convert_index(new_index.file, new_index.target, text, backup=keep))
        for path, plan in plans.items():
            result = rewrite_safetensors(path, plan, backup=keep)
            if result.changed:
                done.append((path, result.backup))
        changed = {path for path, _ in done}
        for checkpoint in indexes:
            index = checkpoint.index.path.local if checkpoint.index is not None else None
            if index is not None and changed & _shards(checkpoint):
                text = _rebuilt_index(index)
                done.append((index, write_text_atomic(index, text, backup=keep)))
        for path, text in texts.items():
            done.append((path, write_text_atomic(path, text, backup=keep)))
    except BaseException as e:
        undone = _undo(done) + _unconvert(converted)
        if isinstance(e, RewriteError):
            raise FixError(f"{e}{undone}") from e
        raise
    originals = [*done, *((c.target, c.backup) for c in converted)]
    if not backup:
        for _, kept in originals:
            if kept is not None:
                kept.unlink(missing_ok=True)
    written = [*(c.target for c in converted), *(path for path, _ in done)]
    return written, [kept for _, kept in originals if kept is not None and backup]


def _shards(checkpoint: Checkpoint) -> set[Path]:
    return {h.path.local for h in checkpoint.headers if h.path.local is not None}


def _undo(done: Sequence[tuple[Path, Path | None]]) -> str:
    """Put back the originals of the files a failed pass replaced; say what was done."""
    restored: list[str] = []
    lost: list[str] = []
    for path, kept in reversed(done):
        try:
            if kept is None:
                raise OSError("no original kept")
            kept.replace(path)
            restored.append(path.name)
        except OSError:
            lost.append(f"{path.name}{f' (its original is {kept.name})' if kept else ''}")
    if lost:
        return f"; left changed by this fix: {', '.join(lost)}"
    return f"; put back as they were: {', '.join(restored)}" if restored else ""


def _unconvert(converted: Sequence[ConvertResult]) -> str:
    """Put back the pickles a failed pass converted, and remove what they were converted to."""
    restored: list[str] = []
    lost: list[str] = []
    for result in reversed(converted):
        try:
            if result.backup is None:
                raise OSError("no original kept")
            result.backup.replace(result.source)
            result.target.unlink()
            restored.append(result.source.name)
        except OSError:
            lost.append(f"{result.target.name} (from {result.source.name})")
    if lost:
        return f"; left converted by this fix: {', '.join(lost)}"
    return f"; put back as they were: {', '.join(restored)}" if restored else ""


def _weight_plans(edits: Sequence[Edit]) -> dict[Path, RewritePlan]:
    renames: dict[Path, dict[str, str]] = {}
    drops: dict[Path, set[str]] = {}
    inits: dict[Path, dict[str, NewTensor]] = {}
    rng = random.Random()
    for edit in edits:
        if isinstance(edit, RenameTensors):
            renames.setdefault(edit.file, {}).update(edit.renames)
        elif isinstance(edit, DropTensors):
            drops.setdefault(edit.file, set()).update(edit.names)
        elif isinstance(edit, InitTensor):
            # Made while the file is written, a chunk at a time.
            inits.setdefault(edit.file, {})[edit.name] = NewTensor(
                edit.dtype, edit.shape, functools.partial(init_chunks, edit, rng)
            )
    files = [*renames, *(f for f in drops if f not in renames)]
    files += [f for f in inits if f not in files]
    return {
        f: RewritePlan(renames.get(f, {}), frozenset(drops.get(f, ())), inits.get(f, {}))
        for f in files
    }


def _config_texts(edits: Sequence[Edit]) -> dict[Path, str]:
    return {
        path: edited_json(path.read_text(encoding="utf-8"), new)
        for path, new in config_values(edits).items()
    }


def edited_json(text: str, values: dict[str, Any]) -> str:
    """`text` with top-level `values` set: key order kept (new keys last, or in place when the
    file's keys were sorted, as transformers writes them), the file's indentation kept."""
    document = json.loads(text)
    was_sorted = list(document) == sorted(document)
    document.update(values)
    if was_sorted:
        document = dict(sorted(document.items()))
    indent = _indent_of(text)
    out = json.dumps(document, indent=indent, ensure_ascii=False)
    return out + "\n" if text.endswith("\n") else out


def _indent_of(text: str) -> int | None:
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" ")
        if stripped:
            return len(line) - len(stripped) or None
    return None


def _rebuilt_index(index_path: Path) -> str:
    """The index with its weight_map and totals recomputed from the shards as they now are."""
    document = json.loads(index_path.read_text(encoding="utf-8"))
    return _index_text(document, index_path.parent, read_index(index_path).shard_names)


def _converted_index(edit: ConvertIndex) -> str:
    """The index of a sharded pickle checkpoint's converted shards: the old index's document, its
    weight_map and totals counted from the new shards."""
    document = json.loads(edit.file.read_text(encoding="utf-8"))
    return _index_text(document, edit.file.parent, [new for _, new in edit.shards])


def _index_text(document: dict[str, Any], folder: Path, shard_names: Sequence[str]) -> str:
    """An index document with its weight_map and totals counted from the safetensors shards
    `shard_names` (in `folder`) as they now are."""
    weight_map: dict[str, str] = {}
    tensors = []
    for shard in shard_names:
        header = read_header(folder / shard)
        if isinstance(header, Header):
            tensors += list(header.tensors.values())
            weight_map.update(dict.fromkeys(header.tensors, shard))
    document["weight_map"] = dict(sorted(weight_map.items()))
    metadata = document.get("metadata")
    if isinstance(metadata, dict):
        if "total_size" in metadata:
            metadata["total_size"] = sum(t.end - t.begin for t in tensors)
        if "total_parameters" in metadata:
            metadata["total_parameters"] = sum(math.prod(t.shape) for t in tensors)
    return json.dumps(document, indent=2) + "\n"


def render_diff(fix_pass: FixPass) -> str:
    """What `--fix` would change, without writing: a key-level summary per weights file and a
    unified diff per config.json."""
    out: list[str] = []
    by_file: dict[Path, list[Edit]] = {}
    for edit in fix_pass.edits:
        by_file.setdefault(edit.file, []).append(edit)
    for path, edits in by_file.items():
        name = display(path)
        conversion = next((e for e in edits if isinstance(e, Conversion)), None)
        if conversion is not None:
            out.append(_conversion_diff(conversion))
            continue
        values = config_values(edits).get(path)
        if values:
            old = path.read_text(encoding="utf-8")
            new = edited_json(old, values)
            out.extend(
                difflib.unified_diff(
                    old.splitlines(keepends=True), new.splitlines(keepends=True), name, name
                )
            )
            continue
        header = read_header(path)
        shapes = header.tensors if isinstance(header, Header) else {}
        out.append(f"--- {name}\n+++ {name}\n")
        for edit in edits:
            if isinstance(edit, RenameTensors):
                out.extend(f"  renamed   {old} -> {new}\n" for old, new in edit.renames)
            elif isinstance(edit, DropTensors):
                out.extend(f"  dropped   {n} {_shape_of(shapes, n)}\n" for n in edit.names)
            elif isinstance(edit, InitTensor):
                before = _shape_of(shapes, edit.name)
                how = f"normal(0, {edit.std:g})" if edit.init == "normal" else edit.init
                out.append(
                    f"  re-initialized {edit.name} {before} -> {edit.dtype} "
                    f"{list(edit.shape)} ({how})\n"
                )
    return "".join(out)


def _shape_of(shapes: dict[str, Any], name: str) -> str:
    info = shapes.get(name)
    return f"{info.dtype} {list(info.shape)}" if info is not None else "(new)"


def _conversion_diff(edit: Conversion) -> str:
    """A conversion as --diff shows it: the file that goes, the file that comes, its tensors (or
    for an index, its shards' new names)."""
    old, new = display(edit.file), display(edit.target)
    lines = [f"--- {old}\n+++ {new}\n"]
    if isinstance(edit, ConvertIndex):
        lines.extend(f"  renamed shard {a} -> {b}\n" for a, b in edit.shards)
    else:
        described = read_pickle_checkpoint(edit.file)
        if isinstance(described, PickleCheckpoint):
            lines.extend(
                f"  converted {t.name} {t.dtype} {list(t.shape)}\n" for t in described.entries
            )
    lines.append(f"  removed   {old} (kept as {edit.file.name}.bak with --backup)\n")
    return "".join(lines)
