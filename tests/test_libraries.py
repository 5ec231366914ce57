"""Folders of other libraries (diffusers, sentence-transformers, timm, PEFT): the integrity rules
run, the model rules are skipped with a note, never SD107. The files are the ones the libraries'
own `save_pretrained`/`save` write (names and config keys), built in code with tiny tensors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sdlint.libraries import foreign_config
from tests.cli_helpers import run
from tests.safetensors_files import write_tensors

CLIP_TEXT_CONFIG = {
    "architectures": ["CLIPTextModel"],
    "model_type": "clip_text_model",
    "hidden_size": 32,
    "num_hidden_layers": 1,
}
BERT_CONFIG = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 32}


def write_json(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))
    return path


def diffusers_model(folder: Path, class_name: str = "UNet2DConditionModel") -> Path:
    """As `UNet2DConditionModel.save_pretrained(folder)` writes it."""
    write_json(
        folder / "config.json",
        {"_class_name": class_name, "_diffusers_version": "0.31.0", "sample_size": 8},
    )
    write_tensors(folder / "diffusion_pytorch_model.safetensors", {"conv_in.weight": ("F32", (4,))})
    return folder


def diffusers_pipeline(root: Path) -> Path:
    """As `StableDiffusionPipeline.save_pretrained(root)` lays it out (the weight-bearing parts)."""
    write_json(
        root / "model_index.json",
        {
            "_class_name": "StableDiffusionPipeline",
            "_diffusers_version": "0.31.0",
            "text_encoder": ["transformers", "CLIPTextModel"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
            "scheduler": ["diffusers", "PNDMScheduler"],
        },
    )
    diffusers_model(root / "unet")
    # a component whose config lacks the diffusers keys is still known from model_index.json
    write_json(root / "vae" / "config.json", {"sample_size": 8})
    write_tensors(root / "vae" / "diffusion_pytorch_model.safetensors", {"w": ("F32", (4,))})
    write_json(root / "scheduler" / "scheduler_config.json", {"_class_name": "PNDMScheduler"})
    write_json(root / "text_encoder" / "config.json", CLIP_TEXT_CONFIG)
    write_tensors(root / "text_encoder" / "model.safetensors", {"w": ("F32", (4,))})
    return root


def sentence_transformer(root: Path) -> Path:
    """As `SentenceTransformer.save(root)` writes a model with a Dense module."""
    write_json(root / "config.json", BERT_CONFIG)
    write_tensors(root / "model.safetensors", {"embeddings.w": ("F32", (4,))})
    write_json(
        root / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Dense",
                "type": "sentence_transformers.models.Dense",
            },
        ],
    )
    write_json(root / "config_sentence_transformers.json", {"__version__": {}})
    write_json(root / "1_Pooling" / "config.json", {"word_embedding_dimension": 4})
    write_json(
        root / "2_Dense" / "config.json",
        {
            "in_features": 4,
            "out_features": 2,
            "bias": True,
            "activation_function": "torch.nn.modules.activation.Tanh",
        },
    )
    write_tensors(
        root / "2_Dense" / "model.safetensors",
        {"linear.weight": ("F32", (2, 4)), "linear.bias": ("F32", (2,))},
    )
    return root


def timm_model(folder: Path) -> Path:
    """As `timm.models.push_to_hub`'s `save_for_hf` writes it."""
    write_json(
        folder / "config.json",
        {
            "architecture": "resnet18",
            "num_classes": 10,
            "num_features": 512,
            "global_pool": "avg",
            "pretrained_cfg": {"tag": "a1_in1k", "input_size": [3, 224, 224]},
        },
    )
    write_tensors(folder / "model.safetensors", {"fc.weight": ("F32", (10, 4))})
    return folder


