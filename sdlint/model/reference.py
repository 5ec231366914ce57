"""transformers' own verdict, to hold the oracle to it: for the tests and the architecture sweep.

`reference_report` runs the real `from_pretrained(dir, output_loading_info=True,
ignore_mismatched_sizes=True)`, reading tensor data, and captures its final `LoadStateDictInfo`
where transformers logs its LOAD REPORT, so a load that raises afterwards (conversion errors, R28)
is still compared key for key. `differences` lists every way an oracle verdict departs from it.

Not used when linting. Imports torch and transformers (lazily), like the oracle.
"""

from __future__ import annotations

import importlib
import unittest.mock
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sdlint.checkpoint import Checkpoint
from sdlint.discover import find_checkpoints
from sdlint.formats.names import index_name, plain_name
from sdlint.model.verdict import LoadVerdict, TensorSpec
from sdlint.record import record

MismatchSet = frozenset[tuple[str, tuple[int, ...], tuple[int, ...]]]


def directory_signature(directory: Path, variant: str | None = None) -> dict[str, TensorSpec]:
    """The merged header signature `from_pretrained(variant=variant)` loads from a saved model
    directory.

    The checkpoint discovery gives the model checks (R1: `model.safetensors` wins over an index,
    `shadowed_by`), read by the CLI's own reader (R2-R4: the index's shards in sorted order, a
    later shard winning a duplicated key), so the differential tests hold both to transformers.
    Raises on anything unreadable: this is for checkpoints transformers itself wrote.
    """
    checkpoint = _loaded(directory, variant)
    if checkpoint is None:
        raise ValueError(f"{directory} holds no checkpoint transformers would load")
    if not checkpoint.loadable:
        raise ValueError(f"{checkpoint.display_path} is not fully readable: {checkpoint.files}")
    return checkpoint.signature()


def directory_index_keys(directory: Path, variant: str | None = None) -> tuple[str, ...] | None:
    """The index keys the oracle is given beside `directory_signature` (`Checkpoint.index_keys`:
    the index's keys where they differ from the shards'), None for a single file."""
    checkpoint = _loaded(directory, variant)
    return None if checkpoint is None else checkpoint.index_keys


def _loaded(directory: Path, variant: str | None) -> Checkpoint | None:
    """The checkpoint of `directory` transformers loads with `variant` (the others of that variant
    are `shadowed_by` it; another variant's are checkpoints of their own)."""
    return next(
        (
            c
            for c in find_checkpoints([directory])
            if c.shadowed_by is None and _variant(c.path.name) == variant
        ),
        None,
    )


def _variant(name: str) -> str | None:
    """The variant of a weights file or index transformers names (`model.fp16.safetensors`)."""
    parts = index_name(name)
    if parts is not None:
        return parts.variant
    found = plain_name(name, ("model.safetensors", "pytorch_model.bin"))
    return None if found is None else found[1]


@record
class ReferenceReport:
    """What the real `from_pretrained` decided."""

    missing: frozenset[str]
    unexpected: frozenset[str]
    mismatched: MismatchSet
    conversion_errors: frozenset[str]
    raised: str | None  # what from_pretrained raised after its report, if it did


def reference_report(cls: Any, directory: Path, variant: str | None = None) -> ReferenceReport:
    """Load `directory` with the real `cls.from_pretrained` (with `variant`, if given) and capture
    its final loading info."""
    modeling_utils = importlib.import_module("transformers.modeling_utils")
    if not hasattr(modeling_utils, "log_state_dict_report"):
        return _reference_report_v4(modeling_utils, cls, directory, variant)
    captured: list[Any] = []
    original = modeling_utils.log_state_dict_report

    def capture(*args: Any, **kwargs: Any) -> Any:
        # 5.x later passes the LoadStateDictInfo; 5.0 on passed its key sets one by one.
        captured.append(kwargs.get("loading_info") or SimpleNamespace(**kwargs))
        return original(*args, **kwargs)

    raised: str | None = None
    returned: dict[str, Any] | None = None
    with unittest.mock.patch.object(modeling_utils, "log_state_dict_report", capture):
        try:
            _, returned = cls.from_pretrained(
                str(directory),
                output_loading_info=True,
                ignore_mismatched_sizes=True,
                variant=variant,
            )
        except RuntimeError as e:
            raised = str(e)
            if not captured:  # it failed before reporting: nothing to compare with
                raise
    if len(captured) != 1:
        raise AssertionError(f"from_pretrained reported {len(captured)} times, expected once")
    info = captured[0]
    report = ReferenceReport(
        missing=frozenset(info.missing_keys),
        unexpected=frozenset(info.unexpected_keys),
        mismatched=_mismatch_set(info.mismatched_keys),
        conversion_errors=frozenset(info.conversion_errors),
        raised=raised,
    )
    if returned is not None and (
        frozenset(returned["missing_keys"]) != report.missing
        or frozenset(returned["unexpected_keys"]) != report.unexpected
        or _mismatch_set(returned["mismatched_keys"]) != report.mismatched
    ):
        raise AssertionError("from_pretrained returned other keys than it reported")
    return report


