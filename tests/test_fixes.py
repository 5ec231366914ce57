"""`check --fix`, `--unsafe-fixes`, `--diff`, `--head-fix`, `--backup` end to end: after each fix
the checkpoint lints clean for that rule, safetensors reads it, transformers loads it with nothing
missing, unexpected or mismatched, and every tensor the fix had no business touching is
bit-identical."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from safetensors import safe_open  # noqa: E402

from sdlint import rewrite  # noqa: E402
from sdlint.edits import Edit, RenameTensors, SetConfigValues  # noqa: E402
from sdlint.fixes import FixError, apply, edited_json  # noqa: E402
from tests.cli_helpers import run  # noqa: E402
from tests.tiny_models import edit_config, edit_weights, save_roberta  # noqa: E402
from tests.write_faults import fail_after  # noqa: E402

pytestmark = pytest.mark.model
ROOT = Path(__file__).parent.parent
FIVE = {str(i): f"L{i}" for i in range(5)}


def tensor_digests(folder: Path) -> dict[str, str]:
    """name -> sha256 of the tensor's bytes, over every weights file of a folder."""
    out = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            for name in f.keys():
                tensor = f.get_tensor(name)
                out[name] = hashlib.sha256(tensor.view(torch.uint8).numpy().tobytes()).hexdigest()
    return out


def loading_info(folder: Path, config: Path | None = None) -> dict[str, Any]:
    cls = transformers.RobertaForSequenceClassification
    kwargs: dict[str, Any] = {"output_loading_info": True}
    if config is not None:
        kwargs["config"] = transformers.RobertaConfig.from_pretrained(config)
    _, info = cls.from_pretrained(folder, **kwargs)
    return {k: sorted(map(str, v)) for k, v in info.items() if k != "error_msgs"}


