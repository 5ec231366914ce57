"""SD004 (sharded index) and SD005 cases beyond the CLI snapshots; SD001-SD003 are held to the
reference reader in tests/test_reference_agreement.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sdlint.engine import Settings, check_paths
from tests.safetensors_files import TensorSpecs, write_sharded

SHARD1, SHARD2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
SHARDS: dict[str, TensorSpecs] = {
    SHARD1: {"a.weight": ("F32", (2, 2)), "b.weight": ("F32", (3,))},
    SHARD2: {"c.weight": ("BF16", (4,))},
}
FULL_MAP = {"a.weight": SHARD1, "b.weight": SHARD1, "c.weight": SHARD2}


def sd004(folder: Path) -> list[str]:
    report = check_paths([folder], Settings(select=("SD004",)))
    return [d.message for d in report.diagnostics]


def rewrite_index(folder: Path, change: Callable[[dict[str, object]], object]) -> None:
    path = folder / "model.safetensors.index.json"
    index = json.loads(path.read_text())
    change(index)
    path.write_text(json.dumps(index))


def test_clean_sharded_checkpoint(tmp_path: Path) -> None:
    write_sharded(tmp_path, SHARDS)
    assert check_paths([tmp_path]).diagnostics == ()


def test_missing_shard(tmp_path: Path) -> None:
    write_sharded(tmp_path, SHARDS)
    (tmp_path / SHARD2).unlink()
    assert sd004(tmp_path) == [
        f"shard {SHARD2} is listed in the index (1 tensor) but does not exist"
    ]


def test_index_lists_a_key_its_shard_lacks(tmp_path: Path) -> None:
    write_sharded(tmp_path, SHARDS, weight_map=FULL_MAP | {"ghost.weight": SHARD2})
    assert sd004(tmp_path) == [
        f"index maps `ghost.weight` to {SHARD2}, but that shard has no such tensor"
    ]


def test_shard_key_not_in_index(tmp_path: Path) -> None:
    write_sharded(
        tmp_path, SHARDS, weight_map={k: v for k, v in FULL_MAP.items() if k != "b.weight"}
    )
    assert sd004(tmp_path) == [f"tensor `b.weight` in {SHARD1} is not in the index's weight_map"]


def test_key_in_two_shards(tmp_path: Path) -> None:
    shards: dict[str, TensorSpecs] = {
        SHARD1: SHARDS[SHARD1],
        SHARD2: {**SHARDS[SHARD2], "a.weight": ("F32", (2, 2))},
    }
    write_sharded(tmp_path, shards, weight_map=FULL_MAP)
    messages = sd004(tmp_path)
    assert (
        f"tensor `a.weight` is in 2 shards ({SHARD1}, {SHARD2}); transformers silently keeps the copy in {SHARD2}"
        in messages
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda i: i["metadata"].update(total_size=99),
            "metadata.total_size is 99 but the shards' tensors hold 36 bytes",
        ),
        (
            lambda i: i["metadata"].update(total_size="36"),
            "metadata.total_size is '36' but the shards' tensors hold 36 bytes",
        ),
        (
            lambda i: i["metadata"].update(total_parameters=1),
            "metadata.total_parameters is 1 but the shards' tensors hold 11 elements",
        ),
        (
            lambda i: i.pop("metadata"),
            "index has no `metadata` object; transformers refuses to load it (KeyError: 'metadata')",
        ),
        (
            lambda i: i.pop("weight_map"),
            "index has no `weight_map` object of tensor name -> shard file",
        ),
    ],
)
def test_index_metadata(
    tmp_path: Path, change: Callable[[dict[str, object]], object], message: str
) -> None:
    write_sharded(tmp_path, SHARDS)
    rewrite_index(tmp_path, change)
    assert sd004(tmp_path) == [message]


def test_unreadable_index(tmp_path: Path) -> None:
    write_sharded(tmp_path, SHARDS)
    (tmp_path / "model.safetensors.index.json").write_text("{oops")
    (message,) = sd004(tmp_path)
    assert message.startswith("index is not valid JSON: Expecting property name")


def test_unlisted_shard_file(tmp_path: Path) -> None:
    write_sharded(tmp_path, SHARDS, weight_map={"a.weight": SHARD1, "b.weight": SHARD1})
    report = check_paths([tmp_path / SHARD2], Settings(select=("SD004",)))
    assert next((d.severity.value, d.message) for d in report.diagnostics) == (
        "warning",
        f"{SHARD2} is named like a shard of this index but the index does not list it; its tensors are never loaded",
    )


def test_broken_shard_is_reported_on_the_shard(tmp_path: Path) -> None:
    write_sharded(tmp_path, SHARDS)
    (tmp_path / SHARD2).write_bytes(b"\x00")
    report = check_paths([tmp_path])
    assert [(d.code, d.path) for d in report.diagnostics] == [
        ("SD001", (tmp_path / SHARD2).as_posix())
    ]
