"""The oracle against the real thing: for tiny models of many architectures, saved and then
mutated the ways checkpoints go wrong, the oracle's verdict must equal what transformers'
`from_pretrained(dir, output_loading_info=True, ignore_mismatched_sizes=True)` reports, key for
key and shape for shape.

Models are built from configs in code (nothing is downloaded), saved once per module, and every
mutation edits the saved safetensors files or config.json, which is all a linter sees.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sdlint.config_fields import read_config
from sdlint.model import ConfigProblem, LoadVerdict, Outcome, TensorSpec
from sdlint.model.oracle import predict_load as predict_from_config
from sdlint.model.reference import (
    ReferenceReport,
    differences,
    directory_index_keys,
    reference_report,
)
from sdlint.model.reference import directory_signature as signature

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

pytestmark = pytest.mark.model

# Behaviours that differ between transformers 4.x and 5.x (design doc §11) are asserted only on the
# major that has them; every case is compared with the installed version's own report either way.
V5 = int(transformers.__version__.split(".", 1)[0]) >= 5


def predict_load(
    config: Path, tensors: Mapping[str, TensorSpec], architecture: str | None = None
) -> Outcome:
    """The oracle on a config.json read as the read stage reads it, with the index's keys where
    they differ from the shards' (as the read stage passes them)."""
    index_keys = directory_index_keys(config.parent)
    return predict_from_config(read_config(config), tensors, architecture, index_keys=index_keys)


def assert_same_verdict(
    verdict: LoadVerdict,
    real: ReferenceReport,
    tensors: dict[str, TensorSpec],
    index_keys: tuple[str, ...] | None = None,
) -> None:
    """The oracle's verdict equals transformers' key for key and shape for shape."""
    assert differences(verdict, real, tensors, index_keys) == []


VOCAB = 128  # no other dimension of the tiny models is 128, so a vocab resize is unambiguous
TEXT = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "vocab_size": VOCAB,
    "max_position_embeddings": 64,
}
DECODER = {**TEXT, "num_key_value_heads": 2}
VISION = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "image_size": 32,
    "patch_size": 8,
}
SEQ2SEQ = {
    "d_model": 32,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
    "vocab_size": VOCAB,
    "max_position_embeddings": 64,
}
LABELS = {"num_labels": 3}
GPT2 = {"n_embd": 32, "n_layer": 2, "n_head": 4, "vocab_size": VOCAB, "n_positions": 64}


@dataclass(frozen=True)
class Arch:
    """A tiny model: its class, config class and config values."""

    id: str
    cls: str
    config_cls: str
    values: dict[str, Any] = field(default_factory=dict)
    vocab: bool = True  # has a vocabulary dimension of size VOCAB

    @property
    def labels(self) -> bool:
        """A classification head sized by num_labels (set in `values`)."""
        return "num_labels" in self.values


