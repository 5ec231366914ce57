"""SD101-SD107 through the CLI, in-process: the exact text for each rule on tiny RoBERTa
checkpoints built in code. (tests/model/test_differential.py holds the verdicts themselves to
transformers' own `from_pretrained` across many architectures.)"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from sdlint.cli import main  # noqa: E402
from tests.tiny_models import edit_config, edit_weights, save_roberta  # noqa: E402

pytestmark = pytest.mark.model
ROOT = Path(__file__).parent.parent.parent


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny checkpoint per class, saved once; each test copies the one it edits."""
    base = tmp_path_factory.mktemp("saved")
    return {
        "cls": save_roberta(base / "cls"),
        "base": save_roberta(base / "base", "RobertaModel"),
    }


@pytest.fixture
def copied(
    saved: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], Path]:
    """In a fresh working folder: copies the saved checkpoint of a name to `m`, returns `m`."""
    monkeypatch.chdir(tmp_path)

    def copy(name: str) -> Path:
        shutil.copytree(saved[name], "m")
        return Path("m")

    return copy


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def drop_and_add(tensors: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in tensors.items() if k != "roberta.encoder.layer.1.output.dense.bias"}
    return {**kept, "extra.weight": torch.zeros(3)}


def prefix_module(tensors: dict[str, Any]) -> dict[str, Any]:
    return {"module." + k: v for k, v in tensors.items()}


def to_bf16(tensors: dict[str, Any]) -> dict[str, Any]:
    return {k: v.to(torch.bfloat16) for k, v in tensors.items()}


