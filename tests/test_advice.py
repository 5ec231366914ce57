"""Advice points at the right flag and never at a dangerous action."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli_helpers import run
from tests.safetensors_files import write_tensors


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SDLINT_CACHE_DIR", str(tmp_path / "cache"))


def test_a_missing_model_config_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    write_tensors(Path("m/model.safetensors"), {"w": ("F32", (2,))})
    assert run(capsys, "check", "m", "--model-config", "nope.json") == (
        2,
        "",
        "sdlint: error: --model-config: nope.json does not exist\n",
    )


def test_a_folder_given_as_model_config_means_its_config_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_tensors(Path("m/model.safetensors"), {"w": ("F32", (2,))})
    Path("target").mkdir()
    Path("target/config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    code, out, err = run(capsys, "check", "m", "--model-config", "target", "--model-checks=cached")
    assert (code, err) == (0, "")
    assert "(target/config.json is a diffusers config (UNet2DModel))" in out  # it was read
    Path("empty").mkdir()
    assert run(capsys, "check", "m", "--model-config", "empty")[::2] == (
        2,
        "sdlint: error: --model-config: empty is a folder without a config.json (not a regular file)\n",
    )


def test_a_cached_blob_is_never_fixed_in_place(capsys: pytest.CaptureFixture[str]) -> None:
    """The Hugging Face cache layout: snapshots link to content-addressed blobs that other
    revisions share, so the advice is to fix a copy, never the blob."""
    blob = write_tensors(Path("hub/blobs/4d7a21"), {"module.w": ("F32", (2,))})
    snapshot = Path("hub/snapshots/abc123")
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(os.path.relpath(blob, snapshot))
    before = blob.read_bytes()
    code, _, err = run(capsys, "check", "-q", "--fix", str(snapshot))
    assert code == 2 and "cp -rL SNAPSHOT COPY" in err and "fix the copy" in err, err
    assert "rewrite the file it points to" not in err
    assert blob.read_bytes() == before


@pytest.mark.parametrize("form", ["folder", "config"])
def test_a_folder_and_its_config_json_agree_when_there_are_no_weights(
    form: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("tok").mkdir()
    Path("tok/config.json").write_text("{}")
    arg = "tok" if form == "folder" else "tok/config.json"
    where = "found in tok" if form == "folder" else "beside tok/config.json"
    assert run(capsys, "check", arg) == (
        0,
        f"note: no safetensors checkpoint {where}: nothing to check\n"
        "All checks passed (0 files checked).\n",
        "",
    )


def test_would_fix_one_problem(capsys: pytest.CaptureFixture[str]) -> None:
    write_tensors(Path("m/model.safetensors"), {"module.w": ("F32", (2,))})
    code, out, err = run(capsys, "check", "--diff", "m")
    assert code == 1 and "renamed   module.w -> w" in out
    assert err == "Would fix 1 problem.\n"
