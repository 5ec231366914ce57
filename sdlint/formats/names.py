"""The names transformers and diffusers give weights files, plain and with a variant.

`save_pretrained(variant="fp16")` (transformers' and diffusers' `_add_variant`) puts the variant
before the last suffix of each name: `model.safetensors` -> `model.fp16.safetensors`,
`pytorch_model.bin` -> `pytorch_model.fp16.bin`, and the index `model.safetensors.index.json` ->
`model.safetensors.index.fp16.json`. Shards are the variant's weights name with `-00001-of-00003`
before the suffix: `model.fp16-00001-of-00003.safetensors` (diffusers alike:
`diffusion_pytorch_model.fp16-00001-of-00002.safetensors`, listed by
`diffusion_pytorch_model.safetensors.index.fp16.json`). `from_pretrained(variant="fp16")` looks
for exactly these names, in the same order as for the plain ones; a variant is a checkpoint of
its own, beside the plain one.

diffusers still loads (deprecated) the names its releases of mid-2024 gave a sharded variant:
the variant before `.index.json`, `diffusion_pytorch_model.safetensors.fp16.index.json`, and
after the shard's number, `diffusion_pytorch_model-00001-of-00002.fp16.safetensors`
(`_fetch_index_file_legacy`, `variant_compatible_siblings`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sdlint.record import record

# An index: `<stem>.safetensors.index.json` or torch.save's `<stem>.bin.index.json`, with a
# variant before `.json` (`model.safetensors.index.fp16.json`), or diffusers' legacy variant
# before `.index.json` (`diffusion_pytorch_model.safetensors.fp16.index.json`).
_INDEX = re.compile(
    r"(?P<stem>.*)\.(?P<format>safetensors|bin)"
    r"(?:\.index(?:\.(?P<variant>[^/]+))?|\.(?P<legacy>[^/]+)\.index)\.json"
)
# The end of a shard's stem: `-00001-of-00003`. A variant never ends so (a shard is no variant).
_SHARD_END = re.compile(r".*-\d+-of-\d+")


@record
class IndexName:
    """An index's name taken apart: `model.safetensors.index.fp16.json` is stem `model`, weights
    suffix `.safetensors`, variant `fp16`."""

    stem: str
    weights_suffix: str  # ".safetensors" or ".bin"
    variant: str | None
    legacy: bool = False  # diffusers' legacy variant name (`<stem>.safetensors.fp16.index.json`)

    @property
    def pickle(self) -> bool:
        """The index of torch.save shards (`pytorch_model.bin.index.json`)."""
        return self.weights_suffix == ".bin"

    @property
    def shard_pattern(self) -> re.Pattern[str]:
        """The names `save_pretrained` gives this index's shards (a legacy index's: the variant
        after the shard's number, `diffusion_pytorch_model-00001-of-00002.fp16.safetensors`)."""
        suffix = self.weights_suffix
        if self.legacy:
            assert self.variant is not None
            end = re.escape(f".{self.variant}{suffix}")
            return re.compile(rf"{re.escape(self.stem)}-\d+-of-\d+{end}")
        stem = add_variant(self.stem + suffix, self.variant)[: -len(suffix)]
        return re.compile(rf"{re.escape(stem)}-\d+-of-\d+{re.escape(suffix)}")


def index_name(name: str) -> IndexName | None:
    """`name` taken apart as an index's name, or None when it is not one."""
    match = _INDEX.fullmatch(name)
    if match is None:
        return None
    if match["legacy"] is not None:
        return IndexName(match["stem"], "." + match["format"], match["legacy"], legacy=True)
    return IndexName(match["stem"], "." + match["format"], match["variant"])


def is_index_name(name: str) -> bool:
    """`name` is an index's: `*.safetensors.index.json`, `*.bin.index.json`, or a variant's."""
    return _INDEX.fullmatch(name) is not None


def is_safetensors_index_name(name: str) -> bool:
    """`name` is the index of safetensors shards, plain or a variant's."""
    parts = index_name(name)
    return parts is not None and not parts.pickle


# What an editor is asked to watch for the indexes of safetensors shards (LSP glob patterns).
SAFETENSORS_INDEX_GLOBS = (
    "*.safetensors.index.json",
    "*.safetensors.index.*.json",
    "*.safetensors.*.index.json",  # diffusers' legacy variant name
)


def add_variant(name: str, variant: str | None) -> str:
    """transformers' `_add_variant`: `variant` before the last suffix of `name`."""
    if variant is None:
        return name
    path, suffix = name.rsplit(".", 1)
    return f"{path}.{variant}.{suffix}"


def plain_name(name: str, plain: Iterable[str]) -> tuple[str, str | None] | None:
    """Which of the `plain` names `name` is, and with which variant (None for the plain name
    itself): `model.fp16.safetensors` is `model.safetensors` with `fp16`. None when it is none of
    them (a shard, `model-00001-of-00002.safetensors`, is no variant)."""
    for candidate in plain:
        if name == candidate:
            return candidate, None
        path, suffix = candidate.rsplit(".", 1)
        head, tail = path + ".", "." + suffix
        if len(name) > len(head) + len(tail) and name.startswith(head) and name.endswith(tail):
            variant = name[len(head) : -len(tail)]
            if not _SHARD_END.fullmatch(variant):
                return candidate, variant
    return None