# (id, checkpoint, edit of the weights, edit of config.json, extra args, exit code, exact output)
CASES: list[
    tuple[
        str,
        str,
        Callable[[dict[str, Any]], dict[str, Any]] | None,
        dict[str, Any],
        list[str],
        int,
        str,
    ]
] = [
    (
        "SD102-vocab",
        "cls",
        None,
        {"vocab_size": 130},
        [],
        1,
        "m/model.safetensors:1:1: SD102 `roberta.embeddings.word_embeddings.weight`: checkpoint has 120 where the config's vocab_size is 130 (checkpoint [120, 32], model [130, 32]); from_pretrained refuses to load it: if tokens were added, set vocab_size=120 in m/config.json (or call resize_token_embeddings before saving)\n"
        "Found 1 problem (1 error) in 1 file.\n",
    ),
    (
        "SD102-other-size",
        "cls",
        None,
        {"hidden_size": 48, "intermediate_size": 96},
        ["--select", "SD102"],
        1,
        "m/model.safetensors:1:1: SD102 the checkpoint belongs to another size of model: hidden_size is 32 in the checkpoint but 48 in the config (37 of 37 base-model tensors differ); use the config the checkpoint was trained with\n"
        "m/model.safetensors:1:1: SD102 5 findings under `roberta.embeddings.` (--verbose lists them), the first: `roberta.embeddings.LayerNorm.bias`: checkpoint has 32 where the config's hidden_size is 48 (checkpoint [32], model [48]); from_pretrained refuses to load it: set hidden_size=32 in m/config.json if the checkpoint is the one you meant\n"
        "m/model.safetensors:1:1: SD102 32 findings under `roberta.encoder.` (--verbose lists them), the first: `roberta.encoder.layer.0.attention.output.LayerNorm.bias`: checkpoint has 32 where the config's hidden_size is 48 (checkpoint [32], model [48]); from_pretrained refuses to load it: set hidden_size=32 in m/config.json if the checkpoint is the one you meant\n"
        "Found 38 problems (38 errors) in 1 file.\n",
    ),
    (
        "SD103-SD104",
        "cls",
        drop_and_add,
        {},
        [],
        1,
        "m/model.safetensors:1:1: SD103 `roberta.encoder.layer.1.output.dense.bias` is not in the checkpoint: transformers will initialize it randomly (the model will not work as trained)\n"
        "m/model.safetensors:1:1: SD104 `extra.weight` is in the checkpoint but RobertaForSequenceClassification has no such weight: transformers ignores it\n"
        "Found 2 problems (2 errors) in 1 file.\n"
        "No fixes available (1 hidden fix can be enabled with `--unsafe-fixes`).\n",
    ),
    (
        "SD103-SD104-base-into-head",
        "base",
        None,
        {"architectures": ["RobertaForSequenceClassification"]},
        [],
        0,  # the start of fine-tuning: info only
        "m/model.safetensors:1:1: SD103 4 findings under `classifier.` (--verbose lists them), the first: `classifier.dense.bias` is not in the checkpoint: transformers will initialize it randomly (the checkpoint has no task head: a base checkpoint loaded into a task class is the normal start of fine-tuning; train the head before using the model)\n"
        "m/model.safetensors:1:1: SD104 `pooler.dense.bias` is in the checkpoint but RobertaForSequenceClassification has no such weight: transformers ignores it (the checkpoint is a base model's, loaded into a task class: the base model uses it, so no fix removes it)\n"
        "m/model.safetensors:1:1: SD104 `pooler.dense.weight` is in the checkpoint but RobertaForSequenceClassification has no such weight: transformers ignores it (the checkpoint is a base model's, loaded into a task class: the base model uses it, so no fix removes it)\n"
        "Found 6 problems (6 infos) in 1 file.\n",
    ),
    (
        "SD105",
        "cls",
        to_bf16,
        {},
        ["--select", "SD105"],
        0,  # info never fails the run
        "m/model.safetensors:1:1: SD105 41 floating-point tensors are stored as BF16, not the config's dtype float32 (transformers converts them on load)\n"
        "Found 1 problem (1 info) in 1 file.\n",
    ),
    ("SD105-off-by-default", "cls", to_bf16, {}, [], 0, "All checks passed (1 file checked).\n"),
    (
        "SD106",
        "cls",
        prefix_module,
        {},
        [],
        1,
        "m/model.safetensors:1:1: SD106 [*] all 41 keys carry the prefix `module.` (DistributedDataParallel), which transformers does not strip: every weight would be missing and randomly initialized; strip the prefix from the keys\n"
        "Found 1 problem (1 error) in 1 file.\n"
        "[*] 1 fixable with `--fix`.\n",
    ),
    (
        "SD107-remote-code",
        "cls",
        None,
        {
            "model_type": "my-model",
            "auto_map": {"AutoModel": "modeling_x.MyModel"},
            "architectures": ["MyModel"],
        },
        [],
        1,
        "m/config.json:{auto_map_line}:3: SD107 model_type 'my-model' is not part of transformers 5.24.0 and config.json has an `auto_map`: the model's code lives in its repository, and sdlint never runs repository code. Check it against a transformers class with the same layout (--architecture), or skip the model checks for it.\n"
        "Found 1 problem (1 error) in 1 file.\n",
    ),
    ("clean", "cls", None, {}, [], 0, "All checks passed (1 file checked).\n"),
]