def peft_adapter(folder: Path) -> Path:
    """As `PeftModel.save_pretrained(folder)` writes it, beside the base model's config.json."""
    write_json(folder / "config.json", BERT_CONFIG)
    write_json(
        folder / "adapter_config.json",
        {"peft_type": "LORA", "base_model_name_or_path": "bert-base-uncased", "r": 8},
    )
    write_tensors(
        folder / "adapter_model.safetensors",
        {"base_model.model.encoder.layer.0.attention.self.query.lora_A.weight": ("F32", (8, 4))},
    )
    return folder


def lines(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code, out, err = run(capsys, "check", *argv)
    assert err == ""
    return code, out.splitlines()


@pytest.mark.parametrize("mode", ["auto", "cached"])
def test_a_diffusers_model_is_not_checked_as_transformers(
    mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unet = diffusers_model(tmp_path / "unet")
    assert lines(capsys, f"--model-checks={mode}", str(unet)) == (
        0,
        [
            "note: model checks skipped for 1 checkpoint: not a transformers model, so there is "
            f"no model to check against ({unet}/config.json is a diffusers config "
            "(UNet2DConditionModel))",
            "All checks passed (1 file checked).",
        ],
    )


def test_a_diffusers_pipeline_checks_its_transformers_component_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = diffusers_pipeline(tmp_path / "pipe")
    code, out = lines(capsys, "--model-checks=cached", str(root))
    assert code == 0 and out[-1] == "All checks passed (3 files checked)."
    assert set(out[:-1]) == {
        "note: model checks skipped for 2 checkpoints: not a transformers model, so there is no "
        f"model to check against ({root}/unet/diffusion_pytorch_model.safetensors is part of a "
        "diffusers pipeline (diffusers UNet2DConditionModel); "
        f"{root}/vae/diffusion_pytorch_model.safetensors is part of a diffusers pipeline "
        "(diffusers AutoencoderKL))",
        "note: model checks skipped for 1 checkpoint: no recorded verdict for this config; run "
        "sdlint with transformers installed, or use the sdlint-model hook "
        f"({root}/text_encoder/config.json)",
    }


def test_a_sentence_transformers_module_is_not_checked_as_transformers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = sentence_transformer(tmp_path / "st")
    code, out = lines(capsys, "--model-checks=cached", str(root))
    assert code == 0
    root_note, dense = sorted(out[:-1])
    assert dense.endswith(
        f"({root}/2_Dense/model.safetensors is a sentence-transformers Dense module)"
    )
    assert root_note.endswith(f"sdlint-model hook ({root}/config.json)")  # the root: transformers


def test_timm_and_peft_are_not_checked_as_transformers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    timm = timm_model(tmp_path / "timm")
    adapter = peft_adapter(tmp_path / "lora")
    code, out = lines(capsys, str(timm), str(adapter))
    assert code == 0
    assert out[0].startswith("note: model checks skipped for 1 checkpoint: not a transformers")
    assert f"{timm}/config.json is a timm config (resnet18)" in out[0]
    # the adapter is checked against its base model when there is a local one: here a Hub name
    assert out[1].startswith("note: model checks skipped for 1 checkpoint: a PEFT adapter whose")
    assert (
        f"{adapter}/adapter_config.json: base_model_name_or_path is 'bert-base-uncased'" in out[1]
    )


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"_class_name": "AutoencoderKL", "_diffusers_version": "0.31.0"}, "a diffusers config"),
        ({"architecture": "vit_base", "pretrained_cfg": {}}, "a timm config (vit_base)"),
        ({"architectures": ["BertModel"], "model_type": "bert"}, None),
        # transformers configs that happen to have a timm-like key are still transformers
        ({"model_type": "timm_wrapper", "architecture": "resnet18", "num_classes": 2}, None),
        ({"hidden_size": 4}, None),  # nothing recognised: SD107 says what is missing
    ],
)
def test_foreign_config(config: dict[str, Any], expected: str | None) -> None:
    found = foreign_config(config)
    assert found == expected or (
        expected is not None and found is not None and found.startswith(expected)
    )
