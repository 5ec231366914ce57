"""The model rules on hand-made verdicts: what the rules do with a verdict, without transformers.

`CheckContext.model` is replaced by a fixed view, so these run in an environment without torch and
say nothing about whether a verdict is right (tests/model holds the verdicts to transformers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sdlint.config_fields import read_config
from sdlint.context import CheckContext, ModelView
from sdlint.model.verdict import (
    QUANTIZED,
    ConfigProblem,
    LoadVerdict,
    Mismatch,
    Missing,
    Unexpected,
    WrapperPrefix,
)
from sdlint.record import replace
from sdlint.registry import all_rules
from sdlint.rule import FixAvailability
from tests.cli_helpers import run
from tests.safetensors_files import TensorSpecs, write_tensors
from tests.verdicts import roberta_verdict

CONFIG = {"architectures": ["RobertaForSequenceClassification"], "num_labels": 5}
VERDICT = roberta_verdict(transformers_version="5.0.0")
TENSORS: TensorSpecs = {"roberta.w": ("F32", (4, 4)), "classifier.weight": ("F32", (2, 4))}


def checkpoint(
    folder: Path,
    verdict: LoadVerdict | ConfigProblem,
    monkeypatch: pytest.MonkeyPatch,
    tensors: TensorSpecs,
) -> Path:
    """A folder with weights and config.json whose model view is `verdict` (or a problem)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_tensors(folder / "model.safetensors", tensors)
    config = folder / "config.json"
    config.write_text(json.dumps(CONFIG, indent=2))
    view = ModelView(read_config(config), verdict)
    monkeypatch.setattr(CheckContext, "model", property(lambda self: view))
    return folder


def findings(capsys: pytest.CaptureFixture[str], folder: Path, *argv: str) -> list[dict[str, Any]]:
    code, out, err = run(capsys, "check", "--output-format", "json", str(folder), *argv)
    assert code == 1 and err == "", err
    found: list[dict[str, Any]] = json.loads(out)
    return found


# A verdict under which each rule that declares a fix offers one, by code.
OFFERS_A_FIX: dict[str, tuple[LoadVerdict, TensorSpecs]] = {
    "SD101": (
        replace(
            VERDICT,
            mismatched=(Mismatch("classifier.weight", "classifier.weight", (2, 4), (5, 4), False),),
        ),
        TENSORS,
    ),
    "SD104": (
        replace(VERDICT, unexpected=(Unexpected("classifier.weight", "classifier.weight"),)),
        TENSORS,
    ),
    "SD106": (
        replace(VERDICT, wrapper_prefix=WrapperPrefix("module.", 2, VERDICT)),
        {"module." + k: v for k, v in TENSORS.items()},
    ),
}


# Rules that need no verdict, held to their fix where their format is tested.
FIX_TESTED_ELSEWHERE = {
    "SD010": "tests/rules/test_pickle_checkpoint.py::test_clean_state_dict_is_noted_with_an_unsafe_fix"
}


def test_every_rule_that_declares_a_fix_has_a_case_here() -> None:
    declared = {r.code for r in all_rules() if r.fix is FixAvailability.SOMETIMES}
    assert declared == set(OFFERS_A_FIX) | set(FIX_TESTED_ELSEWHERE)