@pytest.mark.parametrize(
    ("name", "source", "weights", "config", "args", "code", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_model_rule_output(
    name: str,
    source: str,
    weights: Callable[[dict[str, Any]], dict[str, Any]] | None,
    config: dict[str, Any],
    args: list[str],
    code: int,
    expected: str,
    copied: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    copied(source)
    if weights:
        edit_weights(Path("m/model.safetensors"), weights)
    if config:
        edit_config(Path("m/config.json"), **config)
    lines = Path("m/config.json").read_text().splitlines()
    auto_map_line = next((i for i, line in enumerate(lines, 1) if '"auto_map"' in line), 0)
    expected = expected.replace("{auto_map_line}", str(auto_map_line))
    assert run(capsys, "check", "m", *args) == (code, expected)
    # a warm run (the verdict cached on disk) says exactly the same
    assert run(capsys, "check", "m", *args) == (code, expected)


def test_canonical_example(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's example: a 2-label head checked against the 5-label config."""
    monkeypatch.chdir(ROOT)
    code, out = run(
        capsys,
        "check",
        "examples/roberta-2-labels",
        "--model-config",
        "examples/roberta-5-labels/config.json",
    )
    assert code == 1
    assert out == (
        "examples/roberta-2-labels/model.safetensors:1:1: SD101 `classifier.out_proj.bias`: checkpoint head has 2 labels, config has num_labels=5 (checkpoint [2], model [5]); from_pretrained refuses to load it: set num_labels=2 (with matching id2label/label2id) in examples/roberta-5-labels/config.json to use the trained head, or re-initialize the head on purpose (ignore_mismatched_sizes=True)\n"
        "examples/roberta-2-labels/model.safetensors:1:1: SD101 `classifier.out_proj.weight`: checkpoint head has 2 labels, config has num_labels=5 (checkpoint [2, 32], model [5, 32]); from_pretrained refuses to load it: set num_labels=2 (with matching id2label/label2id) in examples/roberta-5-labels/config.json to use the trained head, or re-initialize the head on purpose (ignore_mismatched_sizes=True)\n"
        "Found 2 problems (2 errors) in 1 file.\n"
        "No fixes available (2 hidden fixes can be enabled with `--unsafe-fixes`).\n"
    )
    code, out = run(
        capsys,
        "check",
        "--output-format",
        "json",
        "examples/roberta-2-labels",
        "--model-config",
        "examples/roberta-5-labels/config.json",
    )
    weight = json.loads(out)[1]
    assert (weight["code"], weight["tensor"], weight["expected"], weight["actual"]) == (
        "SD101",
        "classifier.out_proj.weight",
        [5, 32],
        [2, 32],
    )
    # the example's own config matches its weights
    assert run(capsys, "check", "examples/roberta-2-labels")[0] == 0


def test_verbose_lists_every_key(
    copied: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    copied("base")
    code, out = run(
        capsys, "check", "m", "--architecture", "RobertaForSequenceClassification", "-v"
    )
    assert code == 0  # a base checkpoint loaded into a task class: all info
    assert [line.split()[2] for line in out.splitlines()[:-1] if " SD103 " in line] == [
        "`classifier.dense.bias`",
        "`classifier.dense.weight`",
        "`classifier.out_proj.bias`",
        "`classifier.out_proj.weight`",
    ]


def test_base_checkpoint_into_a_task_class_keeps_its_base_tensors(
    copied: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The start of fine-tuning (roberta-base into RobertaForSequenceClassification): no fix drops
    `pooler.*`, so the folder still loads as the RobertaModel its weights are."""
    copied("base")
    before = Path("m/model.safetensors").read_bytes()
    argv = ("check", "m", "--architecture", "RobertaForSequenceClassification")
    assert main([*argv, "--fix", "--unsafe-fixes"]) == 0
    assert "Fixed" not in capsys.readouterr().err
    assert Path("m/model.safetensors").read_bytes() == before
    assert run(capsys, "check", "m")[0] == 0  # still its own config's RobertaModel


def test_sharded_checkpoint_is_checked_as_one(
    saved: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import transformers

    monkeypatch.chdir(tmp_path)
    model = transformers.RobertaForSequenceClassification.from_pretrained(saved["cls"])
    model.save_pretrained("m", max_shard_size="20KB")
    shards = sorted(Path("m").glob("model-*.safetensors"))
    assert len(shards) > 2
    capsys.readouterr()  # transformers' own progress bars
    # pre-commit passes one changed shard: no key of the other shards may be reported missing
    files = len(shards) + 1  # and the index
    assert run(capsys, "check", str(shards[1])) == (
        0,
        f"All checks passed ({files} files checked).\n",
    )
    edit_config(
        Path("m/config.json"),
        id2label={str(i): f"L{i}" for i in range(3)},
        label2id={f"L{i}": i for i in range(3)},
    )
    code, out = run(capsys, "check", str(shards[0]))
    assert (
        code == 1
        and out.count(" SD101 ") == 2
        and "checkpoint head has 2 labels, config has num_labels=3" in out
    )


# A key in two shards (SD004): transformers 4.x compares every shard's copy with the model (a
# mismatch, or a dtype it cannot load, in the earlier copy fails the load), 5.x loads only the later
# copy. A finding about a copy names the shard that holds it: the file the user must open.
V4 = int(__import__("transformers").__version__.split(".", 1)[0]) < 5
HEAD = "classifier.out_proj.weight"


def two_copies(saved: dict[str, Path], earlier: str, later: str) -> tuple[str, str]:
    """`m`: the tiny 2-label checkpoint in shards, `HEAD` in two of them; each copy as
    named ("good", "5-labels": a [5, 32] head, "e8m0": a dtype 4.x cannot load). Returns the
    earlier and the later shard's names."""
    import transformers

    model = transformers.RobertaForSequenceClassification.from_pretrained(saved["cls"])
    model.save_pretrained("m", max_shard_size="20KB")
    weight_map = json.loads(Path("m/model.safetensors.index.json").read_text())["weight_map"]
    shards = sorted(set(weight_map.values()))
    # The shard that holds it and another, in load order (5.x saves the head in the first shard).
    first, last = sorted(
        {weight_map[HEAD], shards[-1] if weight_map[HEAD] == shards[0] else shards[0]}
    )
    good = model.state_dict()[HEAD]
    copies = {
        "good": good,
        "5-labels": torch.zeros(5, good.shape[1]),
        "e8m0": good.to(torch.float8_e8m0fnu),
    }
    edit_weights(Path("m", first), lambda t: {**t, HEAD: copies[earlier]})
    edit_weights(Path("m", last), lambda t: {**t, HEAD: copies[later]})
    return first, last


@pytest.mark.parametrize(
    ("earlier", "later", "code"),
    [("5-labels", "good", "SD101"), ("e8m0", "good", "SD102"), ("good", "5-labels", "SD101")],
)
def test_a_finding_about_a_shard_copy_names_its_shard(
    saved: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    earlier: str,
    later: str,
    code: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    first, last = two_copies(saved, earlier, later)
    capsys.readouterr()  # transformers' own progress bars
    _, out = run(capsys, "check", "--select", "SD1", "--output-format", "json", "m")
    found = [(f["code"], f["path"], f["tensor"]) for f in json.loads(out)]
    # The later copy is compared by every version; the earlier one by 4.x only.
    offending = f"m/{first}" if later == "good" else f"m/{last}"
    assert found == ([(code, offending, HEAD)] if V4 or later != "good" else [])


def test_no_label_count_loads_shard_copies_of_two_shapes(
    saved: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Under 4.x a [5, 32] earlier copy beside the [2, 32] one loaded: setting num_labels=5 would
    only move the mismatch to the other copy (the fix loop flipped num_labels until it gave up),
    so no config fix is offered and the advice names the other copy; re-initializing the
    offending copy fixes the shard that holds it."""
    monkeypatch.chdir(tmp_path)
    first, last = two_copies(saved, "5-labels", "good")
    capsys.readouterr()
    config = Path("m/config.json").read_bytes()
    code, out = run(capsys, "check", "--select", "SD101", "m", "--show-fixes")
    if not V4:
        assert code == 0  # 5.x loads the later copy only
        return
    assert code == 1 and out.count(" SD101 ") == 1, out
    assert f"{last} also holds a copy of `{HEAD}` in another shape (SD004)" in out
    assert "No fixes available." in out
    assert main(["check", "--select", "SD101", "m", "--fix", "--unsafe-fixes"]) == 1
    assert Path("m/config.json").read_bytes() == config
    argv = ["check", "--select", "SD101", "m", "--fix", "--unsafe-fixes", "--head-fix", "reinit"]
    assert main(argv) == 0
    assert f"Fixed m/{first}" in capsys.readouterr().err
    files = len(list(Path("m").iterdir())) - 1  # the shards and the index, not config.json
    assert run(capsys, "check", "--select", "SD1", "m") == (
        0,
        f"All checks passed ({files} files checked).\n",
    )


def test_an_index_beside_model_safetensors_is_not_model_checked(
    copied: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """transformers loads model.safetensors and ignores an index beside it (a stale sharded copy):
    the model rules judge only what it loads; the integrity rules still read the index."""
    from tests.safetensors_files import write_sharded

    copied("cls")
    write_sharded(Path("m"), {"model-00001-of-00001.safetensors": {"old.weight": ("F32", (2,))}})
    assert run(capsys, "check", "m") == (
        0,
        "note: model checks skipped for 1 checkpoint: from_pretrained loads another file of its "
        "folder instead (m/model.safetensors.index.json: model.safetensors is loaded)\n"
        "All checks passed (3 files checked).\n",
    )


def test_cached_model_checks_use_recorded_verdicts_only(
    copied: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--model-checks=cached` (the light pre-commit hook) never builds a model: it reports what a
    run with transformers recorded, from any transformers version, and nothing otherwise."""
    import sdlint.model
    import sdlint.model.cache

    copied("cls")
    five = {str(i): f"L{i}" for i in range(5)}
    edit_config(Path("m/config.json"), id2label=five, label2id={v: int(k) for k, v in five.items()})

    def no_build(*args: object) -> None:
        raise AssertionError("--model-checks=cached must not build a model")

    with monkeypatch.context() as light:
        light.setattr(sdlint.model, "_predict", no_build)
        assert run(capsys, "check", "m", "--model-checks=cached") == (
            0,
            "note: model checks skipped for 1 checkpoint: no recorded verdict for this config; "
            "run sdlint with transformers installed, or use the sdlint-model hook (m/config.json)\n"
            "All checks passed (1 file checked).\n",
        )
    code, out = run(capsys, "check", "m")  # a run with transformers records the verdict
    assert code == 1 and out.count(" SD101 ") == 2
    with monkeypatch.context() as light:
        light.setattr(sdlint.model, "_predict", no_build)
        light.setattr(sdlint.model.cache, "installed_version", lambda name: None)  # no transformers
        assert run(capsys, "check", "m", "--model-checks=cached") == (code, out)
        assert run(capsys, "check", "m", "--model-checks=off")[0] == 0


def test_a_variant_checkpoint_is_judged_as_from_pretrained_loads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`save_pretrained(variant="fp16", max_shard_size=...)` writes model.fp16-0000N-of-0000M
    shards and model.safetensors.index.fp16.json: one clean checkpoint (each shard was checked as
    a lone checkpoint, every tensor of the others missing: hundreds of SD103). Beside it, a plain
    model.safetensors of another head is a checkpoint of its own, judged on its own."""
    monkeypatch.chdir(tmp_path)
    save_roberta(Path("m"), variant="fp16", max_shard_size="20KB")
    shards = sorted(p.name for p in Path("m").glob("model.fp16-*.safetensors"))
    assert len(shards) > 2 and Path("m/model.safetensors.index.fp16.json").is_file()
    capsys.readouterr()  # save_pretrained's progress bar
    assert run(capsys, "check", "m") == (
        0,
        f"All checks passed ({len(shards) + 1} files checked).\n",
    )
    assert run(capsys, "check", f"m/{shards[1]}")[0] == 0  # a lone shard: with its index
    save_roberta(Path("plain"), num_labels=3)
    shutil.copy(Path("plain/model.safetensors"), Path("m/model.safetensors"))
    capsys.readouterr()
    code, out = run(capsys, "check", "-q", "m")
    assert code == 1 and out.count("m/model.safetensors:1:1: SD101 ") == 2, out
    assert "fp16" not in out
