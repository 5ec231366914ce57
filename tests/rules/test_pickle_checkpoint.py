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
from tests.pickle_files import save_sharded, tied_state, torch_save

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


def load_all(
    cls: Any, folder: Path, variant: str | None = None
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    model, info = cls.from_pretrained(folder, output_loading_info=True, variant=variant)
    loading = {k: sorted(map(str, v)) for k, v in info.items() if k != "error_msgs"}
    return model.state_dict(), loading


def assert_loads_the_same(
    cls: Any, original: Path, converted: Path, saved: dict[str, Any], variant: str | None = None
) -> None:
    """`cls.from_pretrained` loads from `converted` what it loads from `original` (both with
    `variant`): the same loading info, every tensor of the same dtype and equal, and equal to what
    was `saved`."""
    expected, expected_info = load_all(cls, original, variant)
    got, info = load_all(cls, converted, variant)
    assert info == expected_info
    assert set(got) == set(expected)
    for name, tensor in expected.items():
        assert got[name].dtype == tensor.dtype, name
        assert torch.equal(got[name], tensor), name
    for name, tensor in saved.items():
        assert torch.equal(got[name], tensor), name


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

    assert_loads_the_same(getattr(transformers, architecture), original, converted, state)


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


# -- sharded checkpoints: every shard and the index converted, or nothing ------------------------


def save_shards(folder: Path, state: dict[str, Any]) -> dict[str, bytes]:
    """A sharded checkpoint as `save_pretrained(safe_serialization=False)` writes it; returns the
    folder's files and their bytes."""
    save_sharded(folder, state)
    return files_of(folder)


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


SHARDS = ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]
CONVERTED = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]


