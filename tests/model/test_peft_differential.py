"""The adapter oracle against the real thing: for tiny adapters saved by peft (LoRA, LoRA with DoRA,
IA3, AdaLoRA, `modules_to_save` heads), then mutated the ways adapters go wrong, the verdict must
equal what `PeftModel.from_pretrained(base, adapter_dir)` reports: its missing adapter keys and
unexpected keys (with `ignore_mismatched_sizes=True`), the size mismatches it raises on (without),
and whether it fails otherwise.
"""

from __future__ import annotations

import re
import shutil
import unittest.mock
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sdlint.config_fields import read_config
from sdlint.model.peft import predict_adapter
from sdlint.model.verdict import AdapterVerdict
from tests.peft_adapters import (
    CAUSAL,
    SEQ_CLS,
    edit_adapter_config,
    peft_config,
    save_adapter,
    save_base,
    signature,
)
from tests.tiny_models import edit_config, edit_weights

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
peft = pytest.importorskip("peft")
safetensors_torch = pytest.importorskip("safetensors.torch")

pytestmark = pytest.mark.model


@dataclass(frozen=True)
class PeftReport:
    missing: frozenset[str]
    unexpected: frozenset[str]
    mismatched: frozenset[tuple[str, tuple[int, ...], tuple[int, ...]]]
    raised: str | None  # an error other than a size mismatch


_SIZE_MISMATCH = re.compile(
    r"size mismatch for (\S+): copying a param with shape torch\.Size\(\[([\d, ]*)\]\) from "
    r"checkpoint, the shape in current model is torch\.Size\(\[([\d, ]*)\]\)"
)


def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def peft_report(base: Path, adapter: Path, architecture: str) -> PeftReport:
    """What the real `PeftModel.from_pretrained` reports loading `adapter` onto `base`."""
    import transformers

    cls = getattr(transformers, architecture)
    loaded: list[Any] = []
    original = peft.PeftModel.load_adapter

    def record(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        loaded.append(result)
        return result

    mismatched: set[tuple[str, tuple[int, ...], tuple[int, ...]]] = set()
    raised = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            peft.PeftModel.from_pretrained(
                cls.from_pretrained(base, ignore_mismatched_sizes=True), str(adapter)
            )
        except RuntimeError as e:
            found = _SIZE_MISMATCH.findall(str(e))
            if not found:
                raise
            mismatched = {(k, _shape(a), _shape(b)) for k, a, b in found}
        except Exception as e:  # peft fails for another reason (a modules_to_save key: KeyError)
            return PeftReport(frozenset(), frozenset(), frozenset(), type(e).__name__)
        with unittest.mock.patch.object(peft.PeftModel, "load_adapter", record):
            peft.PeftModel.from_pretrained(
                cls.from_pretrained(base, ignore_mismatched_sizes=True),
                str(adapter),
                ignore_mismatched_sizes=True,
            )
    (result,) = loaded
    missing = frozenset(
        k
        for k in result.missing_keys
        if not ("vblora_vector_bank" in k or "prompt_encoder" in k or ".tinylora_v." in k)
    )
    return PeftReport(missing, frozenset(result.unexpected_keys), frozenset(mismatched), raised)


def assert_agrees(base: Path, adapter: Path, architecture: str = SEQ_CLS) -> AdapterVerdict:
    verdict = predict_adapter(
        read_config(base / "config.json"),
        read_config(adapter / "adapter_config.json"),
        signature(adapter),
    )
    assert isinstance(verdict, AdapterVerdict), verdict
    real = peft_report(base, adapter, architecture)
    ours_missing = {m.model_key for m in verdict.missing if verdict.load_error is None}
    assert ours_missing == real.missing
    if real.raised is None:
        assert verdict.load_error is None
        assert {u.model_key for u in verdict.unexpected} == real.unexpected
    else:
        assert verdict.load_error is not None and verdict.load_error.startswith(real.raised)
    assert {(m.model_key, m.checkpoint_shape, m.model_shape) for m in verdict.mismatched} == set(
        real.mismatched
    )
    # The file-side names the rules report are the adapter file's own.
    tensors = signature(adapter)
    assert all(u.file_key in tensors for u in verdict.unexpected)
    assert all(m.file_key in tensors for m in verdict.mismatched)
    resized = {m.model_key for m in verdict.mismatched}  # dropped, so missing too (as in peft)
    assert all(m.file_key not in tensors or m.model_key in resized for m in verdict.missing)
    return verdict


KINDS = ["lora", "dora", "ia3", "adalora"]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_base(tmp_path_factory.mktemp("base"), num_labels=2)


@pytest.fixture(scope="module")
def adapters(base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        kind: save_adapter(tmp_path_factory.mktemp(kind), base, peft_config(kind)) for kind in KINDS
    }


def mutated(adapter: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], Any]) -> Path:
    copy = tmp_path / "mutated"
    shutil.copytree(adapter, copy)
    edit_weights(copy / "adapter_model.safetensors", edit)
    return copy


