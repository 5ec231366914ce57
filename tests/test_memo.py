"""Lookups made once per run (sdlint/memo.py): counted, and never stale, within a run or across
runs in one process (the language server's, a `--fix` run checking again after writing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import sdlint.config
import sdlint.config_fields
import sdlint.formats.safetensors
import sdlint.model
import sdlint.model.cache
import sdlint.sources.local
from sdlint import memo
from sdlint.engine import Settings, check_paths
from sdlint.model.cache import CACHE_DIR_ENV
from tests.cli_helpers import truncated
from tests.safetensors_files import header_for, write_raw, write_sharded, write_tensors
from tests.test_parallel import CONFIG, ComputationLog


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))


def counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[object]:
    """Calls of `owner.name` from now on, by their first argument."""
    calls: list[object] = []
    real = getattr(owner, name)

    def spy(first: object, *args: Any, **kwargs: Any) -> Any:
        calls.append(first)
        return real(first, *args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return calls


def codes(report: Any) -> list[str]:
    return [f"{d.path}:{d.code}" for d in report.diagnostics]


def test_outside_a_run_nothing_is_remembered() -> None:
    assert memo.table("anything") is None
    with memo.run():
        table = memo.table("anything")
        assert table == {} and memo.table("anything") is table
        with memo.run():  # a run inside a run (a fix checking again) starts afresh
            assert memo.table("anything") == {}
        assert memo.table("anything") is table
    assert memo.table("anything") is None


def test_one_configuration_lookup_per_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Six checkpoints below one pyproject.toml: it is read once by the run, not once each."""
    Path("pyproject.toml").write_text('[tool.sdlint]\nignore = ["SD003"]\n')
    for i in range(6):
        truncated(Path(f"models/run-{i}/model.safetensors"))
    read = counting(monkeypatch, sdlint.config, "_has_sdlint_table")
    assert codes(check_paths(["models"])) == []  # SD003 ignored for each
    assert read == [Path("pyproject.toml").resolve()]


def test_folders_with_their_own_configuration_keep_it() -> None:
    """The nearest configuration file wins for each folder, whichever folder the run looked up
    first: a nested one is not hidden by its parent's, nor does it leak to its siblings."""
    Path("pyproject.toml").write_text('[tool.sdlint]\nignore = ["SD003"]\n')
    for name in ("a", "b", "c", "b/inner"):
        truncated(Path(name) / "model.safetensors")
    Path("b/.sdlint.toml").write_text("ignore = []\n")
    Path("c/pyproject.toml").write_text("[project]\nname = 'not ours'\n")
    expected = ["b/inner/model.safetensors:SD003", "b/model.safetensors:SD003"]
    assert codes(check_paths(["."])) == expected
    assert codes(check_paths(["c", "b/inner", "a", "b"])) == expected


def test_each_run_looks_again() -> None:
    """A file changed between two runs in one process is read again by the second."""
    truncated(Path("model.safetensors"))
    assert codes(check_paths(["."])) == ["model.safetensors:SD003"]
    write_tensors(Path("model.safetensors"), {"w": ("F32", (2,))})
    Path("sdlint.toml").write_text('ignore = ["SD003"]\n')
    assert codes(check_paths(["."])) == []


def fine_tunes(count: int, labels: tuple[int, ...]) -> None:
    """`count` 2-label fine-tunes, configured for each label count in turn."""
    for i in range(count):
        write_tensors(
            Path(f"models/run-{i}/model.safetensors"),
            {"classifier.weight": ("F32", (2, 8)), "classifier.bias": ("F32", (2,))},
        )
        config = {**CONFIG, "num_labels": labels[i % len(labels)]}
        Path(f"models/run-{i}/config.json").write_text(json.dumps(config))


