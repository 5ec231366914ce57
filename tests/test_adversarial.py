"""Hostile and odd input (issue 9): each case is built here, never downloaded, and gives a finding
or a one-line usage error, never a traceback, a hang or exit 2 for a problem with a user's file.
The audit hook proves that nothing outside the given folder is opened."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sdlint.cli import main
from tests.audit import opened_files
from tests.safetensors_files import TensorSpecs, header_for, write_raw

A: TensorSpecs = {"a.weight": ("F32", (2,))}
B: TensorSpecs = {"b.weight": ("F32", (3,))}
SECRET = b"root:x:0:0:root:/root:/bin/bash\n" * 4  # text that must never reach a report


def weights(path: Path, tensors: TensorSpecs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header, size = header_for(tensors)
    write_raw(path, header, b"\0" * size)
    return path


def sharded(folder: Path, second: str) -> Path:
    """An index whose first shard is fine and whose second entry is `second`."""
    weights(folder / "model-00001-of-00002.safetensors", A)
    index = folder / "model.safetensors.index.json"
    index.write_text(
        json.dumps(
            {
                "metadata": {"total_size": 20},
                "weight_map": {"a.weight": "model-00001-of-00002.safetensors", "b.weight": second},
            }
        )
    )
    return index


def outside(root: Path) -> Path:
    """A folder beside the checkpoint holding a valid shard and a secret."""
    weights(root / "outside" / "model-00002-of-00002.safetensors", B)
    (root / "outside" / "passwd").write_bytes(SECRET)
    return root / "outside"


def dotdot(root: Path, folder: Path) -> str:
    outside(root)
    return "../outside/model-00002-of-00002.safetensors"


def absolute(root: Path, folder: Path) -> str:
    return str(outside(root) / "passwd")


def symlink_out(root: Path, folder: Path) -> str:
    (folder / "model-00002-of-00002.safetensors").symlink_to(
        outside(root) / "model-00002-of-00002.safetensors"
    )
    return "model-00002-of-00002.safetensors"


def symlink_to_device(root: Path, folder: Path) -> str:
    (folder / "model-00002-of-00002.safetensors").symlink_to("/dev/zero")
    return "model-00002-of-00002.safetensors"


def a_folder(root: Path, folder: Path) -> str:
    (folder / "model-00002-of-00002.safetensors").mkdir()
    return "model-00002-of-00002.safetensors"


def a_fifo(root: Path, folder: Path) -> str:
    os.mkfifo(folder / "model-00002-of-00002.safetensors")
    return "model-00002-of-00002.safetensors"


def a_loop(root: Path, folder: Path) -> str:
    (folder / "model-00002-of-00002.safetensors").symlink_to("model-00002-of-00002.safetensors")
    return "model-00002-of-00002.safetensors"


def nul_byte(root: Path, folder: Path) -> str:
    return "model-00002\0-of-00002.safetensors"


def empty(root: Path, folder: Path) -> str:
    return ""


# (id, the second weight_map entry, words the SD004 message has)
REFUSED: list[tuple[str, Callable[[Path, Path], str], str]] = [
    ("dotdot", dotdot, "leads out of the folder"),
    ("absolute", absolute, "is an absolute path"),
    ("symlink-out", symlink_out, "is a symlink leading out of the folder"),
    ("symlink-to-device", symlink_to_device, "is a symlink leading out of the folder"),
    ("folder", a_folder, "is a folder, not a regular file"),
    ("fifo", a_fifo, "is a FIFO, not a regular file"),
    ("symlink-loop", a_loop, "symbolic links"),
    ("nul-byte", nul_byte, "contains a NUL byte"),
    ("empty", empty, "is an empty name"),
]


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str, list[Path]]:
    with opened_files() as opened:
        code = main(["check", "--isolated", "--no-cache", *argv])
    out, err = capsys.readouterr()
    return code, out, err, opened


def assert_confined(opened: list[Path], *allowed: Path) -> None:
    """Every file opened is inside `allowed` or is Python's own (imports)."""
    roots = [Path(os.path.realpath(p)) for p in allowed]
    code = [Path(os.path.realpath(p)) for p in sys.path if p] + [Path(sys.prefix)]
    for path in opened:
        real = Path(os.path.realpath(path))
        inside = any(real == r or r in real.parents for r in roots)
        assert inside or any(c in real.parents for c in code), f"opened {path}"


@pytest.mark.parametrize(
    ("make", "words"), [(m, w) for _, m, w in REFUSED], ids=[i for i, _, _ in REFUSED]
)
def test_index_entries_leading_out_or_to_special_files_are_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path, Path], str],
    words: str,
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    index = sharded(folder, make(tmp_path, folder))
    code, out, err, opened = check(capsys, str(folder))
    assert (code, err) == (1, "")
    [finding] = [
        line for line in out.splitlines() if "SD004" in line and "1 tensor to shard" in line
    ]
    assert words in finding and "does not open it" in finding
    assert "root:x" not in out
    assert_confined(opened, folder)
    assert index in opened