@pytest.mark.parametrize("kind", KINDS)
def test_clean_adapter(kind: str, base: Path, adapters: dict[str, Path]) -> None:
    verdict = assert_agrees(base, adapters[kind])
    assert verdict.is_clean
    assert verdict.peft_type == {"dora": "LORA"}.get(kind, kind.upper())


def _first(tensors: dict[str, Any], marker: str) -> str:
    return next(k for k in sorted(tensors) if marker in k)


_ADAPTER_MARKER = {
    "lora": "lora_A",
    "dora": "lora_magnitude_vector",
    "ia3": "ia3_l",
    "adalora": "lora_E",
}


@pytest.mark.parametrize("kind", KINDS)
def test_adapter_tensor_dropped(
    kind: str, base: Path, adapters: dict[str, Path], tmp_path: Path
) -> None:
    def drop(t: dict[str, Any]) -> dict[str, Any]:
        del t[_first(t, _ADAPTER_MARKER[kind])]
        return t

    verdict = assert_agrees(base, mutated(adapters[kind], tmp_path, drop))
    assert len(verdict.missing) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_unexpected_tensor(
    kind: str, base: Path, adapters: dict[str, Path], tmp_path: Path
) -> None:
    def add(t: dict[str, Any]) -> dict[str, Any]:
        return {**t, "base_model.model.roberta.pooler.extra.weight": torch.ones(3)}

    verdict = assert_agrees(base, mutated(adapters[kind], tmp_path, add))
    assert [u.file_key for u in verdict.unexpected] == [
        "base_model.model.roberta.pooler.extra.weight"
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_adapter_tensor_resized(
    kind: str, base: Path, adapters: dict[str, Path], tmp_path: Path
) -> None:
    def grow(t: dict[str, Any]) -> dict[str, Any]:
        key = _first(t, _ADAPTER_MARKER[kind])
        t[key] = torch.ones(tuple(d + 1 for d in t[key].shape))
        return t

    verdict = assert_agrees(base, mutated(adapters[kind], tmp_path, grow))
    assert len(verdict.mismatched) == 1 and not verdict.mismatched[0].in_head


@pytest.mark.parametrize("kind", KINDS)
def test_head_tensor_dropped(
    kind: str, base: Path, adapters: dict[str, Path], tmp_path: Path
) -> None:
    """A `modules_to_save` tensor missing from the file: peft raises (KeyError)."""

    def drop(t: dict[str, Any]) -> dict[str, Any]:
        del t["base_model.model.classifier.out_proj.bias"]
        return t

    verdict = assert_agrees(base, mutated(adapters[kind], tmp_path, drop))
    assert verdict.load_error is not None
    assert [m.file_key for m in verdict.missing] == ["base_model.model.classifier.out_proj.bias"]


def test_rank_differs_from_config(base: Path, adapters: dict[str, Path], tmp_path: Path) -> None:
    """adapter_config.json says r=8, the file holds rank-4 LoRA weights: every one mismatches."""
    adapter = tmp_path / "adapter"
    shutil.copytree(adapters["lora"], adapter)
    edit_adapter_config(adapter, r=8)
    verdict = assert_agrees(base, adapter)
    assert len(verdict.mismatched) == 8
    assert {m.model_key for m in verdict.missing} == {m.model_key for m in verdict.mismatched}


def test_zero3_empty_tensors(base: Path, adapters: dict[str, Path], tmp_path: Path) -> None:
    """A ZeRO-3 save that gathered nothing: every tensor has zero elements."""

    def empty(t: dict[str, Any]) -> dict[str, Any]:
        return {k: torch.empty(0) for k in t}

    verdict = assert_agrees(base, mutated(adapters["lora"], tmp_path, empty))
    assert len(verdict.mismatched) == len(signature(adapters["lora"]))


@pytest.mark.parametrize("kind", KINDS)
def test_head_labels_differ_from_base_config(
    kind: str, base: Path, adapters: dict[str, Path], tmp_path: Path
) -> None:
    """The seed's mismatch in LoRA form: a 2-label fine-tune checked against a 5-label base."""
    other = tmp_path / "base5"
    shutil.copytree(base, other)
    edit_config(other / "config.json", id2label={str(i): f"L{i}" for i in range(5)})
    verdict = assert_agrees(other, adapters[kind])
    heads = {(m.file_key, m.checkpoint_shape, m.model_shape) for m in verdict.mismatched}
    assert heads == {
        ("base_model.model.classifier.out_proj.weight", (2, 32), (5, 32)),
        ("base_model.model.classifier.out_proj.bias", (2,), (5,)),
    }
    assert all(m.in_head for m in verdict.mismatched)


def test_target_module_missing_from_base(
    base: Path, adapters: dict[str, Path], tmp_path: Path
) -> None:
    """One of two target_modules names no module of the base model: peft injects the other."""
    adapter = tmp_path / "adapter"
    shutil.copytree(adapters["lora"], adapter)
    edit_adapter_config(adapter, target_modules=["query", "value", "q_proj"])
    verdict = assert_agrees(base, adapter)
    assert verdict.unknown_targets == ("q_proj",)


def test_no_target_module_in_base(base: Path, adapters: dict[str, Path], tmp_path: Path) -> None:
    """No target_modules entry exists in the base model: peft refuses to build the adapter."""
    adapter = tmp_path / "adapter"
    shutil.copytree(adapters["lora"], adapter)
    edit_adapter_config(adapter, target_modules=["q_proj", "v_proj"])
    verdict = predict_adapter(
        read_config(base / "config.json"),
        read_config(adapter / "adapter_config.json"),
        signature(adapter),
    )
    assert isinstance(verdict, AdapterVerdict)
    assert verdict.unknown_targets == ("q_proj", "v_proj")
    real = peft_report(base, adapter, SEQ_CLS)
    assert real.raised is not None and verdict.load_error is not None
    assert verdict.load_error.startswith(real.raised)


def test_causal_lm_lora(tmp_path: Path) -> None:
    base = save_base(tmp_path / "llama", CAUSAL)
    adapter = save_adapter(tmp_path / "adapter", base, peft_config("lora-causal"), CAUSAL)
    assert assert_agrees(base, adapter, CAUSAL).is_clean

    def drop(t: dict[str, Any]) -> dict[str, Any]:
        del t[_first(t, "lora_B")]
        return t

    assert len(assert_agrees(base, mutated(adapter, tmp_path, drop), CAUSAL).missing) == 1


@pytest.mark.parametrize("kind", ["prompt", "prefix"])
def test_prompt_learning_adapter_loads_its_prompt_embeddings(kind: str, tmp_path: Path) -> None:
    """peft loads a prompt-learning adapter's `prompt_embeddings` into its prompt encoder after
    `load_state_dict`, whose result calls them unexpected: they are not (sdlint said SD104, and its
    unsafe fix would have dropped the adapter's only tensor). Without them peft raises a KeyError;
    with them of another shape, a size mismatch."""
    import transformers

    base = save_base(tmp_path / "llama", CAUSAL)
    config = (peft.PromptTuningConfig if kind == "prompt" else peft.PrefixTuningConfig)(
        task_type="CAUSAL_LM", num_virtual_tokens=4
    )
    adapter = save_adapter(tmp_path / "adapter", base, config, CAUSAL)
    verdict = predict_adapter(
        read_config(base / "config.json"),
        read_config(adapter / "adapter_config.json"),
        signature(adapter),
    )
    assert isinstance(verdict, AdapterVerdict) and verdict.is_clean, verdict
    saved = safetensors_torch.load_file(str(adapter / "adapter_model.safetensors"))
    loaded = peft.PeftModel.from_pretrained(
        transformers.LlamaForCausalLM.from_pretrained(base), str(adapter)
    )
    assert torch.equal(
        loaded.prompt_encoder["default"].embedding.weight, saved["prompt_embeddings"]
    )

    renamed = mutated(adapter, tmp_path, lambda t: {"other": t["prompt_embeddings"]})
    verdict = predict_adapter(
        read_config(base / "config.json"),
        read_config(renamed / "adapter_config.json"),
        signature(renamed),
    )
    assert isinstance(verdict, AdapterVerdict)
    assert verdict.load_error is not None and verdict.load_error.startswith("KeyError")
    assert [u.file_key for u in verdict.unexpected] == ["other"]
    assert [m.file_key for m in verdict.missing] == ["prompt_embeddings"]
    with pytest.raises(KeyError):
        peft.PeftModel.from_pretrained(
            transformers.LlamaForCausalLM.from_pretrained(base), str(renamed)
        )

    # Of another shape, they fail the prompt encoder's strict load, whatever
    # `ignore_mismatched_sizes` says: a mismatch (SD110), and nothing else fails.
    width = saved["prompt_embeddings"].shape[1]
    grown = mutated(
        adapter, tmp_path / "grown", lambda t: {"prompt_embeddings": torch.ones(5, width)}
    )
    verdict = predict_adapter(
        read_config(base / "config.json"),
        read_config(grown / "adapter_config.json"),
        signature(grown),
    )
    assert isinstance(verdict, AdapterVerdict) and verdict.load_error is None, verdict
    assert not verdict.missing and not verdict.unexpected
    assert [(m.file_key, m.checkpoint_shape, m.model_shape) for m in verdict.mismatched] == [
        ("prompt_embeddings", (5, width), (4, width))
    ]
    for ignore in (False, True):
        with pytest.raises(RuntimeError, match="size mismatch"):
            peft.PeftModel.from_pretrained(
                transformers.LlamaForCausalLM.from_pretrained(base),
                str(grown),
                ignore_mismatched_sizes=ignore,
            )
