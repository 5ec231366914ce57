"""A disk cache of model verdicts, so a warm run imports neither torch nor transformers.

Building the expected model costs 3-6 s of imports (design doc R8); its answer depends only on
what the key below covers, so it is computed once per (config, checkpoint signature, versions).
Tensor data is not in the key: retrained weights of the same shapes reuse the verdict.

Entries are single JSON files written atomically (temp file in the same directory, fsync,
`os.replace`), so concurrent writers of one key leave one complete entry and readers never see a
partial one. Anything unreadable, truncated, of another format or filed under the wrong key is a
miss and gets rewritten. No cache error ever fails a lint: a read-only, full or missing directory
just means no caching (the run says so in one note, `write_note`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import sdlint
from sdlint import memo
from sdlint.environment import (
    CACHE_DIR_ENV,
    _dist_infos,
    _version_on,
    default_cache_dir,
    installed_version,
    sha256,
)
from sdlint.model.verdict import (
    FORMAT_VERSION,
    AdapterOutcome,
    AdapterVerdict,
    ConfigProblem,
    LoadVerdict,
    Outcome,
    Stored,
    TensorSpec,
    from_dict,
)
from sdlint.runcache import depend, untrusted

TYPE_CHECKING = False  # typing is not imported at run time (a warm run has no use for it)
if TYPE_CHECKING:
    from typing import Any, TypeVar

__all__ = [
    "CACHE_DIR_ENV",
    "VerdictCache",
    "_dist_infos",
    "_version_on",
    "cache_key",
    "cache_root",
    "default_cache_dir",
    "find_recorded",
    "installed_version",
]

# Entries are verdict documents (sdlint/model/verdict.py) under their key, so the verdicts' format
# version is the cache's: one constant names the folder, enters the key and is checked on read.
_ENTRY_DIR = f"verdicts-v{FORMAT_VERSION}"
# The last verdict built for each (config, architecture, signature), whatever the versions: a
# separate folder, so the exact cache's entries stay one per key.
_RECORDED_DIR = "recorded"
# What each folder of verdicts keeps (sdlint/prune.py; looked over at most hourly, by a run that
# has just computed a verdict, which costs seconds): verdicts read or written within 180 days, at
# most 8192 and 512 MiB, the least recently used going first. More than the run cache keeps
# (sdlint/runcache.py): a verdict costs seconds of transformers to build again, and the light
# pre-commit hook (`--model-checks=cached`) has only the recorded ones.
KEEP_VERDICTS = (8192, 512 << 20, 180)
# A verdict for a 1,000-key MoE is ~100 kB; anything far larger was not written by us.
_MAX_ENTRY_BYTES = 64 * 1024 * 1024


def cache_root(cache_dir: Path | None) -> Path:
    """The cache folder a run uses: `cache_dir` when one is given, else `default_cache_dir()`."""
    return cache_dir if cache_dir is not None else default_cache_dir()


def cache_key(
    config_bytes: bytes,
    tensors: Mapping[str, TensorSpec],
    architecture: str | None,
    *,
    transformers_version: str | None,
    torch_version: str | None,
    extra: Mapping[str, str | None] | None = None,
) -> str:
    """sha256 over everything the verdict depends on.

    The config is hashed byte for byte (a reformatted config is a miss, never a wrong hit). torch's
    version is included although the meta build barely depends on it: a cache must never be the
    reason a verdict is stale.
    """
    # A tuple is a JSON array too: the usual tensor's entry is made without a list or a call.
    signature = [
        (k, spec.dtype, spec.shape) if not spec.earlier else _spec_entry(k, spec)
        for k, spec in sorted(tensors.items())
    ]
    document = {
        "format": FORMAT_VERSION,
        "sdlint": sdlint.__version__,
        "transformers": transformers_version,
        "torch": torch_version,
        "config_sha256": sha256(config_bytes),
        "architecture": architecture,
        "signature": signature,
    }
    if extra:  # more inputs (an adapter verdict's: its adapter config, the peft version)
        document["extra"] = dict(sorted(extra.items()))
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return sha256(text.encode("ascii"))


def _spec_entry(key: str, spec: TensorSpec) -> list[Any]:
    """A tensor in the cache key: name, dtype, shape, and the earlier shards' copies of a key in
    several shards (absent otherwise, so the usual checkpoint's key is unchanged)."""
    entry: list[Any] = [key, spec.dtype, list(spec.shape)]
    if spec.earlier:
        entry.append([[copy.dtype, list(copy.shape)] for copy in spec.earlier])
    return entry


class VerdictCache:
    """Verdicts stored as `<directory>/verdicts-v<FORMAT_VERSION>/<key>.json`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory / _ENTRY_DIR
        self.write_error: str | None = None  # why the last `put` failed, in a few words

    @classmethod
    def recorded(cls, root: Path) -> VerdictCache:
        """The recorded verdicts under the cache root `root` (see `recorded_key`)."""
        return cls(root / _RECORDED_DIR)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> Outcome | None:
        """The stored model verdict, or None for a miss (or an entry that does not decode)."""
        value = self._get(key)
        return value if isinstance(value, (LoadVerdict, ConfigProblem)) else None

    def get_once(self, key: str) -> Outcome | None:
        """`get`, each entry decoded once per run (sdlint/memo.py): 200 fine-tunes of one base
        share a verdict. A miss is looked up again: the run may compute and store it meanwhile."""
        known = memo.table("verdict")
        if known is None:
            return self.get(key)
        found: Outcome | None = known.get((self.directory, key))
        if found is None:
            found = self.get(key)
            if found is not None:
                known[(self.directory, key)] = found
        return found

    def get_adapter(self, key: str) -> AdapterOutcome | None:
        """The stored adapter verdict (sdlint/model/peft.py), or None for a miss."""
        value = self._get(key)
        return value if isinstance(value, (AdapterVerdict, ConfigProblem)) else None

    def _get(self, key: str) -> Stored | None:
        try:
            with self.path(key).open("rb") as f:
                raw = f.read(_MAX_ENTRY_BYTES + 1)
        except OSError:
            return None
        if len(raw) > _MAX_ENTRY_BYTES:
            return None
        try:
            document = json.loads(raw)
            if not isinstance(document, dict) or document.get("key") != key:
                return None
            return from_dict(document.get("value"))
        except (ValueError, RecursionError):  # JSONDecodeError and from_dict's errors
            return None

    def put(self, key: str, value: Stored) -> bool:
        """Store `value` under `key`; False when the cache cannot be written (never raises)."""
        payload = json.dumps(
            {"key": key, "value": value.to_dict()}, sort_keys=True, separators=(",", ":")
        ).encode("utf-8")
        tmp: str | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            import tempfile  # only a cold run writes: a warm one does not import it

            fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=self.directory)
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            Path(tmp).replace(self.path(key))  # atomic: readers see the old or the new entry
            tmp = None
        except OSError as e:  # read-only (EACCES, EROFS), full (ENOSPC, EDQUOT), not a folder
            self.write_error = e.strerror or type(e).__name__
            untrusted()  # the run's output carries the note: not one to replay later
            return False
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    Path(tmp).unlink()
        from sdlint.prune import Limits, maybe_prune  # a computed verdict, never a hit

        maybe_prune(self.directory, Limits(*KEEP_VERDICTS), ".json")
        return True

    def keep(
        self, root: Path, key: str, recorded: str, value: Stored, notes: list[str] | None
    ) -> None:
        """Store `value` under `key` and, once stored, as the verdict recorded under `recorded`
        (its key whatever the versions) below the cache root `root`; a cache that cannot be
        written (read-only, full) adds its one note to `notes`."""
        if self.put(key, value):
            VerdictCache.recorded(root).put(recorded, value)
        note = self.write_note(root)
        if note is not None and notes is not None:
            notes.append(note)

    def write_note(self, root: Path) -> str | None:
        """The run's one line about a cache it could not write (`root` as the user set it)."""
        if self.write_error is None:
            return None
        return (
            f"the verdict cache {root} cannot be written ({self.write_error}): model verdicts are "
            "not cached, so later runs build them again"
        )


if TYPE_CHECKING:
    _Found = TypeVar("_Found", bound=Stored | None)


def find_recorded(
    read: Callable[[VerdictCache, str], _Found],
    key: str,
    cache_dir: Path | None,
    shared: Path | None,
) -> _Found:
    """The verdict recorded under `key` (`VerdictCache.get` or `.get_adapter` reads it) in the
    cache, else in `shared` (a folder of verdicts recorded for a team), else None."""
    recorded = VerdictCache.recorded(cache_root(cache_dir))
    depend(recorded.path(key))  # the run cache: a verdict recorded (or gone) since changes the run
    found = read(recorded, key)
    if found is None and shared is not None:
        depend(VerdictCache(shared).path(key))
        found = read(VerdictCache(shared), key)
    return found
