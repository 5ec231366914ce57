"""Configs that cannot give a model are ConfigProblems (SD107), never exceptions, and never run
repository code, prompt, or write to stdout."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sdlint.config_fields import read_config
from sdlint.model import ConfigProblem, LoadVerdict, Outcome, TensorSpec, load_verdict
from sdlint.model import verdict as v
from sdlint.model.oracle import predict_load as predict_from_config
from sdlint.model.reference import directory_signature
from tests.verdicts import BASE_SIGNATURE, TINY_ROBERTA

ROBERTA = TINY_ROBERTA
SIGNATURE = BASE_SIGNATURE


def predict_load(
    config: Path, tensors: Mapping[str, TensorSpec], architecture: str | None = None
) -> Outcome:
    """The oracle on a config.json read as the read stage reads it."""
    return predict_from_config(read_config(config), tensors, architecture)


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# Tests that build a model: marked `model`, and skipped where torch or transformers is absent
# (there the oracle answers NOT_INSTALLED, which test_torch_not_installed... covers).
model = pytest.mark.model
needs_model = pytest.mark.skipif(
    not (_installed("torch") and _installed("transformers")), reason="needs torch and transformers"
)

# Repository code that leaves a trace if anything imports it.
MARKER_CODE = textwrap.dedent(
    """
    import pathlib
    pathlib.Path(__file__).with_name("EXECUTED").write_text("repository code ran")
    raise SystemExit("repository code ran")
    """
)


def write_config(directory: Path, document: Any, *, code: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps(document))
    if code:
        for module in ("configuration_custom.py", "modeling_custom.py"):
            (directory / module).write_text(MARKER_CODE)
    return path


def problem(result: LoadVerdict | ConfigProblem) -> ConfigProblem:
    assert isinstance(result, ConfigProblem), result
    # "what failed: why. What to do."
    assert ": " in result.message and result.message.rstrip().endswith("."), result.message
    return result


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter whose stdin stays open (never written, never closed), so
    anything waiting for an answer on stdin hangs until the timeout fails the test."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=out, stderr=err, text=True
        )
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail("the oracle waited on stdin (a remote-code prompt?)")
        finally:
            assert process.stdin is not None
            process.stdin.close()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(process.args, process.returncode, out.read(), err.read())


PRINT_VERDICT = """
import sys
from pathlib import Path
from sdlint.config_fields import read_config
from sdlint.model.oracle import predict_load
from sdlint.model.reference import directory_signature
from sdlint.model import TensorSpec
result = predict_load(read_config(Path({path!r})), {{"embeddings.word_embeddings.weight": TensorSpec("F32", (128, 32))}})
sys.stdout.write(result.to_json() + "\\n")
"""


# ---------------------------------------------------------------------------------------------
# Static problems: decided from config.json alone, before torch is imported.


def test_missing_unparsable_and_non_object_configs(tmp_path: Path) -> None:
    assert problem(predict_load(tmp_path / "nope.json", SIGNATURE)).kind == v.UNREADABLE_CONFIG
    (tmp_path / "bad.json").write_text("{not json")
    assert problem(predict_load(tmp_path / "bad.json", SIGNATURE)).kind == v.UNREADABLE_CONFIG
    (tmp_path / "list.json").write_text("[1, 2]")
    assert problem(predict_load(tmp_path / "list.json", SIGNATURE)).kind == v.UNREADABLE_CONFIG


def test_quantized_config_skips_key_checks_without_importing_torch(tmp_path: Path) -> None:
    path = write_config(tmp_path, {**ROBERTA, "quantization_config": {"quant_method": "gptq"}})
    code = PRINT_VERDICT.format(path=str(path)) + (
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    found = problem(v.ConfigProblem.from_json(result.stdout))
    assert found.kind == v.QUANTIZED and "gptq" in found.message and "skipped" in found.message


# ---------------------------------------------------------------------------------------------
# Remote code (R32): detected, never executed, never prompted for.


@model
@needs_model
@pytest.mark.slow
def test_remote_code_config_is_a_problem_and_runs_nothing(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        {
            "model_type": "custom_thing",
            "architectures": ["CustomThingModel"],
            "auto_map": {
                "AutoConfig": "configuration_custom.CustomThingConfig",
                "AutoModel": "modeling_custom.CustomThingModel",
            },
        },
        code=True,
    )
    result = run_python(PRINT_VERDICT.format(path=str(path)))
    assert result.returncode == 0, result.stderr
    # stdout holds exactly the one JSON line the script printed: no prompt, no log line.
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    found = problem(v.ConfigProblem.from_json(lines[0]))
    assert found.kind == v.REMOTE_CODE and "never runs repository code" in found.message
    assert not (tmp_path / "EXECUTED").exists()
    assert "[y/N]" not in result.stderr and "custom code" not in result.stderr.lower()


@model
@needs_model
def test_unknown_class_with_auto_map_is_remote_code(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        {
            **ROBERTA,
            "architectures": ["MyRoberta"],
            "auto_map": {"AutoModel": "modeling_custom.MyRoberta"},
        },
        code=True,
    )
    assert problem(predict_load(path, SIGNATURE)).kind == v.REMOTE_CODE
    assert not (tmp_path / "EXECUTED").exists()


@model
@needs_model
def test_auto_map_beside_a_native_class_uses_the_native_class(tmp_path: Path) -> None:
    """R32(c): transformers uses the native class unless trust_remote_code=True; note it."""
    path = write_config(
        tmp_path,
        {**ROBERTA, "auto_map": {"AutoModel": "modeling_custom.RobertaModel"}},
        code=True,
    )
    result = predict_load(path, SIGNATURE)
    assert isinstance(result, LoadVerdict) and result.architecture == "RobertaModel"
    assert any("auto_map" in note for note in result.notes)
    assert not (tmp_path / "EXECUTED").exists()


@model
@needs_model
def test_unknown_model_type(tmp_path: Path) -> None:
    path = write_config(tmp_path, {**ROBERTA, "model_type": "custom_thing", "architectures": ["X"]})
    found = problem(predict_load(path, SIGNATURE))
    assert found.kind == v.UNKNOWN_MODEL_TYPE and "custom_thing" in found.message


@model
@needs_model
def test_no_architectures_and_no_model_type(tmp_path: Path) -> None:
    document = {k: val for k, val in ROBERTA.items() if k not in ("model_type", "architectures")}
    assert problem(predict_load(write_config(tmp_path, document), SIGNATURE)).kind == (
        v.UNKNOWN_MODEL_TYPE
    )


# ---------------------------------------------------------------------------------------------
# Class names.


@model
@needs_model
def test_misspelt_architecture_suggests_the_class(tmp_path: Path) -> None:
    path = write_config(tmp_path, {**ROBERTA, "architectures": ["RobertaForSequenceClasification"]})
    found = problem(predict_load(path, SIGNATURE))
    assert found.kind == v.UNKNOWN_ARCHITECTURE
    assert "did you mean `RobertaForSequenceClassification`" in found.message


@model
@needs_model
@pytest.mark.parametrize("name", ["NoSuchModel", "pipeline", "RobertaConfig", "not a name"])
def test_architecture_argument_must_be_a_model_class(tmp_path: Path, name: str) -> None:
    found = problem(predict_load(write_config(tmp_path, ROBERTA), SIGNATURE, name))
    assert found.kind == v.UNKNOWN_ARCHITECTURE


@model
@needs_model
def test_architectures_must_be_a_list(tmp_path: Path) -> None:
    path = write_config(tmp_path, {**ROBERTA, "architectures": "RobertaModel"})
    assert problem(predict_load(path, SIGNATURE)).kind == v.INVALID_CONFIG


# ---------------------------------------------------------------------------------------------
# Values transformers rejects, each named with its exception type.


@model
@needs_model
@pytest.mark.parametrize(
    ("changes", "kind", "exception"),
    [
        ({"hidden_size": 30}, v.CANNOT_INSTANTIATE, "ValueError"),
        ({"num_attention_heads": 0}, v.CANNOT_INSTANTIATE, "ZeroDivisionError"),
        ({"vocab_size": -1}, v.CANNOT_INSTANTIATE, "AssertionError"),
        ({"num_hidden_layers": "two"}, v.INVALID_CONFIG, "expected int, got str"),
        ({"dtype": "float17"}, v.INVALID_CONFIG, "float17"),
        ({"dtype": "int8"}, v.INVALID_CONFIG, "floating-point"),
        (
            {
                "model_type": "llama",
                "architectures": ["LlamaModel"],
                "layer_types": ["full_attention"],
            },
            v.INVALID_CONFIG,
            "StrictDataclassClassValidationError",
        ),
    ],
    ids=[
        "hidden-not-divisible",
        "zero-heads",
        "negative-vocab",
        "wrong-type",
        "unknown-dtype",
        "integer-dtype",
        "layer-types-length",
    ],
)
def test_invalid_config_values(
    tmp_path: Path, changes: dict[str, Any], kind: str, exception: str
) -> None:
    found = problem(predict_load(write_config(tmp_path, {**ROBERTA, **changes}), SIGNATURE))
    assert found.kind == kind and exception in found.message, found


@model
@needs_model
def test_missing_optional_dependency_is_named(tmp_path: Path) -> None:
    if _installed("timm"):
        pytest.skip("timm is installed")
    path = write_config(
        tmp_path, {"model_type": "detr", "architectures": ["DetrForObjectDetection"]}
    )
    found = problem(predict_load(path, SIGNATURE))
    assert found.kind == v.MISSING_DEPENDENCY and "`pip install timm`" in found.message
    assert not found.cacheable


@model
@needs_model
def test_placeholder_class_of_a_missing_backend_is_a_missing_dependency(tmp_path: Path) -> None:
    """transformers exports a placeholder that raises on use when a backend is missing."""
    if _installed("torchaudio"):
        pytest.skip("torchaudio is installed")
    path = write_config(
        tmp_path,
        {"model_type": "higgs_audio_v2_tokenizer", "architectures": ["HiggsAudioV2TokenizerModel"]},
    )
    for architecture in (None, "HiggsAudioV2TokenizerModel"):
        found = problem(predict_load(path, SIGNATURE, architecture))
        assert found.kind == v.MISSING_DEPENDENCY and "`pip install torchaudio`" in found.message


# ---------------------------------------------------------------------------------------------
# The environment.


@pytest.mark.slow
def test_torch_not_installed_is_a_problem_and_not_cached(tmp_path: Path) -> None:
    path = write_config(tmp_path / "model", ROBERTA)
    cache = tmp_path / "cache"
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None  # what `import torch` sees when it is not installed
        from pathlib import Path
        from sdlint.config_fields import read_config
        from sdlint.model import load_verdict, TensorSpec
        result = load_verdict(read_config(Path({str(path)!r})), {{"w": TensorSpec("F32", (1,))}},
                              cache_dir=Path({str(cache)!r}))
        sys.stdout.write(result.to_json())
        """
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    found = problem(v.ConfigProblem.from_json(result.stdout))
    assert found.kind == v.NOT_INSTALLED and "pip install 'sdlint[model]'" in found.message
    assert not list(cache.rglob("*.json"))


