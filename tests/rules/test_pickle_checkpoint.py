"""SD010 and its fix, through the CLI in-process: a clean torch.save checkpoint converted to
safetensors, and transformers loading the converted folder with every tensor equal to what it
loads from the pickle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import run
from tests.pickle_files import torch_save

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("in_tmp")


def codes(out: str) -> list[str]:
    return [line.split(" ")[1] for line in out.splitlines() if line.count(":") >= 3]


def test_clean_state_dict_is_noted_with_an_unsafe_fix(capsys: pytest.CaptureFixture[str]) -> None:
    torch_save(Path("m/pytorch_model.bin"), torch.nn.Linear(2, 3).state_dict())
    code, out, _ = run(capsys, "check", "--output-format", "json", "m")
    assert code == 0  # information never fails a run
    (finding,) = json.loads(out)
    assert finding["code"] == "SD010" and finding["severity"] == "info"
    assert finding["message"] == (
        "pickle checkpoint of 2 tensors could be safetensors (model.safetensors), which loads "
        "without running code"
    )
    assert finding["fix"] == {
        "applicability": "unsafe",
        "description": "Convert to model.safetensors (2 tensors, copied and verified) and remove "
        "pytorch_model.bin (kept as pytorch_model.bin.bak with --backup)",
    }
    # --fix alone does not apply an unsafe fix
    code, _, _ = run(capsys, "check", "--fix", "m")
    assert code == 0 and sorted(p.name for p in Path("m").iterdir()) == ["pytorch_model.bin"]


@pytest.mark.parametrize(
    "obj",
    [
        {"state_dict": {"w": torch.zeros(2)}, "epoch": 1},
        {"w": torch.zeros(2), "step": 1},
        [torch.zeros(2)],
    ],
    ids=["wrapped", "non-tensor-entry", "list"],
)
def test_no_note_for_what_cannot_be_converted(
    capsys: pytest.CaptureFixture[str], obj: object
) -> None:
    torch_save(Path("m/model.pt"), obj)
    _, out, _ = run(capsys, "check", "-q", "m")
    assert "SD010" not in out


def test_no_note_for_a_pickle_shadowed_by_safetensors(capsys: pytest.CaptureFixture[str]) -> None:
    from safetensors.torch import save_file

    torch_save(Path("m/pytorch_model.bin"), {"w": torch.zeros(2)})
    save_file({"w": torch.zeros(2)}, "m/model.safetensors", metadata={"format": "pt"})
    _, out, _ = run(capsys, "check", "-q", "m")
    assert "SD010" not in out


def test_diff_shows_the_conversion_and_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    base = torch.zeros(2, 3)
    torch_save(Path("m/model.pt"), {"w": base, "t": base.t(), "b": torch.ones(2).bfloat16()})
    before = Path("m/model.pt").read_bytes()
    code, out, err = run(capsys, "check", "--diff", "--unsafe-fixes", "m")
    assert code == 0
    assert out == (
        "--- m/model.pt\n"
        "+++ m/model.safetensors\n"
        "  converted w F32 [2, 3]\n"
        "  converted t F32 [3, 2]\n"
        "  converted b BF16 [2]\n"
        "  removed   m/model.pt (kept as model.pt.bak with --backup)\n"
    )
    assert err == "Would fix 1 problem.\n"
    assert sorted(p.name for p in Path("m").iterdir()) == ["model.pt"]
    assert Path("m/model.pt").read_bytes() == before
    _, out, err = run(capsys, "check", "--diff", "m")
    assert (out, err) == ("", "Would fix 0 problems (1 more with --unsafe-fixes).\n")


def test_fix_converts_and_removes_the_pickle(capsys: pytest.CaptureFixture[str]) -> None:
    from safetensors.torch import load_file

    state = {"w": torch.randn(4, 3), "b": torch.randn(4)}
    torch_save(Path("m/model.pt"), state)
    code, out, err = run(capsys, "check", "--fix", "--unsafe-fixes", "m/model.pt")
    assert code == 0
    assert "Fixed m/model.safetensors" in err
    assert sorted(p.name for p in Path("m").iterdir()) == ["model.safetensors"]
    converted = load_file("m/model.safetensors")
    assert all(torch.equal(converted[k], v) for k, v in state.items())
    # the file named on the command line is gone: the run checked what replaced it
    assert "SD0" not in out


def test_fix_of_a_file_named_by_another_path(capsys: pytest.CaptureFixture[str]) -> None:
    torch_save(Path("m/model.pt"), {"w": torch.zeros(2)})
    named = f"{Path.cwd()}/m/../m/./model.pt"
    code, _, err = run(capsys, "check", "--fix", "--unsafe-fixes", named)
    assert code == 0 and "error" not in err, err
    assert sorted(p.name for p in Path("m").iterdir()) == ["model.safetensors"]


def test_backup_keeps_the_pickle_out_of_the_way(capsys: pytest.CaptureFixture[str]) -> None:
    torch_save(Path("m/pytorch_model.bin"), {"w": torch.zeros(2)})
    before = Path("m/pytorch_model.bin").read_bytes()
    code, _, err = run(capsys, "check", "--fix", "--unsafe-fixes", "--backup", "m")
    assert code == 0 and "Kept the original as m/pytorch_model.bin.bak" in err
    assert sorted(p.name for p in Path("m").iterdir()) == [
        "model.safetensors",
        "pytorch_model.bin.bak",
    ]
    assert Path("m/pytorch_model.bin.bak").read_bytes() == before
    code, out, _ = run(capsys, "check", "-q", "m")  # the .bak is not a checkpoint
    assert (code, out) == (0, "")


def test_two_pickles_of_one_target_convert_one(capsys: pytest.CaptureFixture[str]) -> None:
    torch_save(Path("m/model.pt"), {"w": torch.zeros(2)})
    torch_save(Path("m/model.pth"), {"w": torch.ones(2)})
    code, out, _ = run(capsys, "check", "--fix", "--unsafe-fixes", "m")
    assert code == 0
    assert sorted(p.name for p in Path("m").iterdir()) == ["model.pth", "model.safetensors"]
    assert out.splitlines()[0] == (
        "m/model.pth:1:1: SD010 pickle checkpoint of 1 tensor could be safetensors, but "
        "model.safetensors already exists beside it: remove this file if it holds the same weights"
    )


def test_unsafe_pickle_gets_no_fix(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.pickle_files import Reduce, touch_code

    marker = Path("marker")
    torch_save(Path("m/model.pt"), {"w": torch.zeros(2), "x": Reduce(exec, touch_code(marker))})
    marker.unlink(missing_ok=True)
    code, out, _ = run(capsys, "check", "--fix", "--unsafe-fixes", "m")
    assert code == 1 and "SD006" in out and "SD010" not in out
    assert sorted(p.name for p in Path("m").iterdir()) == ["model.pt"]
    assert not marker.exists()


# -- transformers loads the converted folder as it loads the pickle ------------------------------


def load_all(cls: Any, folder: Path) -> tuple[dict[str, Any], dict[str, list[str]]]:
    model, info = cls.from_pretrained(folder, output_loading_info=True)
    loading = {k: sorted(map(str, v)) for k, v in info.items() if k != "error_msgs"}
    return model.state_dict(), loading


@pytest.mark.model
@pytest.mark.parametrize("architecture", ["RobertaForSequenceClassification", "RobertaForMaskedLM"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_from_pretrained_loads_the_same_tensors(
    capsys: pytest.CaptureFixture[str], architecture: str, dtype: str, legacy: bool
) -> None:
    """RobertaForMaskedLM ties its decoder to the word embeddings: the two names share one
    storage in the pickle and are two copies in the safetensors file."""
    transformers = pytest.importorskip("transformers")
    from tests.tiny_models import roberta_config, save_config

    torch.manual_seed(0)
    model = getattr(transformers, architecture)(roberta_config()).to(getattr(torch, dtype))
    state = model.state_dict()
    original, converted = Path("original"), Path("converted")
    torch_save(original / "pytorch_model.bin", state, legacy=legacy)
    save_config(original, architecture)
    shutil.copytree(original, converted)
    code, _, err = run(capsys, "check", "--fix", "--unsafe-fixes", "--no-cache", str(converted))
    assert code == 0 and f"Fixed {converted}/model.safetensors" in err
    assert sorted(p.name for p in converted.iterdir()) == ["config.json", "model.safetensors"]

    cls = getattr(transformers, architecture)
    expected, expected_info = load_all(cls, original)
    got, info = load_all(cls, converted)
    assert info == expected_info
    assert set(got) == set(expected)
    for name, tensor in expected.items():
        assert got[name].dtype == tensor.dtype, name
        assert torch.equal(got[name], tensor), name
    # and what transformers loaded is what was saved
    for name, tensor in state.items():
        assert torch.equal(got[name], tensor), name


@pytest.mark.model
def test_conversion_and_head_config_fix_in_one_run(capsys: pytest.CaptureFixture[str]) -> None:
    """The pickle's SD101 config edit and the conversion go together; the folder then loads."""
    transformers = pytest.importorskip("transformers")
    from tests.tiny_models import roberta_config, save_config

    torch.manual_seed(0)
    model = transformers.RobertaForSequenceClassification(roberta_config(num_labels=2))
    torch_save(Path("m/pytorch_model.bin"), model.state_dict())
    save_config(Path("m"), num_labels=5)
    code, out, _ = run(capsys, "check", "--fix", "--unsafe-fixes", "--no-cache", "m")
    assert code == 0, out
    assert sorted(p.name for p in Path("m").iterdir()) == ["config.json", "model.safetensors"]
    assert len(json.loads(Path("m/config.json").read_text())["id2label"]) == 2
    loaded, info = load_all(transformers.RobertaForSequenceClassification, Path("m"))
    assert info["missing_keys"] == [] and info["mismatched_keys"] == []
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded[name], tensor), name
