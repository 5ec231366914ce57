"""PEFT adapters end to end through `sdlint check`: adapters saved by peft onto tiny base models,
then mutated; each finding under its code (SD101, SD103, SD104, SD107, SD110-SD112), or a skip
note. The CLI's text output is held to exact snapshots, one or more per rule."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import run
from tests.peft_adapters import CAUSAL, edit_adapter_config, peft_config, save_adapter, save_base
from tests.safetensors_files import header_for, write_raw
from tests.tiny_models import edit_config, edit_weights


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-label RoBERTa classifier base and its LoRA fine-tune (`modules_to_save` head)."""
    pytest.importorskip("peft")
    root = tmp_path_factory.mktemp("saved")
    save_base(root / "base", num_labels=2)
    save_adapter(root / "adapter", root / "base", peft_config("lora"))
    edit_adapter_config(root / "adapter", base_model_name_or_path="base")
    return root


@pytest.fixture
def project(saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the base and adapter folders, the working directory."""
    shutil.copytree(saved, tmp_path / "p")
    monkeypatch.chdir(tmp_path / "p")
    return tmp_path / "p"


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    code, out, _ = run(capsys, "check", "adapter", "--output-format", "json", *argv)
    return code, json.loads(out)


def codes(diagnostics: list[dict[str, Any]]) -> list[str]:
    return sorted(d["code"] for d in diagnostics)


pytestmark = pytest.mark.model


def line_of(path: Path, key: str) -> int:
    """The line of `"key":` in a JSON file written with one key per line (0: not there)."""
    return next((i for i, row in enumerate(path.open(), 1) if f'"{key}"' in row), 0)


def five_labels(project: Path) -> None:
    edit_config(project / "base" / "config.json", id2label={str(i): f"L{i}" for i in range(5)})


def drop_and_add(project: Path) -> None:
    import torch

    def edit(t: dict[str, Any]) -> dict[str, Any]:
        del t["base_model.model.roberta.encoder.layer.0.attention.self.value.lora_B.weight"]
        return {**t, "base_model.model.roberta.pooler.lora_A.weight": torch.ones(4, 32)}

    edit_weights(project / "adapter" / "adapter_model.safetensors", edit)


def rank_8(project: Path) -> None:
    edit_adapter_config(project / "adapter", r=8)


def llama_targets(project: Path) -> None:
    edit_adapter_config(project / "adapter", target_modules=["query", "value", "q_proj"])


def only_llama_targets(project: Path) -> None:
    edit_adapter_config(project / "adapter", target_modules=["q_proj", "v_proj"])


def zero3(project: Path) -> None:
    import torch

    path = project / "adapter" / "adapter_model.safetensors"
    edit_weights(path, lambda t: {k: torch.empty(0) for k in t})


def unknown_peft_type(project: Path) -> None:
    edit_adapter_config(project / "adapter", peft_type="NOPE")


def unknown_base_model_type(project: Path) -> None:
    edit_config(project / "base" / "config.json", model_type="nope", architectures=["NopeModel"])


def quantized_base(project: Path) -> None:
    edit_config(project / "base" / "config.json", quantization_config={"quant_method": "bnb"})


HEAD = "base_model.model.classifier.out_proj"
LAYER = "base_model.model.roberta.encoder.layer"
NO_TARGET = (
    "NoMatchingPeftModuleError: No modules were targeted for adaptation. This might be caused by a "
    "combination of mismatched target modules and excluded modules. Please check your "
    "`target_modules` and `exclude_modules` configuration. You may also have only targeted modules "
    "that are marked to be saved (`modules_to_save`)."
)


def rank_lines() -> str:
    out = ""
    for layer in (0, 1):
        for module in ("query", "value"):
            key = f"{LAYER}.{layer}.attention.self.{module}"
            out += (
                f"adapter/adapter_model.safetensors:1:1: SD110 `{key}.lora_A.weight`: rank 4 in "
                "the adapter, adapter_config.json has r=8 (adapter [4, 32], peft builds [8, 32]); "
                "PeftModel.from_pretrained refuses to load it\n"
                f"adapter/adapter_model.safetensors:1:1: SD110 `{key}.lora_B.weight`: rank 4 in "
                "the adapter, adapter_config.json has r=8 (adapter [32, 4], peft builds [32, 8]); "
                "PeftModel.from_pretrained refuses to load it\n"
            )
    return out


SNAPSHOTS: list[tuple[str, Callable[[Path], None], int, str]] = [
    ("clean", lambda project: None, 0, "All checks passed (1 file checked).\n"),
    (
        "SD101-lora-classifier-num-labels",
        five_labels,
        1,
        f"adapter/adapter_model.safetensors:1:1: SD101 `{HEAD}.bias`: the adapter's `modules_to_save` head has 2 labels, the base config has num_labels=5 (adapter [2], model [5]); PeftModel.from_pretrained refuses to load it: set num_labels=2 (with matching id2label/label2id) in base/config.json, the config the base model is loaded with, to use the trained head\n"
        f"adapter/adapter_model.safetensors:1:1: SD101 `{HEAD}.weight`: the adapter's `modules_to_save` head has 2 labels, the base config has num_labels=5 (adapter [2, 32], model [5, 32]); PeftModel.from_pretrained refuses to load it: set num_labels=2 (with matching id2label/label2id) in base/config.json, the config the base model is loaded with, to use the trained head\n"
        "Found 2 problems (2 errors) in 1 file.\n",
    ),
    (
        "SD103-SD104",
        drop_and_add,
        1,
        f"adapter/adapter_model.safetensors:1:1: SD103 `{LAYER}.0.attention.self.value.lora_B.weight` is not in the adapter: peft expects it for the LORA adapter on RobertaForSequenceClassification ([32, 4]); PeftModel.from_pretrained leaves it as initialized and only warns (an adapter that is partly untrained)\n"
        "adapter/adapter_model.safetensors:1:1: SD104 `base_model.model.roberta.pooler.lora_A.weight` is in the adapter, but the LORA adapter peft builds on RobertaForSequenceClassification has no such tensor: PeftModel.from_pretrained ignores it\n"
        "Found 2 problems (2 errors) in 1 file.\n"
        "No fixes available (1 hidden fix can be enabled with `--unsafe-fixes`).\n",
    ),
    (
        "SD107-adapter-config",
        unknown_peft_type,
        1,
        "adapter/adapter_config.json:1:1: SD107 adapter_config.json: peft_type 'NOPE' is unknown to peft {peft}. Fix `peft_type`, or upgrade peft.\n"
        "Found 1 problem (1 error) in 1 file.\n",
    ),
    (
        "SD107-base-config",
        unknown_base_model_type,
        1,
        "base/config.json:{model_type_line}:3: SD107 the base model of adapter/adapter_model.safetensors: model_type 'nope' is unknown to transformers {transformers}: no config class can read it. Fix `model_type`, upgrade transformers, or pass --architecture.\n"
        "Found 1 problem (1 error) in 1 file.\n",
    ),
    (
        "SD107-quantized-base-is-info",
        quantized_base,
        0,
        "base/config.json:{quantization_config_line}:3: SD107 the base model of adapter/adapter_model.safetensors: config.json has a `quantization_config`: quantization replaces the modules an adapter attaches to, which sdlint does not model, so the adapter checks are skipped.\n"
        "Found 1 problem (1 info) in 1 file.\n",
    ),
    ("SD110", rank_8, 1, rank_lines() + "Found 8 problems (8 errors) in 1 file.\n"),
    (
        "SD111",
        llama_targets,
        1,
        "adapter/adapter_config.json:{target_modules_line}:3: SD111 `target_modules` names `q_proj`, which RobertaForSequenceClassification has no module of; peft adapts only the other targets\n"
        "Found 1 problem (1 error) in 1 file.\n",
    ),
    (
        "SD111-no-target-at-all",
        only_llama_targets,
        1,
        "adapter/adapter_config.json:{target_modules_line}:3: SD111 `target_modules` names `q_proj`, which RobertaForSequenceClassification has no module of; no target exists, so PeftModel.from_pretrained refuses the adapter ("
        + NO_TARGET
        + ")\n"
        "adapter/adapter_config.json:{target_modules_line}:3: SD111 `target_modules` names `v_proj`, which RobertaForSequenceClassification has no module of; no target exists, so PeftModel.from_pretrained refuses the adapter ("
        + NO_TARGET
        + ")\n"
        "Found 2 problems (2 errors) in 1 file.\n",
    ),
    (
        "SD112",
        zero3,
        1,
        "adapter/adapter_model.safetensors:1:1: SD112 12 of 12 tensors have no elements (e.g. `base_model.model.classifier.dense.bias` [0]): a DeepSpeed ZeRO-3 save that did not gather the parameters; save again with the parameters gathered\n"
        "Found 1 problem (1 error) in 1 file.\n",
    ),
]


@pytest.mark.parametrize(
    ("name", "mutate", "code", "expected"), SNAPSHOTS, ids=[s[0] for s in SNAPSHOTS]
)
def test_adapter_rule_output(
    name: str,
    mutate: Callable[[Path], None],
    code: int,
    expected: str,
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import peft
    import transformers

    mutate(project)
    expected = expected.format(
        peft=peft.__version__,
        transformers=transformers.__version__,
        model_type_line=line_of(project / "base" / "config.json", "model_type"),
        quantization_config_line=line_of(project / "base" / "config.json", "quantization_config"),
        target_modules_line=line_of(project / "adapter" / "adapter_config.json", "target_modules"),
    )
    assert run(capsys, "check", "adapter") == (code, expected, "")
    # a warm run (the verdict cached on disk) says exactly the same
    assert run(capsys, "check", "adapter") == (code, expected, "")


def test_clean_adapter(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(capsys) == (0, [])


def test_lora_classifier_with_wrong_num_labels_is_sd101(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed's mismatch in LoRA form: the 2-label fine-tune against a 5-label base config."""
    edit_config(project / "base" / "config.json", id2label={str(i): f"L{i}" for i in range(5)})
    code, diagnostics = check(capsys)
    assert code == 1 and codes(diagnostics) == ["SD101", "SD101"]
    weight = next(d for d in diagnostics if d["tensor"].endswith("out_proj.weight"))
    assert "has 2 labels, the base config has num_labels=5" in weight["message"]
    assert weight["expected"] == [5, 32] and weight["actual"] == [2, 32]


def test_model_config_option_names_the_base(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = project / "other"
    shutil.copytree(project / "base", other)
    edit_config(other / "config.json", id2label={str(i): f"L{i}" for i in range(3)})
    _, diagnostics = check(capsys, "--model-config", "other/config.json")
    assert codes(diagnostics) == ["SD101", "SD101"]


def test_missing_and_unexpected_adapter_tensors(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    dropped = "base_model.model.roberta.encoder.layer.0.attention.self.value.lora_B.weight"
    extra = "base_model.model.roberta.pooler.lora_A.weight"

    def edit(t: dict[str, Any]) -> dict[str, Any]:
        del t[dropped]
        return {**t, extra: torch.ones(4, 32)}

    edit_weights(project / "adapter" / "adapter_model.safetensors", edit)
    code, diagnostics = check(capsys)
    assert code == 1
    assert [(d["code"], d["tensor"]) for d in diagnostics] == [("SD103", dropped), ("SD104", extra)]


def test_rank_disagreeing_with_r_is_sd110(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_adapter_config(project / "adapter", r=8)
    code, diagnostics = check(capsys)
    assert code == 1 and codes(diagnostics) == ["SD110"] * 8
    lora_a = next(d for d in diagnostics if ".query.lora_A." in d["tensor"])
    assert "rank 4 in the adapter, adapter_config.json has r=8" in lora_a["message"]


def test_lora_for_another_base_width_is_sd110(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_config(project / "base" / "config.json", hidden_size=48, intermediate_size=96)
    _, diagnostics = check(capsys, "--select", "SD110")
    lora_a = next(d for d in diagnostics if ".query.lora_A." in d["tensor"])
    assert "32 input features in the adapter, the base module has 48" in lora_a["message"]


def test_target_module_the_base_lacks_is_sd111(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_adapter_config(project / "adapter", target_modules=["query", "value", "q_proj"])
    code, diagnostics = check(capsys)
    assert code == 1 and codes(diagnostics) == ["SD111"]
    (finding,) = diagnostics
    assert finding["path"] == "adapter/adapter_config.json" and "`q_proj`" in finding["message"]
    _, text, _ = run(capsys, "check", "adapter")
    position = next(
        i
        for i, row in enumerate((project / "adapter" / "adapter_config.json").open(), 1)
        if '"target_modules"' in row
    )
    assert text.startswith(f"adapter/adapter_config.json:{position}:")  # at the key


def test_zero3_save_is_sd112_without_a_base(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ZeRO-3 save that gathered nothing; the rule needs neither a base config nor peft."""
    edit_adapter_config(project / "adapter", base_model_name_or_path="org/not-local")
    path = project / "adapter" / "adapter_model.safetensors"
    header, size = header_for({"base_model.model.classifier.dense.bias": ("F32", (0,))})
    write_raw(path, header, b"\0" * size)
    _, diagnostics = check(capsys)
    assert codes(diagnostics) == ["SD112"]  # no local base config: no model checks, no note


def test_without_peft_a_skip_note(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without peft the adapter gets the integrity rules and a note; SD108 when required."""
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` raises ImportError
    code, out, _ = run(capsys, "check", "adapter", "--no-cache")
    assert code == 0
    assert out.startswith(
        "note: model checks skipped for 1 checkpoint: the adapter checks need peft, torch and "
        "transformers; install them with `pip install 'sdlint[peft]'` "
        "(adapter/adapter_model.safetensors)\n"
    )
    code, diagnostics = check(capsys, "--no-cache", "--model-checks=required")
    assert code == 1 and codes(diagnostics) == ["SD108"]


def test_without_a_local_base_config_a_skip_note(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Hub base model is never downloaded: no finding, a note (SD108 when required)."""
    edit_adapter_config(project / "adapter", base_model_name_or_path="FacebookAI/roberta-base")
    code, out, _ = run(capsys, "check", "adapter")
    assert code == 0
    assert out.startswith(
        "note: model checks skipped for 1 checkpoint: a PEFT adapter whose base model config.json "
        "is not local (sdlint never downloads it); pass --model-config with the base model's "
        "config.json (adapter/adapter_config.json: base_model_name_or_path is "
        "'FacebookAI/roberta-base')\n"
    )
    code, diagnostics = check(capsys, "--model-checks=required")
    assert code == 1 and codes(diagnostics) == ["SD108"]


def test_adapter_is_not_checked_as_the_config_beside_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config.json beside the adapter (the base's) does not make its tensors the model's."""
    shutil.copy(project / "base" / "config.json", project / "adapter" / "config.json")
    assert check(capsys) == (0, [])


def test_verdict_is_cached(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second run answers from the cache: it would fail if it built the adapter again."""
    edit_config(project / "base" / "config.json", id2label={str(i): f"L{i}" for i in range(4)})
    _, first = check(capsys)
    import sdlint.model.peft

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("built again")

    monkeypatch.setattr(sdlint.model.peft, "predict_adapter", fail)
    _, second = check(capsys)
    assert second == first and codes(first) == ["SD101", "SD101"]
    _, light = check(capsys, "--model-checks=cached")
    assert light == first


def test_unwritable_cache_is_one_note_and_the_uncached_answer(
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A read-only verdict cache: the adapter's findings are those of an uncached run, and the run
    says once that nothing is cached (as for a model's verdict), nothing recorded in its name."""
    import errno
    import os
    from unittest.mock import Mock

    five_labels(project)
    code, uncached, _ = run(capsys, "check", "adapter", "--no-cache")
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    monkeypatch.setenv("SDLINT_CACHE_DIR", str(cache_dir))
    refuse = OSError(errno.EROFS, os.strerror(errno.EROFS))
    monkeypatch.setattr("tempfile.mkstemp", Mock(side_effect=refuse))  # root ignores file modes
    again, out, _ = run(capsys, "check", "adapter")
    note = (
        f"note: the verdict cache {cache_dir} cannot be written ({os.strerror(errno.EROFS)}): "
        "model verdicts are not cached, so later runs build them again\n"
    )
    assert (again, out.count(note)) == (code, 1) and code == 1
    assert out.replace(note, "") == uncached
    assert not [p for p in cache_dir.rglob("*") if p.is_file()]


def test_recorded_adapter_verdicts_are_read_in_cached_mode(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--record-verdicts` records an adapter's verdict as a model's; the light hook's
    `--model-checks=cached` with `--verdicts` reads it with a cold cache."""
    five_labels(project)
    code, out, err = run(capsys, "check", "--record-verdicts", "shared", "adapter")
    assert code == 1 and out.count(" SD101 ") == 2
    assert "Recorded 1 verdicts in shared" in err
    (entry,) = Path("shared").rglob("*.json")
    assert str(project) not in entry.read_text()  # no local paths

    monkeypatch.setenv("SDLINT_CACHE_DIR", str(project / "cold"))
    code, out, _ = run(capsys, "check", "--model-checks=cached", "adapter")
    assert code == 0
    assert "model checks skipped for 1 checkpoint: no recorded verdict" in out
    code, with_shared, _ = run(
        capsys, "check", "--model-checks=cached", "--verdicts", "shared", "adapter"
    )
    assert code == 1 and with_shared.count(" SD101 ") == 2


def test_pickle_adapter_is_checked_alike(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """adapter_model.bin (`save_pretrained(safe_serialization=False)`) is judged as the
    safetensors file is, without being unpickled."""
    import torch
    from safetensors.torch import load_file

    folder = project / "adapter"
    tensors = load_file(folder / "adapter_model.safetensors")
    torch.save(tensors, folder / "adapter_model.bin")
    (folder / "adapter_model.safetensors").unlink()
    five_labels(project)
    code, diagnostics = check(capsys)
    # SD010 (info) offers to convert the clean pickle to adapter_model.safetensors
    assert code == 1 and codes(diagnostics) == ["SD010", "SD101", "SD101"]
    assert {d["path"] for d in diagnostics} == {"adapter/adapter_model.bin"}


def test_adapter_bin_beside_safetensors_is_not_judged_twice(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """peft loads adapter_model.safetensors before adapter_model.bin: only that one is judged
    against the base model (the pickle still gets its integrity rules)."""
    import torch

    folder = project / "adapter"
    torch.save({"stale": torch.zeros(2)}, folder / "adapter_model.bin")
    code, diagnostics = check(capsys)
    assert (code, diagnostics) == (0, [])


def test_unexpected_adapter_tensor_fix_drops_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drop_and_add(project)
    code, out, _ = run(capsys, "check", "adapter", "--fix", "--unsafe-fixes")
    assert code == 1 and " SD104 " not in out and " SD103 " in out
    _, diagnostics = check(capsys)
    assert codes(diagnostics) == ["SD103"]


def test_adapter_of_a_diffusers_model_is_a_skip_not_a_finding(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A LoRA of a diffusers UNet has a base config transformers cannot build: a note, as for the
    model checks of a diffusers folder, never SD107."""
    diffusers = {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.31.0"}
    (project / "base" / "config.json").write_text(json.dumps(diffusers))
    code, out, _ = run(capsys, "check", "adapter")
    assert (code, out) == (
        0,
        "note: model checks skipped for 1 checkpoint: not a transformers model, so there is no "
        "model to check against (base/config.json is a diffusers config (UNet2DConditionModel))\n"
        "All checks passed (1 file checked).\n",
    )


def test_adapter_without_its_config_is_a_skip(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "adapter" / "adapter_config.json").unlink()
    code, out, _ = run(capsys, "check", "adapter")
    assert code == 0
    assert out.startswith(
        "note: model checks skipped for 1 checkpoint: a PEFT adapter without the "
        "adapter_config.json that says what it adapts (adapter/adapter_model.safetensors)\n"
    )


def test_a_hub_base_name_is_never_looked_up(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """peft's `get_peft_model_state_dict` asks the Hub whether `base_model_name_or_path` has a
    config.json (to see whether the vocabulary was resized): sdlint must not let it."""
    import peft.utils.save_and_load

    def network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"asked the Hub: {args}")

    monkeypatch.setattr(peft.utils.save_and_load, "check_file_exists_on_hf_hub", network)
    edit_adapter_config(project / "adapter", base_model_name_or_path="FacebookAI/roberta-base")
    five_labels(project)
    code, diagnostics = check(capsys, "--model-config", "base/config.json", "--no-cache")
    assert code == 1 and codes(diagnostics) == ["SD101", "SD101"]


def test_project_configuration_names_the_base(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`[tool.sdlint.model-config]` gives an adapter its base config, as it gives a checkpoint
    its target config."""
    edit_adapter_config(project / "adapter", base_model_name_or_path="FacebookAI/roberta-base")
    five_labels(project)
    (project / "pyproject.toml").write_text(
        '[tool.sdlint.model-config]\n"adapter/**" = "base/config.json"\n'
    )
    code, diagnostics = check(capsys)
    assert code == 1 and codes(diagnostics) == ["SD101", "SD101"]


def test_the_base_config_is_judged_as_read_not_read_again(project: Path) -> None:
    """The verdict is built from the base config the read stage parsed (and the cache keys on),
    never from the file read again: an editor's unsaved text, or a file changed meanwhile."""
    from sdlint.config_fields import read_config
    from sdlint.model.peft import predict_adapter
    from sdlint.model.verdict import AdapterVerdict
    from tests.peft_adapters import signature

    as_read = read_config(project / "base" / "config.json")  # 2 labels, as the adapter's head
    five_labels(project)  # the file on disk now says 5
    adapter = read_config(project / "adapter" / "adapter_config.json")
    verdict = predict_adapter(as_read, adapter, signature(project / "adapter"))
    assert isinstance(verdict, AdapterVerdict) and verdict.is_clean, verdict


@pytest.fixture(scope="module")
def prompt_saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama base and a prompt-tuning adapter for it (4 virtual tokens of width 32)."""
    peft = pytest.importorskip("peft")
    root = tmp_path_factory.mktemp("prompt")
    save_base(root / "base", CAUSAL)
    config = peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4)
    save_adapter(root / "adapter", root / "base", config, CAUSAL)
    edit_adapter_config(root / "adapter", base_model_name_or_path="base")
    return root


def _prompt_edit(edit: Callable[[Any], dict[str, Any]]) -> Callable[[dict[str, Any]], Any]:
    return lambda t: edit(t["prompt_embeddings"])


PROMPT_CASES: list[tuple[str, Callable[[Any], dict[str, Any]], str]] = [
    (
        "SD103-renamed",
        lambda e: {"other": e},
        "adapter/adapter_model.safetensors:1:1: SD103 `prompt_embeddings` is not in the adapter: peft expects it for the PROMPT_TUNING adapter on LlamaForCausalLM ([4, 32]); PeftModel.from_pretrained fails on it (KeyError: 'prompt_embeddings')\n"
        "adapter/adapter_model.safetensors:1:1: SD104 `other` is in the adapter, but the PROMPT_TUNING adapter peft builds on LlamaForCausalLM has no such tensor: PeftModel.from_pretrained ignores it\n"
        "Found 2 problems (2 errors) in 1 file.\n"
        "No fixes available (1 hidden fix can be enabled with `--unsafe-fixes`).\n",
    ),
    (
        "SD110-tokens",
        lambda e: {"prompt_embeddings": e.new_ones((5, 32))},
        "adapter/adapter_model.safetensors:1:1: SD110 `prompt_embeddings`: 5 virtual tokens in the adapter, adapter_config.json has num_virtual_tokens=4 (adapter [5, 32], peft builds [4, 32]); PeftModel.from_pretrained refuses to load it\n"
        "Found 1 problem (1 error) in 1 file.\n",
    ),
    (
        "SD110-width",
        lambda e: {"prompt_embeddings": e.new_ones((4, 48))},
        "adapter/adapter_model.safetensors:1:1: SD110 `prompt_embeddings`: width 48 in the adapter, peft builds 32 for the base model (adapter [4, 48], peft builds [4, 32]); PeftModel.from_pretrained refuses to load it\n"
        "Found 1 problem (1 error) in 1 file.\n",
    ),
]


@pytest.mark.parametrize(
    ("name", "edit", "expected"), PROMPT_CASES, ids=[c[0] for c in PROMPT_CASES]
)
def test_prompt_tuning_embeddings(
    name: str,
    edit: Callable[[Any], dict[str, Any]],
    expected: str,
    prompt_saved: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """peft looks a prompt-tuning adapter's `prompt_embeddings` up by name and loads them into
    its prompt encoder: absent, it raises a KeyError (SD103 says so; it used to say peft only
    warns); of another shape, a size mismatch even with `ignore_mismatched_sizes=True` (SD110,
    an adapter tensor's shape; it used to be SD107, an adapter peft cannot load at all)."""
    shutil.copytree(prompt_saved, tmp_path / "p")
    monkeypatch.chdir(tmp_path / "p")
    assert run(capsys, "check", "adapter") == (0, "All checks passed (1 file checked).\n", "")
    edit_weights(Path("adapter/adapter_model.safetensors"), _prompt_edit(edit))
    assert run(capsys, "check", "adapter") == (1, expected, "")