@model
@needs_model
def test_unsupported_transformers_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    transformers = pytest.importorskip("transformers")
    monkeypatch.setattr(transformers, "__version__", "4.57.6")
    found = problem(predict_load(write_config(tmp_path, ROBERTA), SIGNATURE))
    assert found.kind == v.UNSUPPORTED_VERSION and "4.57.6" in found.message


@model
@needs_model
@pytest.mark.slow
def test_oracle_keeps_stdout_clean(tmp_path: Path) -> None:
    """transformers warns about this config (token ids outside the vocabulary) and the load is
    full of mismatches: nothing may reach stdout, and its log and progress bars stay quiet."""
    path = write_config(
        tmp_path,
        {
            "model_type": "gpt2",
            "architectures": ["GPT2LMHeadModel"],
            "n_embd": 32,
            "n_layer": 1,
            "n_head": 4,
            "vocab_size": 128,
            "n_positions": 64,
        },
    )
    code = PRINT_VERDICT.format(path=str(path)).replace(
        '{"embeddings.word_embeddings.weight": TensorSpec("F32", (128, 32))}',
        '{"wte.weight": TensorSpec("F32", (100, 32)), "junk": TensorSpec("F32", (1,))}',
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    verdict = LoadVerdict.from_json(lines[0])
    assert verdict.mismatched and verdict.unexpected and verdict.missing
    assert "LOAD REPORT" not in result.stderr and "Loading weights" not in result.stderr
    assert "bos_token_id" not in result.stderr


# ---------------------------------------------------------------------------------------------
# Dtypes torch cannot load (R30's one exception).


def write_raw_safetensors(path: Path, tensors: dict[str, tuple[str, tuple[int, ...], int]]) -> None:
    """A safetensors file from (dtype, shape, byte size) entries, data all zeros."""
    header: dict[str, Any] = {}
    offset = 0
    for name, (dtype, shape, size) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(offset))