CLEAN_LOAD: dict[str, list[str]] = {
    "missing_keys": [],
    "mismatched_keys": [],
    "unexpected_keys": [],
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_roberta(tmp_path_factory.mktemp("saved") / "cls")


@pytest.fixture
def model(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(saved, "m")
    capsys.readouterr()
    return Path("m")


def test_strip_wrapper_prefix_is_safe_and_lossless(
    model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tensor_digests(model)
    edit_weights(model / "model.safetensors", lambda t: {"module." + k: v for k, v in t.items()})
    code, out, err = run(capsys, "check", "m", "--fix")
    assert code == 0, out + err
    assert out == "Fixed 1 problem. All checks passed (1 file checked).\n"
    assert err == "Fixed m/model.safetensors\n"
    assert tensor_digests(model) == before  # same names, same bytes
    assert loading_info(model) == CLEAN_LOAD


def test_strip_wrapper_prefix_in_a_sharded_checkpoint(
    saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "sharded"
    transformers.RobertaForSequenceClassification.from_pretrained(saved).save_pretrained(
        folder, max_shard_size="20KB"
    )
    before = tensor_digests(folder)
    for shard in folder.glob("model-*.safetensors"):
        edit_weights(shard, lambda t: {"_orig_mod." + k: v for k, v in t.items()})
    index = folder / "model.safetensors.index.json"
    document = json.loads(index.read_text())
    document["weight_map"] = {"_orig_mod." + k: v for k, v in document["weight_map"].items()}
    index.write_text(json.dumps(document))
    capsys.readouterr()
    assert "SD106" in run(capsys, "check", str(folder))[1]
    code, out, _ = run(capsys, "check", str(folder), "--fix")
    assert code == 0, out
    assert tensor_digests(folder) == before
    assert json.loads(index.read_text())["weight_map"].keys() == before.keys()
    assert loading_info(folder) == CLEAN_LOAD


HEAD = [
    "classifier.dense.bias",
    "classifier.dense.weight",
    "classifier.out_proj.bias",
    "classifier.out_proj.weight",
]


def test_base_checkpoint_into_a_head_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A base checkpoint loaded into a task class is how fine-tuning starts: SD103 says so, as
    info that does not fail the run, and no fix invents a head (transformers still warns that the
    head must be trained)."""
    monkeypatch.chdir(tmp_path)
    base = save_roberta(Path("m"), "RobertaModel")
    weights = (base / "model.safetensors").read_bytes()
    capsys.readouterr()
    args = ["check", "m", "--architecture", "RobertaForSequenceClassification", "--select", "SD103"]
    code, out, _ = run(capsys, *args, "--output-format", "json")
    assert code == 0, out
    findings = json.loads(out)
    assert sorted(f["tensor"] for f in findings) == HEAD
    assert {f["severity"] for f in findings} == {"info"}
    assert all("the normal start of fine-tuning" in f["message"] for f in findings)
    assert all(f["fix"] is None for f in findings)

    code, out, err = run(capsys, *args, "--fix", "--unsafe-fixes")
    assert code == 0, out + err
    assert (base / "model.safetensors").read_bytes() == weights
    assert loading_info(base)["missing_keys"] == HEAD


def test_a_partly_missing_head_is_an_error(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only a checkpoint with none of the head is a base checkpoint: a head with a tensor missing
    is broken, and SD103 fails the run."""
    edit_weights(
        model / "model.safetensors",
        lambda t: {k: v for k, v in t.items() if k != "classifier.out_proj.weight"},
    )
    code, out, _ = run(capsys, "check", "m", "--select", "SD103", "--output-format", "json")
    assert code == 1
    [finding] = json.loads(out)
    assert (finding["tensor"], finding["severity"]) == ("classifier.out_proj.weight", "error")
    assert "fine-tuning" not in finding["message"]


def test_dropping_unexpected_keys_needs_unsafe_fixes(
    model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_weights(model / "model.safetensors", lambda t: {**t, "extra.weight": torch.ones(3)})
    before = (model / "model.safetensors").read_bytes()
    code, out, _ = run(capsys, "check", "m", "--fix")
    assert (
        code == 1 and "SD104" in out and "1 hidden fix can be enabled with `--unsafe-fixes`" in out
    )
    assert (model / "model.safetensors").read_bytes() == before  # safe-only: nothing written
    digests = tensor_digests(model)
    code, out, err = run(capsys, "check", "m", "--fix", "--unsafe-fixes", "--backup")
    assert code == 0, out
    assert "Kept the original as m/model.safetensors.bak" in err
    assert (model / "model.safetensors.bak").read_bytes() == before
    after = tensor_digests(model)
    assert after == {k: v for k, v in digests.items() if k != "extra.weight"}
    assert loading_info(model) == CLEAN_LOAD


@pytest.fixture
def canonical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The README's example, copied: the 2-label checkpoint and the 5-label config."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "examples", "examples")
    return Path("examples/roberta-2-labels"), Path("examples/roberta-5-labels/config.json")


def test_head_fix_config(canonical: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    weights, config = canonical
    before = tensor_digests(weights)
    args = ["check", str(weights), "--model-config", str(config)]
    code, out, _ = run(capsys, *args, "--fix")
    assert code == 1 and out.count(" SD101 ") == 2  # unsafe: not applied by --fix alone
    code, out, err = run(capsys, *args, "--fix", "--unsafe-fixes")
    assert code == 0, out + err
    assert err == f"Fixed {config.as_posix()}\n"
    edited = json.loads(config.read_text())
    # the checkpoint's own label names are reused, in the file's sorted key order
    assert edited["id2label"] == {"0": "negative", "1": "positive"}
    assert edited["label2id"] == {"negative": 0, "positive": 1}
    assert list(edited) == sorted(edited)
    assert tensor_digests(weights) == before
    assert loading_info(weights, config) == CLEAN_LOAD


def test_head_fix_reinit(canonical: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    weights, config = canonical
    config_text = config.read_text()
    before = tensor_digests(weights)
    code, out, err = run(
        capsys,
        "check",
        str(weights),
        "--model-config",
        str(config),
        "--fix",
        "--unsafe-fixes",
        "--head-fix",
        "reinit",
    )
    assert code == 0, out + err
    assert config.read_text() == config_text
    after = tensor_digests(weights)
    head = {"classifier.out_proj.weight", "classifier.out_proj.bias"}
    assert {k: v for k, v in after.items() if k not in head} == {
        k: v for k, v in before.items() if k not in head
    }
    with safe_open(str(weights / "model.safetensors"), framework="pt") as f:
        weight, bias = (
            f.get_tensor("classifier.out_proj.weight"),
            f.get_tensor("classifier.out_proj.bias"),
        )
    assert weight.shape == (5, 32) and bias.shape == (5,)
    assert (
        bool((bias == 0).all())
        and 0.01 < float(weight.std()) < 0.03
        and abs(float(weight.mean())) < 0.01
    )
    # The folder loads with the target config, and with its own, whose labels the same fix set.
    assert loading_info(weights, config) == CLEAN_LOAD
    assert loading_info(weights) == CLEAN_LOAD
    own = json.loads((weights / "config.json").read_text())
    target = json.loads(config_text)
    assert (own["id2label"], own["label2id"]) == (target["id2label"], target["label2id"])
    assert err.splitlines() == [
        f"Fixed {(weights / 'model.safetensors').as_posix()}",
        f"Fixed {(weights / 'config.json').as_posix()}",
    ]


def test_head_fix_reinit_is_all_or_nothing(
    canonical: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """When the folder's own config.json cannot take the new labels, the weights are not
    re-initialized either."""
    weights, config = canonical
    own = weights / "config.json"
    before = {p: p.read_bytes() for p in (weights / "model.safetensors", own)}
    own.chmod(0o444)
    code, out, err = run(
        capsys,
        *("check", str(weights), "--model-config", str(config)),
        *("--fix", "--unsafe-fixes", "--head-fix", "reinit"),
    )
    assert (code, out) == (2, "")
    assert "config.json: the file is read-only" in err
    assert "put back as they were: model.safetensors" in err
    assert {p: p.read_bytes() for p in before} == before


def test_reinit_keeps_bfloat16(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit_weights(
        model / "model.safetensors", lambda t: {k: v.to(torch.bfloat16) for k, v in t.items()}
    )
    edit_config(model / "config.json", id2label=FIVE, label2id={v: int(k) for k, v in FIVE.items()})
    code, out, _ = run(capsys, "check", "m", "--fix", "--unsafe-fixes", "--head-fix", "reinit")
    assert code == 0, out
    with safe_open(str(model / "model.safetensors"), framework="pt") as f:
        weight = f.get_tensor("classifier.out_proj.weight")
    assert weight.dtype == torch.bfloat16 and weight.shape == (5, 32)
    assert 0.01 < float(weight.float().std()) < 0.03


def test_diff_writes_nothing(
    canonical: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    weights, config = canonical
    files = {p: p.read_bytes() for p in Path("examples").rglob("*") if p.is_file()}
    diff = ("check", str(weights), "--model-config", str(config), "--diff")
    code, out, err = run(capsys, *diff, "--unsafe-fixes")
    assert code == 1
    assert out.startswith(f"--- {config.as_posix()}\n+++ {config.as_posix()}\n")
    assert '-    "0": "LABEL_0",' in out and '+    "0": "negative",' in out
    assert err == "Would fix 2 problems.\n"
    code, out, err = run(capsys, *diff, "--head-fix", "reinit")
    assert out == ""
    assert err == "Would fix 0 problems (2 more with --unsafe-fixes).\n"
    code, out, _ = run(capsys, *diff, "--head-fix", "reinit", "--unsafe-fixes")
    weights_diff, config_diff = out.split("--- examples/roberta-2-labels/config.json\n")
    assert weights_diff == (
        "--- examples/roberta-2-labels/model.safetensors\n"
        "+++ examples/roberta-2-labels/model.safetensors\n"
        "  re-initialized classifier.out_proj.bias F32 [2] -> F32 [5] (zeros)\n"
        "  re-initialized classifier.out_proj.weight F32 [2, 32] -> F32 [5, 32] (normal(0, 0.02))\n"
    )
    # The folder's own config takes the target's labels in the same fix.
    assert '-    "0": "negative",' in config_diff and '+    "4": "LABEL_4"' in config_diff
    assert {p: p.read_bytes() for p in files} == files


def test_a_failed_fix_leaves_the_file_and_says_so(
    model: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    edit_weights(model / "model.safetensors", lambda t: {"module." + k: v for k, v in t.items()})
    before = (model / "model.safetensors").read_bytes()
    monkeypatch.setattr(rewrite, "_write", fail_after(100))
    code, out, err = run(capsys, "check", "m", "--fix")
    assert (code, out) == (2, "")
    assert err.startswith("sdlint: error: cannot rewrite m/model.safetensors: ") and err.endswith(
        "the original is intact\n"
    )
    assert err.count("\n") == 1
    assert (model / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in model.iterdir()) == ["config.json", "model.safetensors"]


def test_a_pass_over_several_files_is_all_or_nothing(
    model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The weights are rewritten first; when the config.json of the same pass cannot be written,
    the weights are put back: the folder is as before, not half fixed."""
    weights, config = model / "model.safetensors", model / "config.json"
    before, inode, listing = weights.read_bytes(), weights.stat().st_ino, sorted(model.iterdir())
    config.chmod(0o444)
    edits: list[Edit] = [
        RenameTensors(weights, (("classifier.dense.bias", "classifier.dense.b"),)),
        SetConfigValues(config, (("num_labels", "2"),)),
    ]
    with pytest.raises(FixError) as info:
        apply(edits, [])
    message = str(info.value)
    assert "config.json: the file is read-only" in message
    assert message.endswith("; put back as they were: model.safetensors")
    assert weights.read_bytes() == before and weights.stat().st_ino == inode
    assert sorted(model.iterdir()) == listing  # no backup or temporary file left

    config.chmod(0o644)
    changed, backups = apply(edits, [])
    assert (changed, backups) == ([weights, config], [])
    assert sorted(model.iterdir()) == listing  # the originals kept during the pass are gone
    assert "classifier.dense.b" in tensor_digests(model)


def test_edited_json_keeps_order_and_indent() -> None:
    text = '{\n    "b": 1,\n    "a": [1, 2],\n    "id2label": {"0": "x"}\n}\n'
    assert edited_json(text, {"id2label": {"0": "y", "1": "z"}}) == (
        '{\n    "b": 1,\n    "a": [\n        1,\n        2\n    ],\n    "id2label": {\n        "0": "y",\n'
        '        "1": "z"\n    }\n}\n'
    )
