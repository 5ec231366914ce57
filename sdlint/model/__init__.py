"""Model conformance: what transformers' `from_pretrained` would report for a checkpoint.

    from sdlint.config_fields import read_config
    from sdlint.model import load_verdict, TensorSpec
    tensors = {"classifier.weight": TensorSpec("F32", (3, 768)), ...}  # from the headers
    verdict = load_verdict(read_config(Path("model/config.json")), tensors)

`load_verdict` answers from the disk cache when it can, so a warm run imports neither torch nor
transformers; on a miss it asks the oracle (sdlint/model/oracle.py), which builds the model on the
meta device and runs transformers' own key matching on the header shapes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path

from sdlint import memo
from sdlint.config_fields import UNREADABLE, ConfigFile
from sdlint.formats import TensorSpec
from sdlint.runcache import untrusted

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from sdlint.model.cache import VerdictCache
    from sdlint.model.verdict import (
        ConfigProblem,
        ConversionError,
        LoadVerdict,
        Mismatch,
        Missing,
        Outcome,
        Shadowed,
        Unexpected,
        WrapperPrefix,
    )

__all__ = [
    "ConfigProblem",
    "ConversionError",
    "LoadVerdict",
    "Mismatch",
    "Missing",
    "Outcome",
    "Shadowed",
    "TensorSpec",
    "Unexpected",
    "WrapperPrefix",
    "cached_verdict",
    "load_verdict",
    "one_computation_per_key",
    "prefetch_verdicts",
]

# The verdict types (sdlint/model/verdict.py), imported on first use: every run imports this
# package (the engine's `one_computation_per_key`), a run without model checks never needs them.
_VERDICT_NAMES = frozenset(
    {
        "ConfigProblem",
        "ConversionError",
        "LoadVerdict",
        "Mismatch",
        "Missing",
        "Outcome",
        "Shadowed",
        "Unexpected",
        "WrapperPrefix",
    }
)


def __getattr__(name: str) -> Any:
    if name not in _VERDICT_NAMES:
        raise AttributeError(f"module 'sdlint.model' has no attribute {name!r}")
    from sdlint.model import verdict

    return getattr(verdict, name)


# Inside `one_computation_per_key()`: the verdicts computed so far in this run, by cache key.
# With each, the notes its computation left that no checkpoint has reported yet (a cache that could
# not be written, when a worker process computed it).
_computed: ContextVar[dict[str, tuple[Outcome, list[str]]] | None] = ContextVar(
    "sdlint_computed", default=None
)


@contextlib.contextmanager
def one_computation_per_key() -> Iterator[None]:
    """Within the block (one run over many checkpoints), the expected model is computed once per
    distinct (config bytes, architecture, key/shape signature, versions), even with the cache off
    or unwritable: 200 fine-tunes of one base cost one model build, not 200."""
    token = _computed.set({})
    try:
        yield
    finally:
        _computed.reset(token)


def load_verdict(
    config: ConfigFile,
    tensors: Mapping[str, TensorSpec],
    architecture: str | None = None,
    *,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    notes: list[str] | None = None,
    index_keys: Sequence[str] | None = None,
) -> LoadVerdict | ConfigProblem:
    """The verdict for a checkpoint with this signature against `config` (a config.json as the
    read stage read it), cached on disk under the config's bytes.

    `index_keys` are a shard index's `weight_map` keys where they differ from the shards' own
    (`Checkpoint.index_keys`): transformers 4.x loads by the index, 5.x by the shard headers.

    `cache_dir` defaults to `$SDLINT_CACHE_DIR` or the user cache directory. Problems that depend
    on the environment rather than the inputs (transformers or an optional package missing) are
    not cached, so installing the package takes effect on the next run. A cache that cannot be
    written (read-only, full) leaves the answer as it is and adds one line to `notes`.
    """
    # Imported here: the rules import this package for its value types on every run.
    from sdlint.model.verdict import ConfigProblem

    if config.problem == UNREADABLE:
        return _predict(config, tensors, architecture, index_keys)  # the oracle words it

    key = _key(config, tensors, architecture, index_keys)
    computed = _computed.get()
    if computed is not None and key in computed:
        remembered, pending = computed[key]
        if notes is not None:
            notes.extend(pending)
        pending.clear()
        return remembered
    root = cache = None
    if use_cache:
        root, shared = _verdict_cache(cache_dir)
        hit = shared.get_once(key)
        if hit is not None:
            return hit
        from sdlint.model.cache import VerdictCache

        cache = VerdictCache(root)  # its own: it remembers why it could not be written
    result = _predict(config, tensors, architecture, index_keys)
    storable = not isinstance(result, ConfigProblem) or result.cacheable
    if not storable:
        untrusted()  # what the environment lacks (transformers, an optional package)
    # Keep it only if config.json did not change while the oracle ran: transformers reads the file
    # again to build the config, and the key must describe the bytes the verdict came from.
    # A remote config was fetched once: the bytes the oracle read are `config.raw`.
    local = config.path.local
    unchanged = local is None or _read_or_none(local) == config.raw
    if unchanged and computed is not None:
        computed[key] = (result, [])
    if cache is not None and root is not None and storable and unchanged:
        recorded = recorded_key(config.raw, tensors, architecture, index_keys=index_keys)
        cache.keep(root, key, recorded, result, notes)
    return result


def _verdict_cache(cache_dir: Path | None) -> tuple[Path, VerdictCache]:
    """The cache root for `cache_dir` and its verdict cache; within a run (sdlint/memo.py), made
    once per `cache_dir`, not once per checkpoint."""
    from sdlint.model.cache import VerdictCache, cache_root

    known = memo.table("verdict-cache")
    found: tuple[Path, VerdictCache] | None = None if known is None else known.get(cache_dir)
    if found is None:
        root = cache_root(cache_dir)
        found = (root, VerdictCache(root))
        if known is not None:
            known[cache_dir] = found
    return found


def _key(
    config: ConfigFile,
    tensors: Mapping[str, TensorSpec],
    architecture: str | None,
    index_keys: Sequence[str] | None,
) -> str:
    """The cache key of a verdict: the inputs and the versions of what computes it. Within a run
    (sdlint/memo.py), computed once per config text and signature object (a checkpoint's
    signature is asked for by `prefetch_verdicts`, then by `load_verdict`)."""
    known = memo.table("verdict-key")
    if known is None or not isinstance(index_keys, (tuple, type(None))):
        return _compute_key(config, tensors, architecture, index_keys)
    # The config by its bytes (all the key reads of it), the signature by identity: checkpoints
    # with identical headers share theirs (`Checkpoint.signature`).
    ident = (config.raw, id(tensors), architecture, index_keys)
    found = known.get(ident)
    if found is None or found[0] is not tensors:  # kept, so its id is not reused in the run
        found = known[ident] = (tensors, _compute_key(config, tensors, architecture, index_keys))
    key: str = found[1]
    return key


def _compute_key(
    config: ConfigFile,
    tensors: Mapping[str, TensorSpec],
    architecture: str | None,
    index_keys: Sequence[str] | None,
) -> str:
    from sdlint.model.cache import cache_key, installed_version

    return cache_key(
        config.raw,
        tensors,
        architecture,
        transformers_version=installed_version("transformers"),
        torch_version=installed_version("torch"),
        extra=_index_extra(index_keys),
    )


# What `load_verdict` is asked: config, signature, architecture, cache folder, use the cache,
# index keys.
Request = tuple[
    ConfigFile, Mapping[str, TensorSpec], str | None, Path | None, bool, Sequence[str] | None
]


def prefetch_verdicts(requests: Sequence[Request], jobs: int) -> int:
    """Within `one_computation_per_key()`: compute, in up to `jobs` processes, the verdicts these
    requests will ask `load_verdict` for and neither this run nor the disk cache holds, each
    distinct one once; `load_verdict` then answers them from the run's memory. Returns how many
    verdicts were computed (0: none spread, fewer than `parallel.VERDICTS_FROM` missing, or
    `jobs` 1)."""
    from sdlint import parallel

    computed = _computed.get()
    if computed is None or jobs <= 1:
        return 0
    missing: dict[str, Request] = {}
    for request in requests:
        config, tensors, architecture, cache_dir, use_cache, index_keys = request
        if config.problem == UNREADABLE:
            continue
        key = _key(config, tensors, architecture, index_keys)
        if key in computed or key in missing:
            continue
        if use_cache and _verdict_cache(cache_dir)[1].get_once(key) is not None:
            continue  # load_verdict reads it
        missing[key] = request
    if len(missing) < parallel.VERDICTS_FROM:
        return 0
    answers = parallel.spread(_answer, list(missing.values()), jobs)
    # What the workers met (a verdict cache they could not write, what the environment lacks)
    # is not seen by this process's run cache recorder: such a run is not kept for replay.
    untrusted()
    for key, answer in zip(missing, answers, strict=True):
        computed[key] = answer
    return len(missing)


def _answer(request: Request) -> tuple[Outcome, list[str]]:
    """One request answered as `load_verdict` answers it, with the notes it left (in a worker
    process: it writes the disk cache there)."""
    config, tensors, architecture, cache_dir, use_cache, index_keys = request
    notes: list[str] = []
    outcome = load_verdict(
        config,
        tensors,
        architecture,
        cache_dir=cache_dir,
        use_cache=use_cache,
        notes=notes,
        index_keys=index_keys,
    )
    return outcome, notes


def cached_verdict(
    config: ConfigFile,
    tensors: Mapping[str, TensorSpec],
    architecture: str | None = None,
    *,
    cache_dir: Path | None = None,
    shared: Path | None = None,
    index_keys: Sequence[str] | None = None,
) -> LoadVerdict | ConfigProblem | None:
    """The verdict a run with transformers recorded for exactly this config and signature, from
    any transformers version, or None. Never imports torch or transformers: this is what an
    environment without them (pre-commit's light hook) can check against. `shared` is a folder of
    verdicts recorded for a team (`sdlint check --record-verdicts`), read after the cache."""
    from sdlint.model.cache import VerdictCache, find_recorded

    if config.problem == UNREADABLE:
        return None
    key = recorded_key(config.raw, tensors, architecture, index_keys=index_keys)
    return find_recorded(VerdictCache.get, key, cache_dir, shared)


def recorded_key(
    config_bytes: bytes,
    tensors: Mapping[str, TensorSpec],
    architecture: str | None,
    *,
    index_keys: Sequence[str] | None = None,
) -> str:
    """The key of the last verdict built for these inputs, whatever the versions that built it."""
    from sdlint.model.cache import cache_key

    any_version = "recorded:any"
    return cache_key(
        config_bytes,
        tensors,
        architecture,
        transformers_version=any_version,
        torch_version=any_version,
        extra=_index_extra(index_keys),
    )


def _index_extra(index_keys: Sequence[str] | None) -> dict[str, str | None] | None:
    """The index's keys as a cache-key input, only where they differ from the shards' (so the
    key of a consistent checkpoint is the same as without an index)."""
    if index_keys is None:
        return None
    from sdlint.environment import sha256

    return {"index_keys": sha256("\n".join(index_keys).encode())}


def _predict(
    config: ConfigFile,
    tensors: Mapping[str, TensorSpec],
    architecture: str | None,
    index_keys: Sequence[str] | None = None,
) -> Outcome:
    from sdlint.model.oracle import predict_load  # imports torch/transformers lazily itself

    return predict_load(config, tensors, architecture, index_keys=index_keys)


def _read_or_none(path: Path) -> bytes | None:
    from sdlint.sources import ReadError
    from sdlint.sources.local import read_bounded

    try:
        return read_bounded(path)
    except ReadError:
        return None
