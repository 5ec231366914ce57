"""When the model checks are skipped the run says so in one line (text, and SARIF's invocation),
JSON output stays the findings; `--model-checks=required` (or the configuration's `model-checks`)
makes a skip an SD108 finding. No transformers needed: the skips here are decided before it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run
from tests.safetensors_files import write_tensors

CONFIG = {"architectures": ["RobertaForSequenceClassification"], "model_type": "roberta"}
NO_VERDICT = (
    "model checks skipped for 1 checkpoint: no recorded verdict for this config; run sdlint with "
    "transformers installed, or use the sdlint-model hook (m/config.json)"
)


@pytest.fixture(autouse=True)
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SDLINT_CACHE_DIR", str(tmp_path / "cache"))  # nothing recorded
    Path("m").mkdir()
    Path("m/config.json").write_text(json.dumps(CONFIG))
    write_tensors(Path("m/model.safetensors"), {"classifier.weight": ("F32", (3, 4))})
    return Path("m")


def test_a_skip_is_one_line_of_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "check", "--model-checks=cached", "m") == (
        0,
        f"note: {NO_VERDICT}\nAll checks passed (1 file checked).\n",
        "",
    )
    assert run(capsys, "check", "-q", "--model-checks=cached", "m") == (0, "", "")


@pytest.mark.parametrize("argv", [["--model-checks=off"], ["--select", "SD0"]])
def test_no_note_when_no_model_check_was_asked_for(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "check", "--model-checks=cached", *argv, "m") == (
        0,
        "All checks passed (1 file checked).\n",
        "",
    )


def test_machine_formats_keep_their_findings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--model-checks=cached", "--output-format", "json", "m")
    assert (code, out) == (0, "[]\n")
    code, out, _ = run(capsys, "check", "--model-checks=cached", "--output-format", "sarif", "m")
    (sarif_run,) = json.loads(out)["runs"]
    assert sarif_run["results"] == []
    assert sarif_run["invocations"][0]["toolExecutionNotifications"] == [
        {"level": "note", "message": {"text": NO_VERDICT}}
    ]


SD108 = (
    "m/model.safetensors:1:1: SD108 model checks skipped: no recorded verdict for this config; "
    "run sdlint with transformers installed, or use the sdlint-model hook (m/config.json)"
)


def test_required_makes_a_skip_a_finding(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)  # no transformers
    assert run(capsys, "check", "--model-checks=required", "m") == (
        1,
        f"{SD108}\nFound 1 problem (1 error) in 1 file.\n",
        "",
    )


def test_the_configuration_makes_the_light_hook_strict(capsys: pytest.CaptureFixture[str]) -> None:
    Path("sdlint.toml").write_text('model-checks = "required"\n')
    # the light hook's own argument does not turn the configuration's strictness off
    code, out, _ = run(capsys, "check", "-q", "--model-checks=cached", "m")
    assert (code, out) == (1, SD108 + "\n")
    code, out, _ = run(capsys, "check", "-q", "--model-checks=off", "m")
    assert (code, out) == (0, "")


def test_required_reports_a_folder_without_config(capsys: pytest.CaptureFixture[str]) -> None:
    Path("m/config.json").unlink()
    code, out, _ = run(capsys, "check", "-q", "--model-checks=required", "m")
    assert (code, out) == (
        1,
        "m/model.safetensors:1:1: SD108 model checks skipped: no config.json beside the weights; "
        "pass --model-config to check against one (m/model.safetensors)\n",
    )


def test_a_bad_model_checks_value_in_the_configuration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("sdlint.toml").write_text('model-checks = "strict"\n')
    code, _, err = run(capsys, "check", "m")
    assert code == 2 and "`model-checks` must be " in err and '"required"' in err


SHADOWED = (
    "model checks skipped for 1 checkpoint: from_pretrained loads another file of its folder "
    "instead (m/consolidated.safetensors: model.safetensors is loaded)"
)


@pytest.mark.parametrize("named", ["m", "m/consolidated.safetensors"])
def test_a_file_from_pretrained_does_not_load_gets_a_note(
    capsys: pytest.CaptureFixture[str], named: str
) -> None:
    """Mistral's `consolidated.safetensors` beside the transformers checkpoint: never judged
    against config.json (it was: a skip, or with transformers dozens of SD103/SD104), and the run
    says why; named alone (as pre-commit passes it), the same."""
    write_tensors(
        Path("m/consolidated.safetensors"), {"layers.0.attention.wq.weight": ("F32", (4,))}
    )
    code, out, _ = run(capsys, "check", "--model-checks=cached", named)
    lines = out.splitlines()
    assert code == 0 and f"note: {SHADOWED}" in lines
    assert (f"note: {NO_VERDICT}" in lines) == (named == "m")  # model.safetensors is judged


def test_required_keeps_a_shadowed_file_a_note(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing transformers loads went unchecked: no SD108 for the file it does not load, while
    the file it loads still is one."""
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)  # no transformers
    write_tensors(
        Path("m/consolidated.safetensors"), {"layers.0.attention.wq.weight": ("F32", (4,))}
    )
    code, out, _ = run(capsys, "check", "--model-checks=required", "m")
    assert (code, out) == (1, f"{SD108}\nnote: {SHADOWED}\nFound 1 problem (1 error) in 1 file.\n")


def test_a_model_config_does_not_make_a_shadowed_file_loaded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--model-config` names the config the checkpoint is loaded into, not which file of the
    folder is loaded: the shadowed file still gets a note."""
    write_tensors(
        Path("m/consolidated.safetensors"), {"layers.0.attention.wq.weight": ("F32", (4,))}
    )
    code, out, _ = run(
        capsys,
        "check",
        "--model-checks=cached",
        "--model-config",
        "m/config.json",
        "m/consolidated.safetensors",
    )
    assert (code, out) == (0, f"note: {SHADOWED}\nAll checks passed (1 file checked).\n")


def test_a_lone_file_beside_config_json_is_still_judged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("m/model.safetensors").rename("m/finetune.safetensors")
    code, out, _ = run(capsys, "check", "--model-checks=cached", "m")
    assert (code, out) == (0, f"note: {NO_VERDICT}\nAll checks passed (1 file checked).\n")
