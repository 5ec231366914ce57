"""Weights file names, plain and with a variant, held to transformers' own `_add_variant`."""

from __future__ import annotations

import pytest

from sdlint.formats.names import (
    add_variant,
    index_name,
    is_index_name,
    is_safetensors_index_name,
    plain_name,
)

PLAIN = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
VARIANTS = ("fp16", "bf16", "ema", "non_ema", "fp16.ema")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("plain", PLAIN)
def test_add_variant_is_transformers_own(plain: str, variant: str) -> None:
    modeling_utils = pytest.importorskip("transformers.modeling_utils")
    assert add_variant(plain, variant) == modeling_utils._add_variant(plain, variant)
    assert add_variant(plain, None) == plain


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("model.safetensors.index.json", ("model", ".safetensors", None)),
        ("model.safetensors.index.fp16.json", ("model", ".safetensors", "fp16")),
        ("model.safetensors.index.fp16.ema.json", ("model", ".safetensors", "fp16.ema")),
        ("pytorch_model.bin.index.json", ("pytorch_model", ".bin", None)),
        ("pytorch_model.bin.index.bf16.json", ("pytorch_model", ".bin", "bf16")),
        (
            "diffusion_pytorch_model.safetensors.index.fp16.json",
            ("diffusion_pytorch_model", ".safetensors", "fp16"),
        ),
        ("model.safetensors", None),
        ("config.json", None),
        ("model_index.json", None),
        ("model.safetensors.json", None),
        ("tokenizer.json", None),
    ],
)
def test_index_names(name: str, parts: tuple[str, str, str | None] | None) -> None:
    found = index_name(name)
    assert (found and (found.stem, found.weights_suffix, found.variant)) == parts
    assert not (found and found.legacy)
    assert is_index_name(name) == (parts is not None)
    assert is_safetensors_index_name(name) == (parts is not None and parts[1] == ".safetensors")


def test_diffusers_legacy_variant_index() -> None:
    """diffusers' deprecated names: the variant before `.index.json` and after the shard's
    number (`variant_compatible_siblings`' legacy patterns)."""
    found = index_name("diffusion_pytorch_model.safetensors.fp16.index.json")
    assert found is not None and found.legacy
    assert (found.stem, found.weights_suffix, found.variant) == (
        "diffusion_pytorch_model",
        ".safetensors",
        "fp16",
    )
    assert found.shard_pattern.fullmatch("diffusion_pytorch_model-00001-of-00002.fp16.safetensors")
    assert not found.shard_pattern.fullmatch("diffusion_pytorch_model-00001-of-00002.safetensors")
    assert not found.shard_pattern.fullmatch(
        "diffusion_pytorch_model.fp16-00001-of-00002.safetensors"
    )
    assert is_safetensors_index_name("diffusion_pytorch_model.safetensors.fp16.index.json")
    assert not is_safetensors_index_name("diffusion_pytorch_model.bin.fp16.index.json")


@pytest.mark.parametrize(
    ("index", "shards", "others"),
    [
        (
            "model.safetensors.index.json",
            ["model-00001-of-00002.safetensors"],
            ["model.fp16-00001-of-00002.safetensors", "model-00001-of-00002.bin"],
        ),
        (
            "model.safetensors.index.fp16.json",
            ["model.fp16-00001-of-00002.safetensors", "model.fp16-00010-of-00010.safetensors"],
            ["model-00001-of-00002.safetensors", "model.bf16-00001-of-00002.safetensors"],
        ),
        (
            "pytorch_model.bin.index.fp16.json",
            ["pytorch_model.fp16-00001-of-00002.bin"],
            ["pytorch_model-00001-of-00002.bin", "model.fp16-00001-of-00002.safetensors"],
        ),
    ],
)
def test_shard_patterns(index: str, shards: list[str], others: list[str]) -> None:
    """What `save_pretrained` names the shards of each index, and nothing of another's."""
    parts = index_name(index)
    assert parts is not None
    assert all(parts.shard_pattern.fullmatch(s) for s in shards)
    assert not any(parts.shard_pattern.fullmatch(s) for s in others)


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("model.safetensors", ("model.safetensors", None)),
        ("model.fp16.safetensors", ("model.safetensors", "fp16")),
        ("model.fp16.ema.safetensors", ("model.safetensors", "fp16.ema")),
        ("pytorch_model.bf16.bin", ("pytorch_model.bin", "bf16")),
        ("model.safetensors.index.fp16.json", ("model.safetensors.index.json", "fp16")),
        ("model-00001-of-00002.safetensors", None),  # a shard, not a variant
        ("model.fp16-00001-of-00002.safetensors", None),
        ("adapter_model.safetensors", None),
        ("pytorch_model.bin.index.json", None),  # not pytorch_model.bin with a variant
    ],
)
def test_plain_name(name: str, found: tuple[str, str | None] | None) -> None:
    plain = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
    assert plain_name(name, plain) == found
