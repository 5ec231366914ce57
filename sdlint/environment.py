"""What sdlint's caches read from the environment: the cache folder, and the installed versions
of distributions (found without importing them or importlib.metadata). The verdict cache
(sdlint/model/cache.py) and the run cache (sdlint/runcache.py) share them; kept light for the run
cache's replay, which imports little else."""

from __future__ import annotations

import functools
import importlib
import os
import sys
from pathlib import Path

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

CACHE_DIR_ENV = "SDLINT_CACHE_DIR"


def default_cache_dir() -> Path:
    """`$SDLINT_CACHE_DIR`, else the platform's user cache directory for sdlint."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured)
    import platformdirs

    return Path(platformdirs.user_cache_dir("sdlint"))


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution without importing it; None when absent.

    The answer `importlib.metadata.version` gives, found without importing importlib.metadata
    (and email, which it parses METADATA with) and without its scan of every sys.path entry:
    the `Version:` field of the first `<name>-*.dist-info` on sys.path, the distribution
    importlib.metadata finds first too. Anything less plain (a zip on sys.path, an egg-info, a
    METADATA without a version) is left to importlib.metadata.
    """
    return _version_on(distribution, tuple(sys.path))


@functools.cache
def _version_on(distribution: str, path: tuple[str, ...]) -> str | None:
    """`installed_version` for one sys.path (asked twice per verdict: read once per process)."""
    wanted = _normalized(distribution)
    for entry in path:
        found = _dist_infos(entry or ".")
        if found is None:  # not a plain folder: importlib.metadata knows the other cases
            return _metadata_version(distribution)
        name = found.get(wanted)
        if name is None:
            continue
        if not name.endswith(".dist-info"):
            return _metadata_version(distribution)
        version = _version_field(Path(entry or ".", name, "METADATA"))
        return version if version is not None else _metadata_version(distribution)
    return None


def _normalized(name: str) -> str:
    """A distribution name as importlib.metadata compares them (PEP 503, `-` as `_`): runs of
    `-`, `_` and `.` as one `_` (without a regular expression: compiling one costs a replayed
    run more than the rest of this lookup)."""
    out = name.lower().replace("-", "_").replace(".", "_")
    while "__" in out:
        out = out.replace("__", "_")
    return out


@functools.cache
def _dist_infos(entry: str) -> dict[str, str] | None:
    """Normalized distribution name -> the first metadata folder for it in one sys.path entry, in
    listing order as importlib.metadata takes them; None when the entry exists but is not a
    folder (a zip file: importlib.metadata reads those)."""
    try:
        names = os.listdir(entry)  # noqa: PTH208 (as Path.iterdir lists, without a Path each)
    except OSError:
        return None if Path(entry).exists() else {}
    found: dict[str, str] = {}
    for name in names:
        low = name.lower()
        if low.endswith((".dist-info", ".egg-info", ".egg")):
            stem = low.rpartition(".")[0] if not low.endswith(".egg") else low[: -len(".egg")]
            found.setdefault(_normalized(stem.partition("-")[0]), name)
    return found


def _version_field(metadata: Path) -> str | None:
    """The `Version:` header of a METADATA file (RFC 822 headers end at the first blank line)."""
    try:
        with metadata.open(encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                if key.lower() == "version":
                    return value.strip()
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _metadata_version(distribution: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def sha256(data: bytes) -> str:
    """The sha256 hex digest of `data` (verdict cache keys, their config and index inputs)."""
    hexdigest: str = _sha256()(data).hexdigest()
    return hexdigest


@functools.cache
def _sha256() -> Any:
    """hashlib's sha256, from CPython's own module where there is one (`_sha2` from 3.12,
    `_sha256` before): `import hashlib` loads OpenSSL first, about 5 ms of every run that looks a
    verdict up, for one short digest. hashlib where Python was built without it."""
    for name in ("_sha2", "_sha256"):
        try:
            return importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
    import hashlib

    return hashlib.sha256