ARCHS = [
    # RoBERTa and its heads
    Arch("roberta", "RobertaModel", "RobertaConfig", TEXT),
    Arch(
        "roberta-seqcls",
        "RobertaForSequenceClassification",
        "RobertaConfig",
        {**TEXT, **LABELS},
    ),
    Arch("roberta-mlm", "RobertaForMaskedLM", "RobertaConfig", TEXT),
    Arch(
        "roberta-tokcls",
        "RobertaForTokenClassification",
        "RobertaConfig",
        {**TEXT, **LABELS},
    ),
    Arch("roberta-qa", "RobertaForQuestionAnswering", "RobertaConfig", TEXT),
    Arch("roberta-causal", "RobertaForCausalLM", "RobertaConfig", {**TEXT, "is_decoder": True}),
    Arch("roberta-mc", "RobertaForMultipleChoice", "RobertaConfig", TEXT),
    # other encoders
    Arch("bert", "BertModel", "BertConfig", TEXT),
    Arch(
        "bert-seqcls",
        "BertForSequenceClassification",
        "BertConfig",
        {**TEXT, **LABELS},
    ),
    Arch("bert-pretraining", "BertForPreTraining", "BertConfig", TEXT),
    Arch(
        "distilbert-seqcls",
        "DistilBertForSequenceClassification",
        "DistilBertConfig",
        {
            "dim": 32,
            "n_layers": 2,
            "n_heads": 4,
            "hidden_dim": 64,
            "vocab_size": VOCAB,
            "max_position_embeddings": 64,
            **LABELS,
        },
    ),
    Arch("xlmr-mlm", "XLMRobertaForMaskedLM", "XLMRobertaConfig", TEXT),
    Arch(
        "xlmr-seqcls",
        "XLMRobertaForSequenceClassification",
        "XLMRobertaConfig",
        {**TEXT, **LABELS},
    ),
    Arch(
        "electra-seqcls",
        "ElectraForSequenceClassification",
        "ElectraConfig",
        {**TEXT, "embedding_size": 16, **LABELS},
    ),
    Arch(
        "electra-pretraining",
        "ElectraForPreTraining",
        "ElectraConfig",
        {**TEXT, "embedding_size": 16},
    ),
    Arch(
        "deberta-v2-seqcls",
        "DebertaV2ForSequenceClassification",
        "DebertaV2Config",
        {**TEXT, **LABELS},
    ),
    Arch("deberta-v2-mlm", "DebertaV2ForMaskedLM", "DebertaV2Config", TEXT),
    Arch("albert-mlm", "AlbertForMaskedLM", "AlbertConfig", {**TEXT, "embedding_size": 16}),
    # decoders
    Arch(
        "gpt2",
        "GPT2Model",
        "GPT2Config",
        GPT2,
    ),
    Arch(
        "gpt2-lm",
        "GPT2LMHeadModel",
        "GPT2Config",
        GPT2,
    ),
    Arch(
        "gpt2-seqcls",
        "GPT2ForSequenceClassification",
        "GPT2Config",
        {
            **GPT2,
            "pad_token_id": 0,
            **LABELS,
        },
    ),
    Arch("llama", "LlamaModel", "LlamaConfig", DECODER),
    Arch("llama-lm", "LlamaForCausalLM", "LlamaConfig", DECODER),  # untied: Llama's default
    Arch(
        "llama-lm-tied", "LlamaForCausalLM", "LlamaConfig", {**DECODER, "tie_word_embeddings": True}
    ),
    Arch(
        "llama-seqcls",
        "LlamaForSequenceClassification",
        "LlamaConfig",
        {**DECODER, "pad_token_id": 0, **LABELS},
    ),
    Arch("mistral-lm", "MistralForCausalLM", "MistralConfig", DECODER),
    Arch("qwen2-lm", "Qwen2ForCausalLM", "Qwen2Config", DECODER),
    Arch("gemma-lm", "GemmaForCausalLM", "GemmaConfig", {**DECODER, "head_dim": 8}),
    Arch("gpt-neox-lm", "GPTNeoXForCausalLM", "GPTNeoXConfig", TEXT),
    Arch(
        "opt-lm",
        "OPTForCausalLM",
        "OPTConfig",
        {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "ffn_dim": 64,
            "vocab_size": VOCAB,
            "max_position_embeddings": 64,
            "word_embed_proj_dim": 32,
        },
    ),
    # transformers 5.0's Phi reads `pad_token_id` without a default
    Arch("phi-lm", "PhiForCausalLM", "PhiConfig", {**TEXT, "pad_token_id": 0}),
    # mixture of experts: the file layout differs from the fused in-memory one (R16)
    Arch(
        "mixtral-lm",
        "MixtralForCausalLM",
        "MixtralConfig",
        {**DECODER, "num_local_experts": 4, "num_experts_per_tok": 2},
    ),
    Arch(
        "qwen3-moe-lm",
        "Qwen3MoeForCausalLM",
        "Qwen3MoeConfig",
        {
            **DECODER,
            "num_experts": 4,
            "num_experts_per_tok": 2,
            "moe_intermediate_size": 16,
            "head_dim": 8,
        },
    ),
    # vision
    Arch("vit", "ViTModel", "ViTConfig", VISION, vocab=False),
    Arch(
        "vit-imgcls",
        "ViTForImageClassification",
        "ViTConfig",
        {**VISION, **LABELS},
        vocab=False,
    ),
    Arch(
        "swin-imgcls",
        "SwinForImageClassification",
        "SwinConfig",
        {
            "image_size": 32,
            "patch_size": 4,
            "embed_dim": 16,
            "depths": [1, 1],
            "num_heads": [2, 2],
            "window_size": 4,
            **LABELS,
        },
        vocab=False,
    ),
    Arch(
        "resnet-imgcls",  # BatchNorm: persistent buffers are expected keys (R24)
        "ResNetForImageClassification",
        "ResNetConfig",
        {"embedding_size": 16, "hidden_sizes": [16, 32], "depths": [1, 1], **LABELS},
        vocab=False,
    ),
    Arch(
        "convnext-imgcls",
        "ConvNextForImageClassification",
        "ConvNextConfig",
        {"hidden_sizes": [16, 32], "depths": [1, 1], "num_stages": 2, **LABELS},
        vocab=False,
    ),
    # multimodal
    Arch(
        "clip",
        "CLIPModel",
        "CLIPConfig",
        {"text_config": TEXT, "vision_config": VISION, "projection_dim": 16},
    ),
    Arch(
        "llava",
        "LlavaForConditionalGeneration",
        "LlavaConfig",
        {
            "text_config": {**DECODER, "model_type": "llama"},
            "vision_config": {**VISION, "model_type": "clip_vision_model"},
            "image_token_id": VOCAB - 1,
        },
    ),
    # encoder-decoders
    Arch(
        "marian",
        "MarianMTModel",
        "MarianConfig",
        {**SEQ2SEQ, "pad_token_id": 0, "decoder_start_token_id": 0},
    ),
    Arch(
        "t5",
        "T5ForConditionalGeneration",
        "T5Config",
        {
            "d_model": 32,
            "d_kv": 8,
            "d_ff": 64,
            "num_layers": 2,
            "num_heads": 4,
            "vocab_size": VOCAB,
        },
    ),
    Arch(
        "t5-encoder",
        "T5EncoderModel",
        "T5Config",
        {
            "d_model": 32,
            "d_kv": 8,
            "d_ff": 64,
            "num_layers": 2,
            "num_heads": 4,
            "vocab_size": VOCAB,
        },
    ),
    Arch("bart", "BartForConditionalGeneration", "BartConfig", SEQ2SEQ),
    Arch(
        "bart-seqcls",
        "BartForSequenceClassification",
        "BartConfig",
        {**SEQ2SEQ, **LABELS},
    ),
    Arch(
        "whisper",
        "WhisperForConditionalGeneration",
        "WhisperConfig",
        {
            **SEQ2SEQ,
            "num_mel_bins": 16,
            "max_source_positions": 32,
            "max_target_positions": 64,
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "decoder_start_token_id": 1,
            "suppress_tokens": [],
            "begin_suppress_tokens": [],
        },
    ),
    Arch(
        "wav2vec2-ctc",  # weight-norm conv: `weight_g`/`weight_v` parametrizations (R12)
        "Wav2Vec2ForCTC",
        "Wav2Vec2Config",
        {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 64,
            "vocab_size": VOCAB,
            "conv_dim": [16, 16],
            "conv_stride": [5, 2],
            "conv_kernel": [10, 3],
            "num_conv_pos_embeddings": 16,
            "num_conv_pos_embedding_groups": 4,
        },
    ),
]
ARCH = {a.id: a for a in ARCHS}
assert len(ARCHS) >= 40 and len(ARCH) == len(ARCHS)