def test_sharded_checkpoint_is_noted_and_converted_whole(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from safetensors.torch import load_file

    from tests.test_imports import fresh_process

    state = tied_state()
    assert list(save_shards(Path("m"), state)) == [*SHARDS, "pytorch_model.bin.index.json"]
    code, out, _ = run(capsys, "check", "--output-format", "json", "m")
    (finding,) = json.loads(out)
    assert (code, finding["code"], finding["path"]) == (
        0,
        "SD010",
        "m/pytorch_model.bin.index.json",
    )
    assert finding["message"] == (
        "sharded pickle checkpoint of 3 tensors in 2 shards could be safetensors "
        "(model.safetensors.index.json and its shards), which loads without running code"
    )
    assert finding["fix"] == {
        "applicability": "unsafe",
        "description": f"Convert the shards to {CONVERTED[0]}, ... and the index to "
        "model.safetensors.index.json (3 tensors in 2 shards, copied and verified), and remove "
        "the pickles and pytorch_model.bin.index.json (each kept as <name>.bak with --backup)",
    }
    # The fix, in a fresh process: the pickles are never unpickled, torch never imported.
    report = fresh_process(
        Path("cache"), "check", "--fix", "--unsafe-fixes", str(Path("m").resolve())
    )
    assert (report["code"], report["heavy"]) == (0, [])
    assert list(files_of(Path("m"))) == [*CONVERTED, "model.safetensors.index.json"]
    index = json.loads(Path("m/model.safetensors.index.json").read_text())
    converted: dict[str, Any] = {}
    for shard in CONVERTED:
        tensors = load_file(f"m/{shard}")
        assert {k for k, v in index["weight_map"].items() if v == shard} == set(tensors)
        converted.update(tensors)
    assert set(converted) == set(state)
    assert all(torch.equal(converted[k], v) for k, v in state.items())
    # counted from the new shards: the tied tensor is two copies there (one storage before)
    assert index["metadata"] == {"total_size": (10 * 4 + 8 * 4 + 10 * 4) * 4}
    assert run(capsys, "check", "-q", "m")[:2] == (0, "")


def test_sharded_backup_keeps_every_original(capsys: pytest.CaptureFixture[str]) -> None:
    before = save_shards(Path("m"), tied_state())
    code, _, err = run(capsys, "check", "--fix", "--unsafe-fixes", "--backup", "m")
    assert code == 0, err
    after = files_of(Path("m"))
    assert {f"{name}.bak": data for name, data in before.items()} == {
        name: data for name, data in after.items() if name.endswith(".bak")
    }
    assert sorted(n for n in after if not n.endswith(".bak")) == [
        *CONVERTED,
        "model.safetensors.index.json",
    ]


@pytest.mark.parametrize("fails", ["second-shard", "index"])
def test_a_failure_midway_leaves_the_folder_as_it_was(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fails: str
) -> None:
    from sdlint import fixes, rewrite
    from tests.write_faults import fail_after

    before = save_shards(Path("m"), tied_state())
    if fails == "index":

        def failing_index(*args: object, **kwargs: object) -> object:
            raise rewrite.RewriteError(Path("m/pytorch_model.bin.index.json"), "simulated")

        monkeypatch.setattr(fixes, "convert_index", failing_index)
    else:  # the first new shard is written whole, the second fails partway
        first = rewrite.convert_pickle(Path("m") / SHARDS[0], Path("probe.safetensors"))
        Path("m", SHARDS[0]).write_bytes(before[SHARDS[0]])
        monkeypatch.setattr(rewrite, "_write", fail_after(first.new_size + 10))
    code, _, err = run(capsys, "check", "--fix", "--unsafe-fixes", "m")
    assert code == 2
    assert "put back as they were" in err
    assert files_of(Path("m")) == before


def test_sharded_conversion_never_writes_over_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    save_shards(Path("m"), tied_state())
    Path("m", CONVERTED[1]).write_bytes(b"mine!")
    before = files_of(Path("m"))
    _, out, _ = run(capsys, "check", "-q", "--fix", "--unsafe-fixes", "m")
    assert (
        "m/pytorch_model.bin.index.json:1:1: SD010 sharded pickle checkpoint of 3 tensors in 2 "
        f"shards could be safetensors, but {CONVERTED[1]} already exists beside it: remove the "
        "pickles if it holds the same weights\n"
    ) in out
    assert files_of(Path("m")) == before


@pytest.mark.parametrize("stale", ["ghost-key", "moved-key", "unlisted-shard", "missing-shard"])
def test_sharded_checkpoint_out_of_step_with_its_index_is_not_noted(
    capsys: pytest.CaptureFixture[str], stale: str
) -> None:
    """SD004 says what is out of step; converting would carry it over or leave a shard behind."""
    save_shards(Path("m"), tied_state())
    index = Path("m/pytorch_model.bin.index.json")
    document = json.loads(index.read_text())
    if stale == "ghost-key":
        document["weight_map"]["ghost.weight"] = SHARDS[0]
    elif stale == "moved-key":
        document["weight_map"]["a.weight"] = SHARDS[0]
    elif stale == "unlisted-shard":
        torch_save(Path("m/pytorch_model-00003-of-00002.bin"), {"x": torch.zeros(2)})
    else:
        Path("m", SHARDS[1]).unlink()
    index.write_text(json.dumps(document))
    _, out, _ = run(capsys, "check", "-q", "--unsafe-fixes", "m")
    assert "SD004" in out and "SD010" not in out


def test_diff_shows_the_sharded_conversion(capsys: pytest.CaptureFixture[str]) -> None:
    before = save_shards(Path("m"), tied_state())
    code, out, err = run(capsys, "check", "--diff", "--unsafe-fixes", "m")
    assert (code, err) == (0, "Would fix 1 problem.\n")
    assert out.endswith(
        "--- m/pytorch_model.bin.index.json\n"
        "+++ m/model.safetensors.index.json\n"
        f"  renamed shard {SHARDS[0]} -> {CONVERTED[0]}\n"
        f"  renamed shard {SHARDS[1]} -> {CONVERTED[1]}\n"
        "  removed   m/pytorch_model.bin.index.json (kept as pytorch_model.bin.index.json.bak "
        "with --backup)\n"
    )
    assert f"--- m/{SHARDS[1]}\n+++ m/{CONVERTED[1]}\n  converted a.weight F32 [8, 4]\n" in out
    assert files_of(Path("m")) == before


def save_pretrained_sharded(model: Any, folder: Path, variant: str | None = None) -> None:
    """`model.save_pretrained(folder, safe_serialization=False, max_shard_size=..., variant=...)`:
    pickle shards under transformers 4.x. transformers 5 writes safetensors whatever it is asked,
    so there the shards are written by the function 4.x's save_pretrained writes them with, and
    named as it names them (`pytorch_model.fp16-00001-of-00007.bin`,
    `pytorch_model.bin.index.fp16.json`)."""
    import transformers

    model.save_pretrained(folder, safe_serialization=False, max_shard_size="20KB", variant=variant)
    if int(transformers.__version__.split(".")[0]) >= 5:
        for path in folder.glob("model*.safetensors*"):
            path.unlink()
        from huggingface_hub import save_torch_state_dict

        stem = f"pytorch_model.{variant}" if variant else "pytorch_model"
        save_torch_state_dict(
            model.state_dict(),
            folder,
            filename_pattern=stem + "{suffix}.bin",
            safe_serialization=False,
            max_shard_size="20KB",
        )
        if variant:  # 4.x's _add_variant puts the variant before `.json`
            index = folder / f"{stem}.bin.index.json"
            index.rename(folder / f"pytorch_model.bin.index.{variant}.json")


@pytest.mark.model
@pytest.mark.parametrize(
    ("architecture", "variant"),
    [
        ("RobertaForSequenceClassification", None),
        ("RobertaForMaskedLM", None),
        ("RobertaForSequenceClassification", "fp16"),  # save_pretrained(variant="fp16") names
    ],
)
def test_from_pretrained_loads_the_same_tensors_from_converted_shards(
    capsys: pytest.CaptureFixture[str], architecture: str, variant: str | None
) -> None:
    """A variant's shards and index are converted to the names save_pretrained gives the same
    variant in safetensors (model.fp16-00001-of-00007.safetensors,
    model.safetensors.index.fp16.json): from_pretrained(variant="fp16") loads them."""
    transformers = pytest.importorskip("transformers")
    from tests.tiny_models import roberta_config

    torch.manual_seed(0)
    cls = getattr(transformers, architecture)
    model = cls(roberta_config())
    original, converted = Path("original"), Path("converted")
    save_pretrained_sharded(model, original, variant)
    stem, index = ("model", "model.safetensors.index.json")
    if variant:
        stem, index = f"model.{variant}", f"model.safetensors.index.{variant}.json"
    shards = sorted(p.name for p in original.glob(f"pytorch_{stem}-*.bin"))
    assert len(shards) > 2
    shutil.copytree(original, converted)
    capsys.readouterr()
    code, _, err = run(capsys, "check", "--fix", "--unsafe-fixes", "--no-cache", str(converted))
    assert code == 0 and f"Fixed {converted}/{index}" in err, err
    n = len(shards)
    assert sorted(p.name for p in converted.iterdir()) == [
        "config.json",
        *(f"{stem}-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)),
        index,
    ]
    assert_loads_the_same(cls, original, converted, model.state_dict(), variant)


@pytest.mark.model
def test_a_variant_pickle_converts_to_the_variant_safetensors_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`pytorch_model.fp16.bin` -> `model.fp16.safetensors`, which from_pretrained(variant="fp16")
    loads (it was `pytorch_model.fp16.safetensors`, which no loader looks for)."""
    transformers = pytest.importorskip("transformers")
    from tests.tiny_models import roberta_config, save_config

    torch.manual_seed(0)
    model = transformers.RobertaForSequenceClassification(roberta_config())
    original, converted = Path("original"), Path("converted")
    torch_save(original / "pytorch_model.fp16.bin", model.state_dict())
    save_config(original)
    shutil.copytree(original, converted)
    code, _, err = run(capsys, "check", "--fix", "--unsafe-fixes", "--no-cache", str(converted))
    assert code == 0 and f"Fixed {converted}/model.fp16.safetensors" in err, err
    assert sorted(p.name for p in converted.iterdir()) == ["config.json", "model.fp16.safetensors"]
    cls = transformers.RobertaForSequenceClassification
    assert_loads_the_same(cls, original, converted, model.state_dict(), "fp16")