@pytest.mark.parametrize("code", sorted(OFFERS_A_FIX))
def test_declared_fixes_are_offered(
    code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict, tensors = OFFERS_A_FIX[code]
    folder = checkpoint(tmp_path / "m", verdict, monkeypatch, tensors)
    found = [d for d in findings(capsys, folder, "--select", code) if d["code"] == code]
    assert found and all(d["fix"] is not None for d in found), found


def test_adding_a_head_only_in_a_dtype_sdlint_can_initialise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict = replace(
        VERDICT, dtype="float8_e4m3fn", missing=(Missing("classifier.dense.weight", False, (4, 4)),)
    )
    folder = checkpoint(tmp_path / "m", verdict, monkeypatch, TENSORS)
    (found,) = findings(capsys, folder, "--select", "SD103")
    assert found["fix"] is None
    before = (folder / "model.safetensors").read_bytes()
    code, _, err = run(capsys, "check", "-q", "--fix", "--unsafe-fixes", str(folder))
    assert (code, err) == (1, "")  # reported, not fixed, and no internal error
    assert (folder / "model.safetensors").read_bytes() == before


def test_a_fix_from_a_rule_that_declares_none_is_a_bug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict, tensors = OFFERS_A_FIX["SD104"]
    folder = checkpoint(tmp_path / "m", verdict, monkeypatch, tensors)
    sd104 = next(r for r in all_rules() if r.code == "SD104")
    undeclared = replace(sd104, fix=FixAvailability.NONE)
    monkeypatch.setattr("sdlint.engine.select_rules", lambda layers: [undeclared])
    code, out, err = run(capsys, "check", str(folder))
    assert code == 2 and out == ""
    assert err.startswith("sdlint: internal error: InternalError: SD104 offers a fix"), err


def test_fixes_that_do_not_settle_are_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict, tensors = OFFERS_A_FIX["SD106"]
    folder = checkpoint(tmp_path / "m", verdict, monkeypatch, tensors)
    monkeypatch.setattr("sdlint.fixes.MAX_PASSES", 0)
    code, _, err = run(capsys, "check", "--fix", str(folder))
    assert code == 2
    assert err.startswith("sdlint: internal error: InternalError: fixes did not settle"), err
    assert "please report it" in err


def test_errors_the_user_acts_on_are_sdlint_errors() -> None:
    from sdlint.errors import InternalError, SdlintError
    from sdlint.fixes import FixError
    from sdlint.rewrite import RewriteError

    assert issubclass(RewriteError, SdlintError) and issubclass(FixError, SdlintError)
    assert not issubclass(InternalError, SdlintError)


def test_a_quantized_config_is_reported_as_documented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = ConfigProblem(QUANTIZED, "config.json has a `quantization_config` (gptq): skipped")
    folder = checkpoint(tmp_path / "m", problem, monkeypatch, TENSORS)
    code, out, _ = run(capsys, "check", "--output-format", "json", str(folder))
    (found,) = json.loads(out)
    assert (found["code"], found["severity"]) == ("SD107", "info")
    assert code == 0  # info never fails the run
    doc = next(r for r in all_rules() if r.code == "SD107").doc
    assert "`quantization_config` (key checks skipped on purpose:\nreported as info)" in doc


def test_the_verdict_notes_are_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    note = "config.json has no `architectures`; checked against RobertaModel"
    folder = checkpoint(tmp_path / "m", VERDICT, monkeypatch, TENSORS)
    monkeypatch.undo()  # the model view is made by the context this time, from this verdict
    monkeypatch.setattr(
        "sdlint.model.load_verdict", lambda *a, **k: replace(VERDICT, notes=(note,))
    )
    code, out, _ = run(capsys, "check", str(folder))
    assert code == 0
    assert out.splitlines() == [
        f"note: {folder / 'config.json'}: {note}",
        "All checks passed (1 file checked).",
    ]
    code, out, _ = run(capsys, "check", "--output-format", "json", str(folder))
    assert (code, out) == (0, "[]\n")


@pytest.mark.parametrize(
    ("prefix", "origin"),
    [
        ("module.", " (DistributedDataParallel)"),
        ("_orig_mod.", " (torch.compile)"),
        ("module._orig_mod.", " (DistributedDataParallel and torch.compile)"),
    ],
)
def test_a_wrapper_prefix_needs_no_config(
    prefix: str, origin: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_tensors(
        tmp_path / "model.safetensors", {prefix + k: v for k, v in TENSORS.items()}
    )
    code, out, _ = run(capsys, "check", "-q", "--select", "SD106", str(path))
    assert (code, out) == (
        1,
        f"{path}:1:1: SD106 [*] all 2 keys carry the prefix `{prefix}`{origin}, which transformers "
        "does not strip: every weight would be missing and randomly initialized; strip the prefix "
        "from the keys\n",
    )
    code, _, _ = run(capsys, "check", "-q", "--fix", "--select", "SD106", str(path))
    assert code == 0
    code, out, _ = run(capsys, "check", "-q", "--select", "SD106", str(path))
    assert (code, out) == (0, "")


def test_no_wrapper_prefix_from_the_header_unless_every_key_has_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_tensors(
        tmp_path / "model.safetensors", {"module.a": ("F32", (1,)), "b": ("F32", (1,))}
    )
    assert run(capsys, "check", "-q", "--select", "SD106", str(path)) == (0, "", "")
    assert run(capsys, "check", "-q", "--model-checks=off", str(tmp_path)) == (0, "", "")


def test_the_model_overrules_the_header_where_it_can_be_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a model whose own keys start with `module.` loads them as they are: no wrapper
    tensors: TensorSpecs = {"module.w": ("F32", (1,))}
    folder = checkpoint(tmp_path / "m", VERDICT, monkeypatch, tensors)
    assert run(capsys, "check", "-q", "--select", "SD106", str(folder)) == (0, "", "")