def _reference_report_v4(
    modeling_utils: Any, cls: Any, directory: Path, variant: str | None
) -> ReferenceReport:
    """transformers 4.x returns mismatched keys by name; their shapes come from the function
    that found them (`_find_mismatched_keys`), captured on the way: every shape pair, as a key in
    two shards is reported once per copy of another shape."""
    shapes: list[tuple[str, Any, Any]] = []
    original = modeling_utils._find_mismatched_keys

    def capture(*args: Any, **kwargs: Any) -> Any:
        keys, found = original(*args, **kwargs)
        shapes.extend((key, *pair) for key, pair in zip(keys, found, strict=True))
        return keys, found

    with unittest.mock.patch.object(modeling_utils, "_find_mismatched_keys", capture):
        _, returned = cls.from_pretrained(
            str(directory), output_loading_info=True, ignore_mismatched_sizes=True, variant=variant
        )
    return ReferenceReport(
        missing=frozenset(returned["missing_keys"]),
        unexpected=frozenset(returned["unexpected_keys"]),
        mismatched=_mismatch_set(s for s in shapes if s[0] in set(returned["mismatched_keys"])),
        conversion_errors=frozenset(),
        raised=None,
    )


def differences(
    verdict: LoadVerdict,
    report: ReferenceReport,
    tensors: Mapping[str, TensorSpec],
    index_keys: Iterable[str] | None = None,
) -> list[str]:
    """Every way `verdict` departs from transformers' report; empty when they agree.

    Besides the four key sets, checks that the file-side names the rules report with are the
    checkpoint's own (`tensors`; an unexpected key may also be one only the index names).
    """
    out: list[str] = []
    named = set(tensors) | set(index_keys or ())

    def compare(what: str, ours: Any, theirs: Any) -> None:
        if ours != theirs:
            out.append(
                f"{what}: oracle only {sorted(ours - theirs)}, transformers only "
                f"{sorted(theirs - ours)}"
            )

    compare("missing", verdict.missing_keys, report.missing)
    compare("unexpected", verdict.unexpected_keys, report.unexpected)
    compare("mismatched", verdict.mismatched_keys, report.mismatched)
    compare(
        "conversion errors",
        frozenset(c.model_key for c in verdict.conversion_errors),
        report.conversion_errors,
    )
    if (report.raised is not None) != bool(verdict.conversion_errors):
        out.append(f"from_pretrained raised {report.raised!r}; oracle conversion errors differ")
    for u in verdict.unexpected:
        if u.file_key not in named:
            out.append(f"unexpected {u.model_key!r} names no checkpoint key ({u.file_key!r})")
    for m in verdict.mismatched:
        if not m.file_keys or not set(m.file_keys) <= set(tensors):
            out.append(
                f"mismatch {m.model_key!r} names file keys {m.file_keys} not all in the file"
            )
        if m.file_key is not None and m.file_key not in m.file_keys:
            out.append(f"mismatch {m.model_key!r}: file_key {m.file_key!r} not among its file_keys")
    for s in verdict.shadowed:
        if s.file_key not in tensors or s.winner not in tensors:
            out.append(f"shadowed {s.file_key!r} or its winner {s.winner!r} is not in the file")
    return out


def _mismatch_set(items: Any) -> MismatchSet:
    return frozenset(
        (str(k), tuple(int(d) for d in a), tuple(int(d) for d in b)) for k, a, b in items
    )