class Zoo:
    """Each architecture built and saved once per module, on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.models: dict[str, Any] = {}

    def model(self, arch_id: str) -> Any:
        if arch_id not in self.models:
            arch = ARCH[arch_id]
            torch.manual_seed(0)
            config = getattr(transformers, arch.config_cls)(**arch.values)
            model = getattr(transformers, arch.cls)(config)
            model.save_pretrained(self.root / arch_id)
            self.models[arch_id] = model
        return self.models[arch_id]

    def saved(self, arch_id: str) -> Path:
        self.model(arch_id)
        return self.root / arch_id


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Zoo:
    return Zoo(tmp_path_factory.mktemp("zoo"))


# ---------------------------------------------------------------------------------------------
# Checkpoint surgery, on the files a linter reads.


def load_weights(directory: Path) -> dict[str, Any]:
    weights: dict[str, Any] = {}
    files = sorted(directory.glob("*.safetensors"))
    for path in files:
        weights.update(safetensors_torch.load_file(str(path)))
    return weights


def write_checkpoint(directory: Path, weights: dict[str, Any], config_from: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    safetensors_torch.save_file(
        {k: v.contiguous() for k, v in weights.items()},
        str(directory / "model.safetensors"),
        metadata={"format": "pt"},
    )
    shutil.copy(config_from / "config.json", directory / "config.json")
    return directory


def edit_config(directory: Path, **changes: Any) -> None:
    path = directory / "config.json"
    document = json.loads(path.read_text())
    document.update(changes)
    path.write_text(json.dumps(document))


def middle_key(weights: dict[str, Any]) -> str:
    return sorted(weights)[len(weights) // 2]


def resize_vocab(weights: dict[str, Any], extra: int = 8) -> dict[str, Any]:
    """A checkpoint whose vocabulary grew by `extra` tokens: every VOCAB-sized dim is padded."""
    out = {}
    for key, value in weights.items():
        for dim, size in enumerate(value.shape):
            if size == VOCAB:
                pad_shape = list(value.shape)
                pad_shape[dim] = extra
                value = torch.cat([value, torch.zeros(pad_shape, dtype=value.dtype)], dim=dim)
        out[key] = value
    return out


Mutation = Callable[[Zoo, str, Path], Path]


def roundtrip(zoo: Zoo, arch_id: str, out: Path) -> Path:
    return zoo.saved(arch_id)


def drop_key(zoo: Zoo, arch_id: str, out: Path) -> Path:
    weights = load_weights(zoo.saved(arch_id))
    del weights[middle_key(weights)]
    return write_checkpoint(out, weights, zoo.saved(arch_id))


def add_key(zoo: Zoo, arch_id: str, out: Path) -> Path:
    weights = load_weights(zoo.saved(arch_id))
    weights["extra_head.weight"] = torch.zeros(3, 4)
    weights[middle_key(weights) + "_stale"] = torch.zeros(2)
    return write_checkpoint(out, weights, zoo.saved(arch_id))


def wrapper_prefix(prefix: str) -> Mutation:
    def mutate(zoo: Zoo, arch_id: str, out: Path) -> Path:
        weights = load_weights(zoo.saved(arch_id))
        return write_checkpoint(
            out, {prefix + k: v for k, v in weights.items()}, zoo.saved(arch_id)
        )

    return mutate


def vocab_grew(zoo: Zoo, arch_id: str, out: Path) -> Path:
    weights = resize_vocab(load_weights(zoo.saved(arch_id)))
    return write_checkpoint(out, weights, zoo.saved(arch_id))


def other_num_labels(zoo: Zoo, arch_id: str, out: Path) -> Path:
    """A 3-label checkpoint checked against a 5-label config (the classic head-size mismatch)."""
    directory = write_checkpoint(out, load_weights(zoo.saved(arch_id)), zoo.saved(arch_id))
    config = getattr(transformers, ARCH[arch_id].config_cls).from_pretrained(str(directory))
    config.num_labels = 5
    config.save_pretrained(str(directory))
    return directory


def sharded(zoo: Zoo, arch_id: str, out: Path) -> Path:
    zoo.model(arch_id).save_pretrained(str(out), max_shard_size="20KB")
    assert (out / "model.safetensors.index.json").exists()
    assert not (out / "model.safetensors").exists()
    return out


def bf16_weights(zoo: Zoo, arch_id: str, out: Path) -> Path:
    """dtype never changes the verdict (R30): a bfloat16 file against a float32 config."""
    weights = {
        k: v.to(torch.bfloat16) if v.is_floating_point() else v
        for k, v in load_weights(zoo.saved(arch_id)).items()
    }
    return write_checkpoint(out, weights, zoo.saved(arch_id))


MUTATIONS: dict[str, Mutation] = {
    "roundtrip": roundtrip,
    "drop-key": drop_key,
    "add-key": add_key,
    "module-prefix": wrapper_prefix("module."),
}
VOCAB_MUTATIONS: dict[str, Mutation] = {"vocab-grew": vocab_grew}
LABEL_MUTATIONS: dict[str, Mutation] = {"num-labels": other_num_labels}
SHARDED = ("roberta-seqcls", "llama-lm", "mixtral-lm", "t5", "llava", "vit-imgcls")


def cases() -> Iterator[Any]:
    for arch in ARCHS:
        mutations = dict(MUTATIONS)
        if arch.vocab:
            mutations.update(VOCAB_MUTATIONS)
        if arch.labels:
            mutations.update(LABEL_MUTATIONS)
        if arch.id in SHARDED:
            mutations["sharded"] = sharded
        if arch.id in ("roberta-seqcls", "llama-lm", "mixtral-lm"):
            mutations["bf16"] = bf16_weights
        for name in mutations:
            yield pytest.param(arch.id, name, id=f"{arch.id}-{name}")


def all_mutations() -> dict[str, Mutation]:
    return {
        **MUTATIONS,
        **VOCAB_MUTATIONS,
        **LABEL_MUTATIONS,
        "sharded": sharded,
        "bf16": bf16_weights,
    }


def oracle(directory: Path, architecture: str | None = None) -> LoadVerdict:
    verdict = predict_load(directory / "config.json", signature(directory), architecture)
    assert isinstance(verdict, LoadVerdict), verdict
    return verdict


def compare(directory: Path, cls_name: str, architecture: str | None = None) -> LoadVerdict:
    return compare_with_report(directory, cls_name, architecture)[0]


def compare_with_report(
    directory: Path, cls_name: str, architecture: str | None = None
) -> tuple[LoadVerdict, ReferenceReport]:
    """The oracle's verdict, held equal to the installed transformers' own report, and that report
    (for the cases whose naming changed between minors)."""
    verdict = oracle(directory, architecture)
    real = reference_report(getattr(transformers, cls_name), directory)
    assert_same_verdict(verdict, real, signature(directory), directory_index_keys(directory))
    return verdict, real


def ignores_every_unexpected_key(cls_name: str) -> bool:
    """transformers 4.54 iterates a *string* `_keys_to_ignore_on_load_unexpected` character by
    character, and a `.` among them matches every key: DebertaV2ForMaskedLM's
    `r"mask_predictions.*"` hides every unexpected key from its own report. Read from the installed
    class and judged by its own report, never by version number."""
    patterns = getattr(transformers, cls_name)._keys_to_ignore_on_load_unexpected
    return isinstance(patterns, str) and "." in patterns


@pytest.mark.parametrize(("arch_id", "mutation"), list(cases()))
def test_mutation_matches_from_pretrained(
    zoo: Zoo, tmp_path: Path, arch_id: str, mutation: str
) -> None:
    arch = ARCH[arch_id]
    directory = all_mutations()[mutation](zoo, arch_id, tmp_path / "ckpt")
    verdict, real = compare_with_report(directory, arch.cls)
    assert verdict.architecture == arch.cls and verdict.architecture_source == "config"
    # Where the installed transformers reports no unexpected key at all (its own ignore-list bug),
    # neither can the oracle, and without unexpected keys there is no wrapper prefix to find.
    blind = ignores_every_unexpected_key(arch.cls) and not real.unexpected

    if mutation in ("roundtrip", "sharded", "bf16"):
        assert verdict.is_clean, verdict
    if mutation == "bf16":
        assert verdict.dtype == "float32" and verdict.config_dtype == "float32"
    if mutation == "drop-key":
        assert verdict.missing or verdict.mismatched  # a fused expert key shrinks instead
    if mutation == "add-key":
        assert blind or {"extra_head.weight"} <= {u.file_key for u in verdict.unexpected}
    if mutation == "vocab-grew":
        assert verdict.mismatched
    if mutation == "num-labels":
        assert verdict.mismatched
        assert all(not m.in_base_model for m in verdict.mismatched) == verdict.has_base_model
    if mutation == "module-prefix" and blind:
        assert verdict.wrapper_prefix is None and not verdict.unexpected
        assert len(verdict.missing) >= len(signature(directory)) // 2  # nothing loaded
    elif mutation == "module-prefix":
        wrapper = verdict.wrapper_prefix
        assert wrapper is not None and wrapper.prefix == "module."
        assert wrapper.keys == len(signature(directory))
        assert wrapper.verdict.is_clean, wrapper.verdict
    else:
        assert verdict.wrapper_prefix is None, verdict.wrapper_prefix


# ---------------------------------------------------------------------------------------------
# Checkpoints of one class loaded into another (base <-> head, R13, R22).

CROSS = [
    ("roberta", "roberta-seqcls"),
    ("roberta-seqcls", "roberta"),
    ("roberta", "roberta-mlm"),  # missing lm_head biases; decoder weight tied to the embeddings
    ("roberta-mlm", "roberta-seqcls"),
    ("roberta-seqcls", "roberta-tokcls"),
    ("bert-pretraining", "bert-seqcls"),
    ("bert", "bert-pretraining"),
    ("gpt2", "gpt2-lm"),
    ("gpt2-lm", "gpt2-seqcls"),
    ("llama", "llama-lm"),  # untied: lm_head.weight missing
    ("llama", "llama-lm-tied"),  # tied: clean
    ("llama-lm", "llama-lm-tied"),  # both present with tie_word_embeddings: clean (R22)
    ("llama-lm", "llama"),
    ("llama-lm", "llama-seqcls"),
    ("vit", "vit-imgcls"),
    ("vit-imgcls", "vit"),
    ("bart", "bart-seqcls"),
    ("t5", "t5-encoder"),  # the decoder is ignored (R25)
    ("t5-encoder", "t5"),
    ("xlmr-mlm", "xlmr-seqcls"),
    ("electra-pretraining", "electra-seqcls"),
    ("deberta-v2-mlm", "deberta-v2-seqcls"),
]


@pytest.mark.parametrize(("source", "target"), CROSS, ids=[f"{s}-into-{t}" for s, t in CROSS])
def test_cross_class_matches_from_pretrained(
    zoo: Zoo, tmp_path: Path, source: str, target: str
) -> None:
    directory = write_checkpoint(
        tmp_path / "ckpt", load_weights(zoo.saved(source)), zoo.saved(target)
    )
    verdict = compare(directory, ARCH[target].cls)
    # A base-model prefix difference is resolved by transformers itself: never a wrapper (SD106).
    assert verdict.wrapper_prefix is None


def test_base_checkpoint_into_head_marks_head_keys(zoo: Zoo, tmp_path: Path) -> None:
    directory = write_checkpoint(
        tmp_path / "ckpt", load_weights(zoo.saved("roberta")), zoo.saved("roberta-seqcls")
    )
    verdict, real = compare_with_report(directory, "RobertaForSequenceClassification")
    assert verdict.has_base_model and verdict.base_model_prefix == "roberta"
    assert {m.model_key for m in verdict.missing} == {
        "classifier.dense.weight",
        "classifier.dense.bias",
        "classifier.out_proj.weight",
        "classifier.out_proj.bias",
    }
    assert not any(m.in_base_model for m in verdict.missing)
    # An unexpected key is reported under the file's own name (R13). transformers' name for it is
    # the same from 4.57 on; 4.54 reports it with the `roberta.` prefix it added to every key of a
    # base checkpoint. Whichever the installed version reports, the oracle does.
    pooler = {"pooler.dense.weight", "pooler.dense.bias"}
    assert {u.file_key for u in verdict.unexpected} == pooler
    assert real.unexpected in (frozenset(pooler), frozenset("roberta." + k for k in pooler))
    assert {(u.file_key, u.model_key) for u in verdict.unexpected} == {
        (k.removeprefix("roberta."), k) for k in real.unexpected
    }


def test_num_labels_mismatch_is_outside_the_base_model(zoo: Zoo, tmp_path: Path) -> None:
    directory = other_num_labels(zoo, "roberta-seqcls", tmp_path / "ckpt")
    verdict = compare(directory, "RobertaForSequenceClassification")
    assert {
        (m.model_key, m.checkpoint_shape, m.model_shape, m.in_base_model)
        for m in verdict.mismatched
    } == {
        ("classifier.out_proj.weight", (3, 32), (5, 32), False),
        ("classifier.out_proj.bias", (3,), (5,), False),
    }
    assert {m.file_key for m in verdict.mismatched} == {
        "classifier.out_proj.weight",
        "classifier.out_proj.bias",
    }


def test_vocab_mismatch_is_inside_the_base_model(zoo: Zoo, tmp_path: Path) -> None:
    directory = vocab_grew(zoo, "roberta-seqcls", tmp_path / "ckpt")
    verdict = compare(directory, "RobertaForSequenceClassification")
    assert [(m.model_key, m.checkpoint_shape, m.in_base_model) for m in verdict.mismatched] == [
        ("roberta.embeddings.word_embeddings.weight", (VOCAB + 8, 32), True)
    ]


# ---------------------------------------------------------------------------------------------
# Renaming, prefixes, ties and ignore lists (R12-R14, R22-R25).


def surgery(
    zoo: Zoo, tmp_path: Path, arch_id: str, edit: Callable[[dict[str, Any]], dict[str, Any]]
) -> Path:
    return write_checkpoint(
        tmp_path / "ckpt", edit(load_weights(zoo.saved(arch_id))), zoo.saved(arch_id)
    )


@pytest.mark.parametrize("prefix", ["_orig_mod.", "module._orig_mod."])
def test_compile_and_ddp_prefixes(zoo: Zoo, tmp_path: Path, prefix: str) -> None:
    directory = wrapper_prefix(prefix)(zoo, "llama-lm", tmp_path / "ckpt")
    verdict = compare(directory, "LlamaForCausalLM")
    assert verdict.unexpected and verdict.missing
    assert verdict.wrapper_prefix is not None and verdict.wrapper_prefix.prefix == prefix
    assert verdict.wrapper_prefix.verdict.is_clean


def test_wrapper_prefix_verdict_reports_what_remains(zoo: Zoo, tmp_path: Path) -> None:
    """`module.` on a base checkpoint loaded into a head: after stripping, the head is missing."""
    weights = load_weights(zoo.saved("roberta"))
    directory = write_checkpoint(
        tmp_path / "ckpt",
        {"module." + k: v for k, v in weights.items()},
        zoo.saved("roberta-seqcls"),
    )
    verdict = compare(directory, "RobertaForSequenceClassification")
    assert verdict.wrapper_prefix is not None and verdict.wrapper_prefix.prefix == "module."
    after = verdict.wrapper_prefix.verdict
    stripped = write_checkpoint(tmp_path / "stripped", weights, zoo.saved("roberta-seqcls"))
    assert_same_verdict(
        after,
        reference_report(transformers.RobertaForSequenceClassification, stripped),
        signature(stripped),
    )
    assert after.missing and after.wrapper_prefix is None


def test_doubled_base_prefix_into_base_model_is_a_wrapper(zoo: Zoo, tmp_path: Path) -> None:
    """`roberta.roberta.X` into RobertaModel does not load (R13); stripping one level fixes it."""
    directory = surgery(
        zoo, tmp_path, "roberta", lambda w: {"roberta.roberta." + k: v for k, v in w.items()}
    )
    verdict = compare(directory, "RobertaModel")
    assert verdict.wrapper_prefix is not None and verdict.wrapper_prefix.prefix == "roberta."
    assert verdict.wrapper_prefix.verdict.is_clean


def test_double_model_prefix_into_causal_lm_is_accepted(zoo: Zoo, tmp_path: Path) -> None:
    """`model.model.X` into LlamaForCausalLM: transformers strips one level and loads clean."""
    directory = surgery(
        zoo,
        tmp_path,
        "llama-lm",
        lambda w: {("model." + k if k.startswith("model.") else k): v for k, v in w.items()},
    )
    verdict = compare(directory, "LlamaForCausalLM")
    if V5:  # the per-key prefix strip (R13); 4.x decides the prefix for the whole file
        assert verdict.is_clean and verdict.wrapper_prefix is None


def test_mixed_prefixes_load_clean(zoo: Zoo, tmp_path: Path) -> None:
    directory = surgery(
        zoo,
        tmp_path,
        "roberta-seqcls",
        lambda w: {(k.removeprefix("roberta.") if "layer.0" in k else k): v for k, v in w.items()},
    )
    verdict = compare(directory, "RobertaForSequenceClassification")
    if V5:  # per-key prefixes (R13); 4.x reports the unprefixed keys (design doc §11)
        assert verdict.is_clean and verdict.wrapper_prefix is None


def test_duplicate_after_prefix_strip_is_shadowed(zoo: Zoo, tmp_path: Path) -> None:
    """R14: `norm.weight` and `model.norm.weight` both map to `model.norm.weight`; one is dropped."""

    def edit(w: dict[str, Any]) -> dict[str, Any]:
        return {**w, "norm.weight": torch.ones_like(w["model.norm.weight"])}

    verdict = compare(surgery(zoo, tmp_path, "llama-lm", edit), "LlamaForCausalLM")
    if not V5:  # 4.x strips no prefix from a prefixed file: `norm.weight` is unexpected
        return
    assert verdict.is_clean
    assert [(s.file_key, s.model_key, s.winner) for s in verdict.shadowed] == [
        ("norm.weight", "model.norm.weight", "model.norm.weight")
    ]


def test_duplicate_winner_with_wrong_shape_is_mismatched(zoo: Zoo, tmp_path: Path) -> None:
    def edit(w: dict[str, Any]) -> dict[str, Any]:
        good = w.pop("model.norm.weight")
        return {**w, "model.norm.weight": torch.zeros(good.shape[0] + 1), "norm.weight": good}

    verdict = compare(surgery(zoo, tmp_path, "llama-lm", edit), "LlamaForCausalLM")
    assert [m.file_key for m in verdict.mismatched] == ["model.norm.weight"]


def test_legacy_layernorm_names(zoo: Zoo, tmp_path: Path) -> None:
    def edit(w: dict[str, Any]) -> dict[str, Any]:
        return {
            k.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
                "LayerNorm.bias", "LayerNorm.beta"
            ): v
            for k, v in w.items()
        }

    verdict = compare(surgery(zoo, tmp_path, "bert-seqcls", edit), "BertForSequenceClassification")
    assert verdict.is_clean


def test_persisted_buffers(zoo: Zoo, tmp_path: Path) -> None:
    """Persisted buffers in the file: which are ignored changed between versions (R24, R25; 4.x
    ignores every buffer, 5.0 none, 5.24 `position_ids` only), so the installed version's own
    report is the judge."""

    def edit(w: dict[str, Any]) -> dict[str, Any]:
        return {
            **w,
            "roberta.embeddings.position_ids": torch.arange(64)[None],
            "roberta.embeddings.token_type_ids": torch.zeros(1, 64, dtype=torch.long),
        }

    verdict = compare(
        surgery(zoo, tmp_path, "roberta-seqcls", edit), "RobertaForSequenceClassification"
    )
    assert not verdict.missing and not verdict.mismatched


def test_gpt2_ignore_list_and_masked_bias(zoo: Zoo, tmp_path: Path) -> None:
    """GPT-2's ignore list (R25) is an unanchored regex: `attn.bias` also hides `bias_extra`.
    Which of these stale keys are reported differs between versions; the installed one judges."""

    def edit(w: dict[str, Any]) -> dict[str, Any]:
        return {
            **w,
            "h.0.attn.bias": torch.zeros(1, 1, 64, 64),
            "h.0.attn.masked_bias": torch.zeros(()),
            "h.0.attn.c_attn.bias_extra": torch.zeros(3),
        }

    verdict = compare(surgery(zoo, tmp_path, "gpt2-lm", edit), "GPT2LMHeadModel")
    assert not verdict.missing and not verdict.mismatched


def test_only_lm_head_present_ties_the_other_way(zoo: Zoo, tmp_path: Path) -> None:
    """R22: the tied target present and the source absent: swapped, clean."""

    def edit(w: dict[str, Any]) -> dict[str, Any]:
        embeddings = w.pop("transformer.wte.weight")
        return {**w, "lm_head.weight": embeddings}

    assert compare(surgery(zoo, tmp_path, "gpt2-lm", edit), "GPT2LMHeadModel").is_clean


def test_untied_config_needs_lm_head(zoo: Zoo, tmp_path: Path) -> None:
    directory = write_checkpoint(
        tmp_path / "ckpt", load_weights(zoo.saved("gpt2-lm")), zoo.saved("gpt2-lm")
    )
    edit_config(directory, tie_word_embeddings=False)
    verdict = compare(directory, "GPT2LMHeadModel")
    assert [(m.model_key, m.in_base_model) for m in verdict.missing] == [("lm_head.weight", False)]


def test_bart_ignored_and_mismatched_final_logits_bias(zoo: Zoo, tmp_path: Path) -> None:
    def edit(w: dict[str, Any]) -> dict[str, Any]:
        return {
            **{k: v for k, v in w.items() if k != "final_logits_bias"},
            "encoder.version": torch.zeros(1),
        }

    assert compare(surgery(zoo, tmp_path, "bart", edit), "BartForConditionalGeneration").is_clean

    def wrong(w: dict[str, Any]) -> dict[str, Any]:
        return {**w, "final_logits_bias": torch.zeros(1, VOCAB + 1)}

    verdict = compare(surgery(zoo, tmp_path / "2", "bart", wrong), "BartForConditionalGeneration")
    assert [m.model_key for m in verdict.mismatched] == ["final_logits_bias"]


# ---------------------------------------------------------------------------------------------
# Mixture of experts: converter ops on meta tensors (R15-R20).


def test_moe_fewer_layers_reports_fused_names(zoo: Zoo, tmp_path: Path) -> None:
    directory = write_checkpoint(
        tmp_path / "ckpt", load_weights(zoo.saved("mixtral-lm")), zoo.saved("mixtral-lm")
    )
    edit_config(directory, num_hidden_layers=1)
    verdict = compare(directory, "MixtralForCausalLM")
    if not V5:  # 4.x keeps experts one by one: no fused names
        return
    assert "model.layers.1.mlp.experts.gate_up_proj" in verdict.unexpected_keys
    # ... each reported under the legacy file names that produced it
    files = {
        u.file_key
        for u in verdict.unexpected
        if u.model_key == "model.layers.1.mlp.experts.gate_up_proj"
    }
    assert files == {
        f"model.layers.1.block_sparse_moe.experts.{e}.{w}.weight"
        for e in range(4)
        for w in ("w1", "w3")
    }


def test_moe_missing_expert_is_a_fused_mismatch(zoo: Zoo, tmp_path: Path) -> None:
    def edit(w: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in w.items() if "layers.0.block_sparse_moe.experts.3." not in k}

    verdict = compare(surgery(zoo, tmp_path, "mixtral-lm", edit), "MixtralForCausalLM")
    if not V5:  # 4.x: the expert's own keys are missing
        assert verdict.missing
        return
    shapes = {
        m.model_key: (m.checkpoint_shape[0], m.model_shape[0], m.file_key)
        for m in verdict.mismatched
    }
    assert shapes == {
        "model.layers.0.mlp.experts.gate_up_proj": (3, 4, None),
        "model.layers.0.mlp.experts.down_proj": (3, 4, None),
    }


@pytest.mark.parametrize(
    ("arch_id", "cls_name", "dropped"),
    [
        ("mixtral-lm", "MixtralForCausalLM", "model.layers.0.block_sparse_moe.experts.1.w1.weight"),
        ("qwen3-moe-lm", "Qwen3MoeForCausalLM", "model.layers.1.mlp.experts.2.gate_proj.weight"),
    ],
)
def test_moe_partial_expert_is_a_conversion_error(
    zoo: Zoo, tmp_path: Path, arch_id: str, cls_name: str, dropped: str
) -> None:
    def edit(w: dict[str, Any]) -> dict[str, Any]:
        assert dropped in w
        return {k: v for k, v in w.items() if k != dropped}

    verdict = compare(surgery(zoo, tmp_path, arch_id, edit), cls_name)
    if not V5:  # 4.x has no converter: the one weight is missing
        assert [m.model_key for m in verdict.missing] == [dropped]
        return
    assert len(verdict.conversion_errors) == 1
    error = verdict.conversion_errors[0]
    assert "Traceback" not in error.message and error.model_key in error.message


def test_moe_expert_with_wrong_shape_is_a_conversion_error(zoo: Zoo, tmp_path: Path) -> None:
    key = "model.layers.0.block_sparse_moe.experts.2.w2.weight"

    def edit(w: dict[str, Any]) -> dict[str, Any]:
        return {**w, key: torch.zeros(w[key].shape[0], w[key].shape[1] + 1)}

    verdict = compare(surgery(zoo, tmp_path, "mixtral-lm", edit), "MixtralForCausalLM")
    if not V5:  # 4.x has no converter: a plain shape mismatch
        assert [m.file_key for m in verdict.mismatched] == [key]
        return
    assert [c.model_key for c in verdict.conversion_errors] == [
        "model.layers.0.mlp.experts.down_proj"
    ]


# ---------------------------------------------------------------------------------------------
# A shard index that disagrees with its shards (R3; design doc §11): 5.x loads the keys in the
# shard headers, 4.x the keys the index names. The oracle follows the installed version.


def edit_index(directory: Path, edit: Callable[[dict[str, str]], object]) -> None:
    path = directory / "model.safetensors.index.json"
    index = json.loads(path.read_text())
    edit(index["weight_map"])
    path.write_text(json.dumps(index))


def drop_from_shard(directory: Path, key: str) -> None:
    """Remove `key` from the shard holding it, leaving the index as it is."""
    shard = (
        directory
        / json.loads((directory / "model.safetensors.index.json").read_text())["weight_map"][key]
    )
    tensors = safetensors_torch.load_file(str(shard))
    del tensors[key]
    safetensors_torch.save_file(tensors, str(shard), metadata={"format": "pt"})


def index_lists_absent_key(directory: Path, key: str) -> None:
    drop_from_shard(directory, key)


def shard_key_not_indexed(directory: Path, key: str) -> None:
    edit_index(directory, lambda weight_map: weight_map.pop(key))


def ghost_key_in_index(directory: Path, key: str) -> None:
    edit_index(directory, lambda weight_map: weight_map.update({"ghost.weight": weight_map[key]}))


INDEX_EDITS = {
    "index-lists-absent-key": index_lists_absent_key,
    "shard-key-not-indexed": shard_key_not_indexed,
    "ghost-key-in-index": ghost_key_in_index,
}


@pytest.mark.parametrize("edit", list(INDEX_EDITS))
@pytest.mark.parametrize("arch_id", ["roberta-seqcls", "llama-lm"])
def test_index_that_disagrees_with_its_shards(
    zoo: Zoo, tmp_path: Path, arch_id: str, edit: str
) -> None:
    directory = sharded(zoo, arch_id, tmp_path / "ckpt")
    index_path = directory / "model.safetensors.index.json"
    weight_map = json.loads(index_path.read_text())["weight_map"]
    shards = Counter(weight_map.values())
    # A key sharing its shard, so the shard is still read when the index drops the key.
    key = next(k for k in sorted(weight_map) if shards[weight_map[k]] > 1)
    INDEX_EDITS[edit](directory, key)
    verdict = compare(directory, ARCH[arch_id].cls)
    index_keys = set(json.loads(index_path.read_text())["weight_map"])
    shard_keys = set(signature(directory))
    assert index_keys != shard_keys
    if edit == "ghost-key-in-index":
        # 4.x: a key only the index names is a checkpoint key (unexpected); 5.x never sees it.
        assert ("ghost.weight" in {u.file_key for u in verdict.unexpected}) == (not V5)
    else:
        # The key is in the index xor in the shards: 5.x misses it where the shards lack it, 4.x
        # where the index lacks it (and never loads the shard's copy).
        assert (key in index_keys) != (key in shard_keys)
        assert (key in verdict.missing_keys) == (key not in (shard_keys if V5 else index_keys))
        assert not verdict.unexpected


# A key in two shards (SD004 reports it): 5.x merges the shards and loads the later copy; 4.x
# compares every copy with the model, reports a mismatch for each copy of another shape, and then
# loads neither. Each installed version is judged by its own report.

COPY_SHAPES = {  # which copy has another shape than the model's: (earlier shard, later shard)
    "neither": (False, False),
    "earlier": (True, False),
    "later": (False, True),
    "both": (True, True),
}


@pytest.mark.parametrize("wrong", list(COPY_SHAPES))
def test_key_in_two_shards(zoo: Zoo, tmp_path: Path, wrong: str) -> None:
    directory = sharded(zoo, "roberta-seqcls", tmp_path / "ckpt")
    weight_map = json.loads((directory / "model.safetensors.index.json").read_text())["weight_map"]
    first = sorted(set(weight_map.values()))[0]
    key = "classifier.out_proj.weight"
    later = weight_map[key]
    assert later != first
    good = safetensors_torch.load_file(str(directory / later))[key]
    wrong_earlier, wrong_later = COPY_SHAPES[wrong]
    # The two wrong copies differ from each other too, so 4.x reports both.
    copies = {
        first: torch.zeros(good.shape[0] + 2, good.shape[1]) if wrong_earlier else good,
        later: torch.zeros(good.shape[0] + 4, good.shape[1]) if wrong_later else good,
    }
    for shard, copy in copies.items():
        tensors = safetensors_torch.load_file(str(directory / shard))
        tensors[key] = copy
        safetensors_torch.save_file(tensors, str(directory / shard), metadata={"format": "pt"})
    assert signature(directory)[key].earlier == (TensorSpec("F32", tuple(copies[first].shape)),)

    verdict, real = compare_with_report(directory, "RobertaForSequenceClassification")
    shapes = {m.checkpoint_shape for m in verdict.mismatched}
    if wrong_later:
        assert tuple(copies[later].shape) in shapes
    if wrong == "neither":
        assert verdict.is_clean
    # The earlier copy counts where the installed version compares it (4.x), by its own report.
    assert (tuple(copies[first].shape) in shapes) == (
        wrong_earlier and (key, tuple(copies[first].shape), tuple(good.shape)) in real.mismatched
    )
    assert all(m.file_key == key for m in verdict.mismatched)
    # Each mismatch says which copy it is about (an earlier one only where that is compared), so
    # the finding names the shard that holds it.
    copy_shapes = {0: tuple(copies[first].shape), None: tuple(copies[later].shape)}
    assert all(copy_shapes[m.earlier_copy] == m.checkpoint_shape for m in verdict.mismatched)


@pytest.mark.skipif(
    V5,
    reason="4.x only: transformers 5.x loads only the later shard's copy of a key and can load "
    "F8_E8M0, so an earlier copy's dtype never fails its load (test_a_finding_about_a_shard_"
    "copy_names_its_shard holds 5.x to a clean verdict)",
)
@pytest.mark.parametrize("unloadable", ["earlier", "later", "both"])
def test_shard_copy_in_a_dtype_4x_cannot_load(zoo: Zoo, tmp_path: Path, unloadable: str) -> None:
    """4.x loads every shard whole (`load_state_dict`): a copy in a dtype it has no torch name for
    fails the load in whichever shard it is, also the earlier copy of a key in two shards."""
    directory = sharded(zoo, "roberta-seqcls", tmp_path / "ckpt")
    weight_map = json.loads((directory / "model.safetensors.index.json").read_text())["weight_map"]
    key = "classifier.out_proj.weight"
    first, later = sorted(set(weight_map.values()))[0], weight_map[key]
    assert later != first
    good = safetensors_torch.load_file(str(directory / later))[key]
    for shard, which in ((first, "earlier"), (later, "later")):
        tensors = safetensors_torch.load_file(str(directory / shard))
        tensors[key] = good.to(torch.float8_e8m0fnu) if unloadable in (which, "both") else good
        safetensors_torch.save_file(tensors, str(directory / shard), metadata={"format": "pt"})

    verdict = oracle(directory)
    copies: dict[str, list[int | None]] = {"earlier": [0], "later": [None], "both": [0, None]}
    expected = copies[unloadable]
    assert [(c.model_key, c.file_keys) for c in verdict.conversion_errors] == [(key, (key,))] * len(
        expected
    )
    assert [c.earlier_copy for c in verdict.conversion_errors] == expected
    assert all("F8_E8M0" in c.message for c in verdict.conversion_errors)
    with pytest.raises(ValueError, match="F8_E8M0"):
        transformers.RobertaForSequenceClassification.from_pretrained(
            str(directory), ignore_mismatched_sizes=True
        )


# ---------------------------------------------------------------------------------------------
# Class resolution (R9, R31, R33).


def test_architecture_argument_overrides_config(zoo: Zoo, tmp_path: Path) -> None:
    directory = write_checkpoint(
        tmp_path / "ckpt", load_weights(zoo.saved("roberta")), zoo.saved("roberta")
    )
    verdict = compare(
        directory, "RobertaForTokenClassification", architecture="RobertaForTokenClassification"
    )
    assert verdict.architecture_source == "argument" and verdict.missing


def test_no_architectures_uses_the_base_model_class(zoo: Zoo, tmp_path: Path) -> None:
    directory = write_checkpoint(
        tmp_path / "ckpt", load_weights(zoo.saved("roberta-seqcls")), zoo.saved("roberta-seqcls")
    )
    document = json.loads((directory / "config.json").read_text())
    del document["architectures"]
    (directory / "config.json").write_text(json.dumps(document))
    verdict = compare(directory, "RobertaModel")
    assert verdict.architecture == "RobertaModel" and verdict.architecture_source == "model_type"
    assert verdict.notes


def test_unknown_architecture_name_falls_back_to_the_same_task(zoo: Zoo, tmp_path: Path) -> None:
    directory = write_checkpoint(
        tmp_path / "ckpt", load_weights(zoo.saved("llama-lm")), zoo.saved("llama-lm")
    )
    edit_config(directory, architectures=["MyOwnLlamaForCausalLM"])
    verdict = compare(directory, "LlamaForCausalLM")
    assert (
        verdict.architecture == "LlamaForCausalLM" and verdict.architecture_source == "config-task"
    )


def test_class_and_model_type_may_disagree(zoo: Zoo, tmp_path: Path) -> None:
    """R9: LlamaForCausalLM on a `mistral` config loads clean (with a warning)."""
    directory = write_checkpoint(
        tmp_path / "ckpt", load_weights(zoo.saved("mistral-lm")), zoo.saved("mistral-lm")
    )
    verdict = compare(directory, "LlamaForCausalLM", architecture="LlamaForCausalLM")
    assert verdict.is_clean


@pytest.mark.parametrize("auto_map", [False, True], ids=["plain", "with-auto-map"])
def test_exported_architecture_beats_an_unknown_model_type(
    zoo: Zoo, tmp_path: Path, auto_map: bool
) -> None:
    """R9/R31: from_pretrained on the class named by architectures[0] reads config.json with that
    class's own config class, whatever `model_type` says (4.57 saves `emu3_text_model` for
    Emu3ForCausalLM, a type its CONFIG_MAPPING lacks). An `auto_map` is not followed either
    without trust_remote_code."""
    directory = write_checkpoint(
        tmp_path / "ckpt", load_weights(zoo.saved("llama-lm")), zoo.saved("llama-lm")
    )
    changes: dict[str, Any] = {"model_type": "sdlint_unknown_type"}
    if auto_map:
        changes["auto_map"] = {"AutoModelForCausalLM": "modeling_custom.LlamaForCausalLM"}
    edit_config(directory, **changes)
    verdict = compare(directory, "LlamaForCausalLM")
    assert verdict.is_clean and verdict.architecture_source == "config"
    assert any("sdlint_unknown_type" in note for note in verdict.notes)
    assert any("auto_map" in note for note in verdict.notes) == auto_map


def test_config_with_a_tagged_special_float(zoo: Zoo, tmp_path: Path) -> None:
    """5.x writes a non-finite float as `{"__float__": "Infinity"}` (FalconH1's default
    `time_step_limit`) and decodes it when it reads config.json; a config class that validates
    its fields (5.12 on) refuses the undecoded object. Judged by the installed version's report."""
    directory = write_checkpoint(
        tmp_path / "ckpt", load_weights(zoo.saved("llama-lm")), zoo.saved("llama-lm")
    )
    edit_config(directory, rms_norm_eps={"__float__": "Infinity"})
    verdict = compare(directory, "LlamaForCausalLM")
    assert verdict.is_clean