def test_each_distinct_verdict_is_decoded_once_per_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight checkpoints, two distinct configs: a warm run decodes two verdicts, and each
    checkpoint still gets its own findings (the same verdict key used four times)."""
    monkeypatch.setattr(sdlint.model, "_predict", ComputationLog(tmp_path / "computations"))
    fine_tunes(8, (2, 5))
    cold = check_paths(["models"], Settings(processes=2))
    decoded = counting(monkeypatch, sdlint.model.cache, "from_dict")
    keyed = counting(monkeypatch, sdlint.model.cache, "cache_key")
    for processes in (1, 2):  # 2: the verdicts are also looked up ahead (prefetch_verdicts)
        decoded.clear()
        keyed.clear()
        warm = check_paths(["models"], Settings(processes=processes))
        assert len(decoded) == 2 and len(keyed) == 2
        assert warm.diagnostics == cold.diagnostics
    mismatched = {d.path for d in cold.diagnostics if d.code == "SD101"}
    assert mismatched == {f"models/run-{i}/model.safetensors" for i in (1, 3, 5, 7)}


def test_identical_headers_are_parsed_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Five files with one header text: parsed once; each file's findings are its own, by its
    path and by its size (one of them is truncated: only it has an SD003)."""
    document, _ = header_for({"w": ("F32", (2,)), "bad": ("F32", (3,))})
    document["bad"]["data_offsets"] = [8, 16]  # 8 bytes for 12: SD002 in every file
    for i in range(5):
        data = b"\0" * (16 if i != 3 else 10)
        write_raw(Path(f"models/run-{i}/model.safetensors"), document, data)
    parsed = counting(monkeypatch, sdlint.formats.safetensors, "_parse_header")
    report = check_paths(["models"], Settings(select=("SD002", "SD003")))
    assert len(parsed) == 1
    found = [(d.path, d.code) for d in report.diagnostics]
    assert found == sorted(
        [(f"models/run-{i}/model.safetensors", "SD002") for i in range(5)]
        + [("models/run-3/model.safetensors", "SD003")]
    )
    parsed.clear()
    again = check_paths(["models/run-0"]).checkpoints[0].headers[0]
    assert again.file_size == Path("models/run-0/model.safetensors").stat().st_size
    assert len(parsed) == 1  # the next run parses again


def shards(count: int) -> dict[str, dict[str, tuple[str, tuple[int, ...]]]]:
    return {
        f"model-{i + 1:05d}-of-{count:05d}.safetensors": {f"w{i}": ("F32", (2,))}
        for i in range(count)
    }


def test_symlinks_are_resolved_once_per_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """An index's shards share their folder's resolution: the walk through every part of a path
    after symlinks (`os.path.realpath`) is not made again for each shard (one `lstat` is)."""
    import os.path

    write_sharded(Path("few"), shards(2))
    write_sharded(Path("many"), shards(12))
    resolved = counting(monkeypatch, os.path, "realpath")
    for folder in ("few", "many"):
        resolved.clear()
        assert codes(check_paths([folder])) == []
        assert len(resolved) <= 2  # the folder, and the boundary it must stay inside


def test_identical_configs_are_parsed_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight fine-tunes, two distinct config.json texts: two parses; each checkpoint keeps its
    own file (its path, as its findings name it)."""
    fine_tunes(8, (2, 5))
    parsed = counting(monkeypatch, sdlint.config_fields, "_parse_config")
    report = check_paths(["models"], Settings(model_checks="off"))
    assert len(parsed) == 2
    configs = [c.config for c in report.checkpoints]
    assert [c.path.local for c in configs if c is not None] == [
        Path(f"models/run-{i}/config.json") for i in range(8)
    ]


def test_the_configuration_lookup_trusts_the_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder the run has listed is not asked again whether it holds `.sdlint.toml`,
    `sdlint.toml` or `pyproject.toml`: the listing said so (once per folder, not a `stat`
    each). The one found is still found."""
    fine_tunes(6, (2,))
    Path("models/run-4/sdlint.toml").write_text('ignore = ["SD003"]\n')
    looked = counting(monkeypatch, sdlint.sources.local, "_stat")
    check_paths(["models"], Settings(model_checks="off"))
    paths = [Path(str(p)) for p in looked]
    names = {p.name for p in paths if "run-" in p.as_posix()}
    assert names & set(sdlint.config.CONFIG_FILES) == {"sdlint.toml"}


def test_the_verdict_cache_is_found_once_per_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight checkpoints looked up in one verdict cache: its folder is worked out once."""
    monkeypatch.setattr(sdlint.model, "_predict", ComputationLog(tmp_path / "computations"))
    fine_tunes(8, (2, 5))
    cold = check_paths(["models"], Settings(processes=1))
    roots = counting(monkeypatch, sdlint.model.cache, "cache_root")
    warm = check_paths(["models"], Settings(processes=1))
    assert len(roots) == 1
    assert warm.diagnostics == cold.diagnostics