@model
@needs_model
@pytest.mark.parametrize("dtype", ["F4", "F6_E2M3"])
def test_dtype_torch_cannot_load_is_a_conversion_error(tmp_path: Path, dtype: str) -> None:
    transformers = pytest.importorskip("transformers")
    write_config(tmp_path, {**ROBERTA, "num_hidden_layers": 1})
    model = transformers.RobertaModel(transformers.RobertaConfig.from_pretrained(str(tmp_path)))
    entries = {k: ("F32", tuple(t.shape), 4 * t.numel()) for k, t in model.state_dict().items()}
    key = "encoder.layer.0.output.dense.bias"
    entries[key] = (dtype, (32,), 32 * (4 if dtype == "F4" else 6) // 8)
    write_raw_safetensors(tmp_path / "model.safetensors", entries)

    verdict = predict_load(tmp_path / "config.json", directory_signature(tmp_path))
    assert isinstance(verdict, LoadVerdict)
    assert [(c.model_key, c.file_keys) for c in verdict.conversion_errors] == [(key, (key,))]
    with pytest.raises(Exception):  # noqa: B017 - safetensors or torch, whichever fails first
        transformers.RobertaModel.from_pretrained(str(tmp_path), ignore_mismatched_sizes=True)


def test_load_verdict_passes_problems_through(tmp_path: Path) -> None:
    result = load_verdict(
        read_config(tmp_path / "missing.json"), SIGNATURE, cache_dir=tmp_path / "cache"
    )
    assert problem(result).kind == v.UNREADABLE_CONFIG
