"""A baseline: today's findings, recorded so that only new ones are reported.

    sdlint check --write-baseline sdlint-baseline.json models/
    sdlint check --baseline sdlint-baseline.json models/     # or `baseline = ...` in [tool.sdlint]

Each entry is a finding's code, path (relative to the baseline file's folder), tensor and a
fingerprint: a hash of the finding (code, tensor, expected and actual shapes, config key) and of
its checkpoint's signature (every tensor's name, dtype and shape), never of tensor data. Retrained
weights keep their fingerprints; a change of shape or of the key set makes the findings new. An
entry suppresses one finding; entries left over match nothing any more (stale). The file is JSON,
sorted and indented, the same bytes for the same findings, so it reviews well in a diff.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from sdlint.checkpoint import Checkpoint
from sdlint.diagnostic import Diagnostic
from sdlint.errors import UsageError
from sdlint.record import record
from sdlint.sources.local import display

FORMAT = 1
_FORMAT_KEY = "sdlint-baseline"


@record(order=True)
class Entry:
    path: str  # posix, relative to the baseline file's folder
    code: str
    tensor: str  # "" for a finding about a whole file
    fingerprint: str
    message: str = ""  # for the reader of the file only: not part of the match

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.path, self.code, self.tensor, self.fingerprint)

    def to_dict(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "path": self.path,
            "tensor": self.tensor or None,
            "fingerprint": self.fingerprint,
            "message": self.message,
        }


@record
class Filtered:
    """What a baseline leaves of a run's findings."""

    diagnostics: tuple[Diagnostic, ...]  # the findings not in the baseline
    suppressed: int
    stale: tuple[Entry, ...]  # entries that matched no finding


def signatures(checkpoints: Iterable[Checkpoint]) -> dict[str, str]:
    """Each path a finding can name (weights file, shard, index, config.json) -> the hash of its
    checkpoint's key, dtype and shape signature."""
    out: dict[str, str] = {}
    for checkpoint in checkpoints:
        rows = sorted(
            [name, info.dtype, list(info.shape)] for name, info in checkpoint.tensors.items()
        )
        digest = _hash(rows)
        paths = [checkpoint.path, *(f.path for f in checkpoint.files)]
        if checkpoint.config is not None:
            paths.append(checkpoint.config.path)
        for path in paths:
            out.setdefault(path.display, digest)
    return out


def fingerprint(diagnostic: Diagnostic, signature: str) -> str:
    """The finding without its wording, and its checkpoint's signature: stable across retraining
    and sdlint's rewording, new when a shape or the key set changes."""
    return _hash(
        {
            "code": diagnostic.code,
            "tensor": diagnostic.tensor,
            "expected": diagnostic.expected,
            "actual": diagnostic.actual,
            "config_key": diagnostic.config_key,
            "signature": signature,
        }
    )[:32]


def entries(
    diagnostics: Sequence[Diagnostic], checkpoints: Iterable[Checkpoint], folder: Path
) -> list[Entry]:
    """The baseline entries of these findings, for a baseline file in `folder`, in finding order."""
    by_path = signatures(checkpoints)
    return [
        Entry(
            _relative(d.path, folder),
            d.code,
            d.tensor or "",
            fingerprint(d, by_path.get(d.path, "")),
            d.message,
        )
        for d in diagnostics
    ]


def write(path: Path, diagnostics: Sequence[Diagnostic], checkpoints: Iterable[Checkpoint]) -> int:
    """Write the baseline of these findings to `path`; the number of entries."""
    found = sorted(entries(diagnostics, checkpoints, path.resolve().parent))
    document = {_FORMAT_KEY: FORMAT, "findings": [e.to_dict() for e in found]}
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write the baseline {display(path)}: {e.strerror or e}") from e
    return len(found)


def read(path: Path) -> list[Entry]:
    """The entries of a baseline file. Raises UsageError when it cannot be used."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read the baseline {display(path)}: {e.strerror or e}") from e
    except (UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"the baseline {display(path)} is not JSON: {e}") from e
    if not isinstance(document, dict) or document.get(_FORMAT_KEY) != FORMAT:
        raise UsageError(
            f"{display(path)} is not an sdlint baseline (format {FORMAT}); "
            "write one with `sdlint check --write-baseline FILE PATH...`"
        )
    findings = document.get("findings")
    if not isinstance(findings, list):
        raise UsageError(f"the baseline {display(path)} has no `findings` list")
    out = []
    for item in findings:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("code", "path", "fingerprint")
        ):
            raise UsageError(f"the baseline {display(path)} has a malformed entry: {item!r}")
        tensor = item.get("tensor")
        message = item.get("message")
        out.append(
            Entry(
                item["path"],
                item["code"],
                tensor if isinstance(tensor, str) else "",
                item["fingerprint"],
                message if isinstance(message, str) else "",
            )
        )
    return out


def apply(
    path: Path, diagnostics: Sequence[Diagnostic], checkpoints: Iterable[Checkpoint]
) -> Filtered:
    """The findings the baseline at `path` does not hold, how many it held, and its stale
    entries."""
    recorded = read(path)
    remaining = Counter(e.key for e in recorded)
    kept: list[Diagnostic] = []
    current = entries(diagnostics, checkpoints, path.resolve().parent)
    for diagnostic, entry in zip(diagnostics, current, strict=True):
        if remaining[entry.key] > 0:
            remaining[entry.key] -= 1
        else:
            kept.append(diagnostic)
    stale: list[Entry] = []
    for entry in sorted(recorded):
        if remaining[entry.key] > 0:
            remaining[entry.key] -= 1
            stale.append(entry)
    return Filtered(tuple(kept), len(diagnostics) - len(kept), tuple(stale))


def _relative(path: str, folder: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), folder)).as_posix()


def _hash(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()
