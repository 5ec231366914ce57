"""Wrapper prefixes (SD106): leading key components a training wrapper adds and transformers does
not strip. The lint policy, in one place: the header-only check (SD106 without a model,
sdlint/rules/key_prefix_mismatch.py) and the search a model confirms (sdlint/model/oracle.py) both
read it. Plain key names only: no torch, no transformers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

# The wrappers known by name, and what adds them.
KNOWN = {"module.": "DistributedDataParallel", "_orig_mod.": "torch.compile"}
# At most this many components are stripped: `module._orig_mod.` is two; more is not a wrapper.
MAX_DEPTH = 3
# With a model: a prefix is suspected when at least this share of the file keys is unexpected and
# carries one common leading component, and confirmed when stripping it lets at least `LOADED` of
# the file keys load. A `base_model_prefix` difference never gets there: transformers resolves it
# itself, so those checkpoints are not mostly unexpected.
SUSPECT = 0.9
LOADED = 0.5

TYPE_CHECKING = False  # typing is not imported at run time (a check has no use for it)
if TYPE_CHECKING:
    from typing import TypeVar

    V = TypeVar("V")


def known_prefix(keys: Iterable[str]) -> str | None:
    """The known wrappers every key starts with (`module.`, `_orig_mod.`, or a run of them such
    as `module._orig_mod.`), from the names alone; None when a key lacks them or there are none."""
    rest = list(keys)
    prefix = ""
    for _ in range(MAX_DEPTH):
        wrapper = next((w for w in KNOWN if rest and all(r.startswith(w) for r in rest)), None)
        if wrapper is None:
            break
        prefix += wrapper
        rest = [r[len(wrapper) :] for r in rest]
    return prefix or None


def common_component(keys: Iterable[str]) -> str | None:
    """The leading component at least `SUSPECT` of the keys carry (`module`), or None."""
    names = list(keys)
    counts = Counter(k.split(".", 1)[0] for k in names if "." in k)
    if not counts:
        return None
    component, count = counts.most_common(1)[0]
    return component if component and count >= SUSPECT * len(names) else None


def strip(tensors: Mapping[str, V], prefix: str) -> dict[str, V]:
    """The keys with `prefix` removed. Unprefixed keys first, so a stripped key replaces an
    unprefixed one of the same name, as renaming the keys in the file (the fix) would."""
    out = {k: v for k, v in tensors.items() if not k.startswith(prefix)}
    out.update({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    return out


def origin(prefix: str) -> str:
    """What added the prefix, as far as it is known: "DistributedDataParallel and torch.compile"."""
    components = [c + "." for c in prefix.split(".") if c]
    return " and ".join(KNOWN[c] for c in components if c in KNOWN)
