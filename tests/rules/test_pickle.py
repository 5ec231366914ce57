"""SD006-SD009, and the model rules on torch.save checkpoints, through the CLI in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdlint.sources import Source
from tests.cli_helpers import run
from tests.pickle_files import (
    payloads,
    rewrite_zip,
    save_sharded,
    tied_state,
    torch_save,
    torch_zip,
)

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("in_tmp")


def test_unsafe_pickle(capsys: pytest.CaptureFixture[str]) -> None:
    marker = Path("marker")
    data, _ = payloads(marker)["exec-reduce"]
    torch_zip(Path("m/pytorch_model.bin"), data)
    code, out, _ = run(capsys, "check", "-q", "m")
    assert code == 1
    assert out == (
        "m/pytorch_model.bin:1:1: SD006 pickle calls `builtins.exec` (written `__builtin__.exec`, "
        "REDUCE at byte 59 of archive/data.pkl), which can run arbitrary code when the file is "
        "loaded (torch.load with weights_only=False, or torch before 2.6)\n"
        "m/pytorch_model.bin:1:1: SD009 not a state dict: the pickle holds a call of builtins.exec\n"
    )
    assert not marker.exists()


def test_unsafe_global_beside_tensors(capsys: pytest.CaptureFixture[str]) -> None:
    import collections

    torch_save(Path("w.pt"), {"w": torch.zeros(2), "c": collections.ChainMap()})
    code, out, _ = run(capsys, "check", "-q", "w.pt")
    assert code == 1
    assert out == (
        "w.pt:1:1: SD006 pickle calls `collections.ChainMap` (NEWOBJ at byte 194 of "
        "w/data.pkl), which is not among the globals torch.save writes for tensors when the "
        "file is loaded (torch.load with weights_only=False, or torch before 2.6)\n"
    )


def test_clean_state_dict_has_no_findings(capsys: pytest.CaptureFixture[str]) -> None:
    torch_save(Path("m/model.pt"), torch.nn.Linear(2, 2).state_dict())
    torch_save(Path("m/legacy.pth"), {"w": torch.zeros(2)}, legacy=True)
    code, out, _ = run(capsys, "check", "--ignore", "SD010", "m")
    assert code == 0 and out.endswith("\nAll checks passed (2 files checked).\n")
    assert "SD0" not in out
    # SD010's note is information: it never fails the run
    code, out, _ = run(capsys, "check", "-q", "m")
    assert code == 0
    assert [line.split(" ")[1] for line in out.splitlines()] == ["SD010", "SD010"]


def test_truncated_zip(capsys: pytest.CaptureFixture[str]) -> None:
    path = torch_save(Path("x.bin"), {"w": torch.zeros(100)})
    path.write_bytes(path.read_bytes()[:300])
    code, out, _ = run(capsys, "check", "-q", "x.bin")
    assert code == 1
    assert out == (
        "x.bin:1:1: SD007 not a readable zip archive (truncated download?): "
        "File is not a zip file\n"
    )


def test_storage_smaller_than_the_tensor_needs(capsys: pytest.CaptureFixture[str]) -> None:
    path = torch_save(Path("x.bin"), {"a": torch.zeros(2, 3)})
    rewrite_zip(path, lambda name, data: data[:8] if name.endswith("data/0") else data)
    code, out, _ = run(capsys, "check", "-q", "--select", "SD008", "x.bin")
    assert code == 1
    assert out.splitlines() == [
        "x.bin:1:1: SD008 storage `0` holds 8 bytes, but the pickle declares 6 elements of 4 "
        "bytes (24 bytes)",
        "x.bin:1:1: SD008 tensor `a` (float32, shape [2, 3], offset 0) needs 24 bytes of storage "
        "`0`, which holds 8",
    ]


def test_not_a_state_dict_is_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    torch_save(Path("x.pt"), [torch.zeros(2)])
    code, out, _ = run(capsys, "check", "-q", "x.pt")
    assert code == 1
    assert out == "x.pt:1:1: SD009 not a state dict: the pickle holds a list of 1 items\n"


# -- the model rules on torch.save checkpoints ----------------------------------------------------


def save_roberta_state_dict(folder: Path, *, legacy: bool = False, **config: object) -> Path:
    """The canonical case: `torch.save(model.state_dict(), "pytorch_model.bin")`."""
    transformers = pytest.importorskip("transformers")
    from tests.tiny_models import roberta_config

    torch.manual_seed(0)
    model = transformers.RobertaForSequenceClassification(roberta_config(**config))
    torch_save(folder / "pytorch_model.bin", model.state_dict(), legacy=legacy)
    return folder


@pytest.mark.model
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_state_dict_saved_with_torch_save_gives_sd101(
    capsys: pytest.CaptureFixture[str], legacy: bool
) -> None:
    from tests.tiny_models import save_config

    folder = save_roberta_state_dict(Path("m"), legacy=legacy, num_labels=2)
    save_config(folder, num_labels=5)
    code, out, _ = run(capsys, "check", "-q", "--no-cache", "--select", "SD1", "m")
    assert code == 1
    assert out.count("m/pytorch_model.bin:1:1: SD101 `classifier.out_proj.") == 2
    assert "checkpoint head has 2 labels, config has num_labels=5" in out
    assert out.count("\n") == 2


@pytest.mark.model
def test_model_rules_agree_with_from_pretrained(capsys: pytest.CaptureFixture[str]) -> None:
    """transformers itself refuses the same pytorch_model.bin for the same reason."""
    transformers = pytest.importorskip("transformers")
    from tests.tiny_models import save_config

    folder = save_roberta_state_dict(Path("m"), num_labels=2)
    save_config(folder, num_labels=5)
    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
        transformers.RobertaForSequenceClassification.from_pretrained(folder)
    save_config(folder, num_labels=2)
    transformers.RobertaForSequenceClassification.from_pretrained(folder)
    code, out, _ = run(capsys, "check", "-q", "--no-cache", "--ignore", "SD010", "m")
    assert (code, out) == (0, "")


@pytest.mark.model
def test_safetensors_beside_takes_precedence(capsys: pytest.CaptureFixture[str]) -> None:
    """transformers loads model.safetensors before pytorch_model.bin: the model rules judge what
    it loads; the pickle still gets the pickle rules."""
    from tests.tiny_models import save_config, save_roberta

    folder = save_roberta(Path("m"), num_labels=2)  # model.safetensors, 2 labels
    save_roberta_state_dict(folder, num_labels=3)  # pytorch_model.bin, 3 labels
    save_config(folder, num_labels=5)
    code, out, _ = run(capsys, "check", "-q", "--no-cache", "m")
    assert code == 1
    assert {line.split(" ")[0] for line in out.splitlines()} == {"m/model.safetensors:1:1:"}
    assert "checkpoint head has 2 labels" in out


@pytest.mark.model
def test_weight_fixes_are_not_offered_for_pickles(capsys: pytest.CaptureFixture[str]) -> None:
    """sdlint rewrites weights as safetensors only: a pickle's SD101 offers the config edit, never
    the re-initialized head."""
    import json

    from tests.tiny_models import save_config

    folder = save_roberta_state_dict(Path("m"), num_labels=2)
    save_config(folder, num_labels=5)
    fixes = {}
    for head_fix in ("config", "reinit"):
        _, out, _ = run(
            capsys, "check", "--no-cache", "--output-format", "json", "--head-fix", head_fix, "m"
        )
        fixes[head_fix] = [d["fix"] for d in json.loads(out) if d["code"] == "SD101"]
    assert len(fixes["config"]) == 2 and all(f is not None for f in fixes["config"])
    assert fixes["reinit"] == [None, None]


# -- discovery -------------------------------------------------------------------------------------


def test_folder_search_picks_weights_not_trainer_state(capsys: pytest.CaptureFixture[str]) -> None:
    from sdlint.discover import find_checkpoints

    for name in ("pytorch_model.bin", "model.pt", "last.ckpt", "optimizer.pt", "rng_state.pth"):
        torch_save(Path("run") / name, {"w": torch.zeros(2)})
    Path("run/training_args.bin").write_bytes(b"\x80\x02N.")
    Path("run/tokenizer.bin").write_bytes(b"other format")
    found = sorted(c.path.name for c in find_checkpoints([Path("run")]))
    assert found == ["last.ckpt", "model.pt", "pytorch_model.bin"]
    assert {c.format for c in find_checkpoints([Path("run")])} == {"pickle"}
    # named on the command line, any torch.save file is checked
    assert [c.path.name for c in find_checkpoints([Path("run/optimizer.pt")])] == ["optimizer.pt"]


def test_sharded_pickle_checkpoint(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from sdlint.discover import find_checkpoints

    folder = Path("m")
    torch_save(folder / "pytorch_model-00001-of-00002.bin", {"a": torch.zeros(2)})
    torch_save(folder / "pytorch_model-00002-of-00002.bin", {"b": torch.zeros(3)})
    weight_map = {"a": "pytorch_model-00001-of-00002.bin", "b": "pytorch_model-00002-of-00002.bin"}
    (folder / "pytorch_model.bin.index.json").write_text(
        json.dumps({"metadata": {"total_size": 20}, "weight_map": weight_map})
    )
    (checkpoint,) = find_checkpoints([folder / "pytorch_model-00002-of-00002.bin"])
    assert checkpoint.path.name == "pytorch_model.bin.index.json"
    assert checkpoint.format == "pickle"
    assert {name: t.shape for name, t in checkpoint.tensors.items()} == {"a": (2,), "b": (3,)}
    code, out, _ = run(capsys, "check", "--ignore", "SD010", str(folder))
    assert code == 0 and out.endswith("\nAll checks passed (3 files checked).\n")
    assert "SD0" not in out
    # clean shards: SD010 notes that the whole checkpoint could be safetensors
    code, out, _ = run(capsys, "check", "-q", str(folder))
    assert code == 0
    assert [line.split(" ")[:2] for line in out.splitlines()] == [
        ["m/pytorch_model.bin.index.json:1:1:", "SD010"]
    ]


def test_lfs_pointer_in_place_of_a_pickle(capsys: pytest.CaptureFixture[str]) -> None:
    Path("pytorch_model.bin").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1234\n"
    )
    code, out, _ = run(capsys, "check", "-q", "pytorch_model.bin")
    assert code == 1
    assert out == (
        "pytorch_model.bin:1:1: SD005 file is a Git LFS pointer, not the weights (object "
        'sha256:abc, 1,234 bytes): fetch them with `git lfs pull --include="pytorch_model.bin"`\n'
    )


@pytest.mark.model
@pytest.mark.parametrize("mutation", ["none", "drop", "add", "prefix", "resize"])
def test_same_verdict_as_the_same_weights_in_safetensors(
    capsys: pytest.CaptureFixture[str], mutation: str
) -> None:
    """The model rules judge a pickle exactly as the same tensors saved as safetensors."""
    transformers = pytest.importorskip("transformers")
    from safetensors.torch import save_file

    from tests.tiny_models import roberta_config, save_config

    torch.manual_seed(0)
    state = transformers.RobertaForSequenceClassification(roberta_config()).state_dict()
    state = {k: v.clone() for k, v in state.items()}
    if mutation == "drop":
        del state["roberta.encoder.layer.1.output.dense.bias"]
    elif mutation == "add":
        state["extra.weight"] = torch.zeros(2)
    elif mutation == "prefix":
        state = {f"module.{k}": v for k, v in state.items()}
    elif mutation == "resize":
        state["roberta.embeddings.word_embeddings.weight"] = torch.zeros(130, 32)
    outputs = []
    for folder in (Path("st"), Path("pt")):
        folder.mkdir()
        if folder.name == "st":
            save_file(state, str(folder / "model.safetensors"))
        else:
            torch_save(folder / "pytorch_model.bin", state)
        save_config(folder)
        _, out, _ = run(capsys, "check", "-q", "--no-cache", "--select", "SD1", str(folder))
        outputs.append(
            [line.split(" ", 1)[1].replace(f"{folder}/", "") for line in out.splitlines()]
        )
    assert outputs[0] == outputs[1]
    assert bool(outputs[0]) == (mutation != "none")


# -- SD004 on torch.save shards (`pytorch_model.bin.index.json`) -----------------------------------


def edit_index(path: Path, edit: object) -> None:
    import json

    document = json.loads(path.read_text())
    edit(document)  # type: ignore[operator]
    path.write_text(json.dumps(document))


def sd004(capsys: pytest.CaptureFixture[str], folder: Path) -> list[str]:
    _, out, _ = run(capsys, "check", "-q", "--select", "SD004", str(folder))
    return [line.split(": SD004 ", 1)[1] for line in out.splitlines()]


def test_sharded_pickle_as_save_pretrained_writes_it(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    index = save_sharded(Path("m"), tied_state())
    document = json.loads(index.read_text())
    assert len(set(document["weight_map"].values())) > 1
    # huggingface_hub counts the shared storage of the tied weights once
    assert document["metadata"]["total_size"] == (40 + 32) * 4
    assert sd004(capsys, Path("m")) == []
    # older writers summed every tensor's bytes: accepted too
    edit_index(index, lambda d: d["metadata"].update(total_size=(40 + 32 + 40) * 4))
    assert sd004(capsys, Path("m")) == []
    edit_index(index, lambda d: d["metadata"].update(total_size=1, total_parameters=112))
    assert sd004(capsys, Path("m")) == [
        "metadata.total_size is 1 but the shards' storages hold 288 bytes (their tensors 448)"
    ]
    edit_index(index, lambda d: d["metadata"].update(total_size=288, total_parameters=7))
    assert sd004(capsys, Path("m")) == [
        "metadata.total_parameters is 7 but the shards' tensors hold 112 elements (72 without "
        "tied copies)"
    ]


def test_sharded_pickle_index_out_of_step(capsys: pytest.CaptureFixture[str]) -> None:
    index = save_sharded(Path("m"), tied_state())
    shards = sorted(p.name for p in Path("m").glob("pytorch_model-*.bin"))
    assert len(shards) == 2

    def edit(document: dict[str, dict[str, object]]) -> None:
        weight_map = document["weight_map"]
        assert weight_map["a.weight"] == shards[1]
        weight_map["a.weight"] = shards[0]
        weight_map["ghost.weight"] = shards[0]
        del weight_map["embed.weight"]
        del document["metadata"]

    edit_index(index, edit)
    # a.weight was the second shard's only tensor: that shard is now listed by no key
    assert sd004(capsys, Path("m")) == [
        "index has no `metadata` object; transformers refuses to load it (KeyError: 'metadata')",
        f"{shards[1]} is named like a shard of this index but the index does not list it; its "
        "tensors are never loaded",
        f"index maps `a.weight` to {shards[0]}, but that shard has no such tensor",
        f"tensor `embed.weight` in {shards[0]} is not in the index's weight_map",
        f"index maps `ghost.weight` to {shards[0]}, but that shard has no such tensor",
    ]


def test_sharded_pickle_key_in_two_shards(capsys: pytest.CaptureFixture[str]) -> None:
    index = save_sharded(Path("m"), tied_state())
    shards = sorted(p.name for p in Path("m").glob("pytorch_model-*.bin"))
    torch_save(Path("m", shards[1]), {"a.weight": torch.zeros(8, 4), "embed.weight": torch.ones(1)})
    assert sd004(capsys, Path("m")) == [
        "metadata.total_size is 288 but the shards' storages hold 292 bytes (their tensors 452)",
        f"tensor `embed.weight` is in 2 shards ({shards[0]}, {shards[1]}); transformers "
        f"silently keeps the copy in {shards[1]}",
    ]
    assert index.exists()


def test_sharded_pickle_missing_and_unlisted_shards(capsys: pytest.CaptureFixture[str]) -> None:
    index = save_sharded(Path("m"), tied_state())
    listed = sorted(p.name for p in Path("m").glob("pytorch_model-*.bin"))
    Path("m", listed[1]).rename(Path("m", "pytorch_model-00009-of-00009.bin"))
    found = sd004(capsys, Path("m"))
    assert found == [
        f"shard {listed[1]} is listed in the index (1 tensor) but does not exist",
        "pytorch_model-00009-of-00009.bin is named like a shard of this index but the index does "
        "not list it; its tensors are never loaded",
    ]
    assert index.exists()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../outside.bin", "leads out of the folder (`..`)"),
        ("/tmp/outside.bin", "is an absolute path"),
        ("link.bin", "is a symlink leading out of the folder"),
    ],
)
def test_sharded_pickle_confinement(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, name: str, reason: str
) -> None:
    """A shard named outside the folder is a finding and is never opened."""
    from sdlint.formats.pickle import read_pickle

    outside = torch_save(Path("outside.bin"), {"x": torch.zeros(2)})
    index = save_sharded(Path("m/sub"), tied_state())
    Path("m/sub/link.bin").symlink_to(outside.resolve())
    edit_index(index, lambda d: d["weight_map"].update(x=name))
    opened: list[Path] = []

    def spy(source: Source) -> object:
        assert source.ref.local is not None
        opened.append(source.ref.local.resolve())
        return read_pickle(source)

    monkeypatch.setattr("sdlint.discover.read_pickle", spy)
    found = sd004(capsys, Path("m/sub"))
    assert found == [
        f"index maps 1 tensor to shard {name!r}, which {reason}: a shard must be a regular file "
        "inside the checkpoint's folder, so sdlint does not open it"
    ]
    assert opened and outside.resolve() not in opened


def test_legacy_tar_format_is_a_finding_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    """torch before 0.4 wrote a tar archive; torch.load refuses it with weights_only=True (the
    default since 2.6). sdlint names the format, and its fix never touches the file."""
    import io
    import pickle
    import tarfile

    path = Path("old.pt")
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in (
            ("sys_info", pickle.dumps({"little_endian": True})),
            ("pickle", pickle.dumps({"w": 1}, protocol=2)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    before = path.read_bytes()
    code, out, err = run(capsys, "check", "-q", "--fix", "--unsafe-fixes", str(path))
    assert (code, err) == (1, "")
    assert out == (
        "old.pt:1:1: SD007 legacy tar format of torch before 0.4: sdlint does not list its "
        "tensors, and torch.load only loads it with weights_only=False, which runs its pickles\n"
    )
    assert path.read_bytes() == before and not Path("old.safetensors").exists()
    with pytest.raises(RuntimeError, match=r"legacy \.tar format"):
        torch.load(path, weights_only=True)