def test_text_sub_config_class_extracts_text_config(zoo: Zoo, tmp_path: Path) -> None:
    """R33: a class whose config_class is the text sub-config reads `text_config` of a VLM config."""
    # v5 saves the legacy layout (R16): the language model is under `language_model.model.`
    prefix = "language_model.model."
    weights = {
        k.removeprefix(prefix): v
        for k, v in load_weights(zoo.saved("llava")).items()
        if k.startswith(prefix)
    }
    assert len(weights) > 10
    directory = write_checkpoint(tmp_path / "ckpt", weights, zoo.saved("llava"))
    verdict = compare(directory, "LlamaModel", architecture="LlamaModel")
    assert verdict.is_clean


def test_problem_is_not_a_verdict(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "roberta",
                "architectures": ["RobertaModel"],
                "hidden_size": 30,
                "num_attention_heads": 4,
            }
        )
    )
    result = predict_load(tmp_path / "config.json", {"x": TensorSpec("F32", (1,))})
    assert isinstance(result, ConfigProblem)


def test_each_variant_matches_from_pretrained_with_that_variant(zoo: Zoo, tmp_path: Path) -> None:
    """One folder, three checkpoints, as `save_pretrained(variant=...)` names them: a clean fp16
    variant in shards (model.safetensors.index.fp16.json), an `ema` variant of torch.save shards
    lacking a tensor (pytorch_model.bin.index.ema.json), and a plain model.safetensors of the base
    model. Each verdict equals `from_pretrained(directory, variant=...)`'s report."""
    from huggingface_hub import save_torch_state_dict

    directory = tmp_path / "ckpt"
    model = zoo.model("roberta-seqcls")
    model.save_pretrained(directory, variant="fp16", max_shard_size="20KB")
    weights = load_weights(zoo.saved("roberta-seqcls"))
    dropped = "roberta.encoder.layer.1.output.dense.bias"
    save_torch_state_dict(
        {k: v.contiguous() for k, v in weights.items() if k != dropped},
        directory,
        filename_pattern="pytorch_model.ema{suffix}.bin",
        safe_serialization=False,
        max_shard_size=20_000,
    )
    (directory / "pytorch_model.ema.bin.index.json").rename(
        directory / "pytorch_model.bin.index.ema.json"
    )
    write_checkpoint(directory, load_weights(zoo.saved("roberta")), zoo.saved("roberta-seqcls"))
    assert len(list(directory.glob("model.fp16-*.safetensors"))) > 1
    assert len(list(directory.glob("pytorch_model.ema-*.bin"))) > 1
    config = read_config(directory / "config.json")
    verdicts: dict[str | None, LoadVerdict] = {}
    for variant in (None, "fp16", "ema"):
        tensors = signature(directory, variant)
        index_keys = directory_index_keys(directory, variant)
        verdict = predict_from_config(config, tensors, index_keys=index_keys)
        assert isinstance(verdict, LoadVerdict), verdict
        real = reference_report(transformers.RobertaForSequenceClassification, directory, variant)
        assert_same_verdict(verdict, real, tensors, index_keys)
        verdicts[variant] = verdict
    assert verdicts["fp16"].is_clean
    assert verdicts["ema"].missing_keys == {dropped}
    assert {k.split(".")[0] for k in verdicts[None].missing_keys} == {"classifier"}