def test_symlinks_inside_the_folder_are_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "model"
    weights(folder / "real" / "second.safetensors", B)
    (folder / "model-00002-of-00002.safetensors").symlink_to("real/second.safetensors")
    sharded(folder, "model-00002-of-00002.safetensors")
    code, out, err, opened = check(capsys, str(folder))
    assert (code, out, err) == (0, "All checks passed!\n", "") or code == 0, out
    assert_confined(opened, folder)


def test_a_hugging_face_cache_snapshot_is_checked_through_its_blobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """snapshots/<rev>/* are symlinks to ../../blobs/<hash>: the repository folder is the
    boundary."""
    repo = tmp_path / "hub" / "models--org--name"
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    for name, tensors in (("model-00001-of-00002", A), ("model-00002-of-00002", B)):
        weights(repo / "blobs" / f"{name}-blob", tensors)
        (snapshot / f"{name}.safetensors").symlink_to(f"../../blobs/{name}-blob")
    index = sharded(tmp_path / "staging", "model-00002-of-00002.safetensors")
    (repo / "blobs" / "index-blob").write_bytes(index.read_bytes())
    (snapshot / index.name).symlink_to("../../blobs/index-blob")
    code, out, err, opened = check(capsys, str(snapshot))
    assert (code, err) == (0, ""), out
    assert_confined(opened, repo)
    # Outside a cache layout the same links lead out of the folder.
    plain = tmp_path / "plain" / "snapshot"
    plain.mkdir(parents=True)
    for link in snapshot.iterdir():
        (plain / link.name).symlink_to(os.path.realpath(link))
    code, out, _, _ = check(capsys, str(plain))
    assert code == 1 and "is a symlink leading out of the folder" in out


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "symlink-to-dev-zero", "folder"])
def test_a_special_file_as_model_config_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    folder = tmp_path / "model"
    weights(folder / "model.safetensors", A)
    config = tmp_path / "config.json"
    if kind == "fifo":
        os.mkfifo(config)  # opening it for reading would block forever
    elif kind == "dev-zero":
        config = Path("/dev/zero")  # reading it would never end
    elif kind == "symlink-to-dev-zero":
        config.symlink_to("/dev/zero")
    else:
        config.mkdir()
    code, out, err, opened = check(capsys, str(folder), "--model-config", str(config))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "not a regular file" in err, err
    assert config not in opened and Path("/dev/zero") not in opened


def test_an_oversized_config_json_is_not_read_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "model"
    weights(folder / "model.safetensors", A)
    config = tmp_path / "huge.json"
    with config.open("wb") as f:
        f.truncate(17_000_000)  # sparse: no disk used
    code, out, err, _ = check(capsys, str(folder), "--model-config", str(config))
    assert (code, out) == (2, "")
    assert "more than the 16,000,000-byte limit" in err and err.count("\n") == 1


@pytest.mark.parametrize("kind", ["self-loop", "two-link-loop", "folder"])
def test_weights_that_cannot_be_read_are_findings_not_crashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    target = folder / "model.safetensors"
    if kind == "self-loop":
        target.symlink_to("model.safetensors")
    elif kind == "two-link-loop":
        target.symlink_to("other.safetensors")
        (folder / "other.safetensors").symlink_to("model.safetensors")
    else:
        target.mkdir()
    code, out, err, opened = check(capsys, str(target))
    assert err == "" and code == 1, (out, err)
    assert "SD001" in out
    assert_confined(opened, folder)


def test_a_shard_is_never_quoted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The start of a file the user named may be quoted (an HTML page saved as weights); a shard
    an index names is not: its bytes could be anything, and reports get published."""
    folder = tmp_path / "model"
    folder.mkdir()
    sharded(folder, "model-00002-of-00002.safetensors")
    (folder / "model-00002-of-00002.safetensors").write_bytes(SECRET)
    code, out, _, _ = check(capsys, str(folder))
    assert code == 1 and "SD001" in out and "root:x" not in out
    named = tmp_path / "download" / "model.safetensors"
    named.parent.mkdir()
    named.write_bytes(SECRET)
    code, out, _, _ = check(capsys, str(named))
    assert code == 1 and "root:x:0" in out  # a file named on the command line: quoted


def test_a_text_file_named_as_a_pickle_shard_is_never_quoted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read as a protocol 0 pickle, a text file's lines would come back as the names of the globals
    it imports (`c` then two lines is GLOBAL): a torch.save shard an index names is read only when
    it starts as torch.save files do."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "notes.txt").write_bytes(b"c" + SECRET + b".")
    (folder / "pytorch_model.bin.index.json").write_text(
        json.dumps({"metadata": {"total_size": 4}, "weight_map": {"a.weight": "notes.txt"}})
    )
    code, out, _, _ = check(capsys, str(folder))
    assert code == 1 and "root:x" not in out and "x:0:0" not in out
    assert "SD007 not a torch.save file: neither a zip archive nor a binary pickle" in out


def test_a_closed_output_pipe_exits_quietly(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write, as after `| head -1`
    try:
        process = subprocess.run(
            [sys.executable, "-m", "sdlint", "rule", "--all"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert process.stderr == b""
    assert process.returncode == 141
