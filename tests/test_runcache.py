"""The run cache (sdlint/runcache.py): a command-line `check` run again over unchanged inputs
prints what the run printed, byte for byte, without checking anything; any change to what the run
depended on (a file's bytes, a target config, the selection, the transformers version, a
configuration file, a new checkpoint) runs the checks again, and so does a file too recent to
trust."""

from __future__ import annotations

import json
import marshal
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sdlint.commands.check
import sdlint.engine
import sdlint.environment
from sdlint import runcache
from sdlint.cli import main
from sdlint.emit import FORMATS
from tests.cli_helpers import TENSORS, truncated
from tests.cli_helpers import run as library  # never the run cache: main(argv)
from tests.safetensors_files import TensorSpecs, write_sharded, write_tensors

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "roberta-2-labels"
FIVE_LABELS = ROOT / "examples" / "roberta-5-labels" / "config.json"


class Checks:
    """Counts the runs that checked (a replayed run checks nothing)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = sdlint.engine.check_paths

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(sdlint.commands.check, "check_paths", counting)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private cache; files written by the test count as old enough to trust (the racy rule
    has its own test), and the working folder is `tmp_path/work`."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SDLINT_CACHE_DIR", str(folder))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(runcache, "RACY_NS", -3600 * 10**9)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield folder


def command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    """`sdlint ARGV` as the command runs it (`main()` reads sys.argv): status, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["sdlint", *argv])
    code = main()
    out, err = capsys.readouterr()
    return code, out, err


def entries(cache: Path) -> list[Path]:
    return sorted((cache / runcache._ENTRY_DIR).glob("*.run"))


@pytest.mark.parametrize(
    "extra",
    [[], ["--statistics"], ["--show-fixes"], ["--verbose"]]
    + [["--output-format", name] for name in FORMATS],
)
def test_a_replayed_run_prints_what_the_run_printed(
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
) -> None:
    truncated(Path("broken.safetensors"))
    write_tensors(Path("fine") / "model.safetensors", TENSORS)
    argv = ["check", "broken.safetensors", "fine", *extra]
    checks = Checks(monkeypatch)
    first = command_line(monkeypatch, capsys, *argv)
    assert checks.count == 1 and len(entries(cache)) == 1
    again = command_line(monkeypatch, capsys, *argv)
    assert checks.count == 1  # replayed: nothing was checked
    assert again == first
    assert library(capsys, *argv) == first  # what an uncached run prints
    assert first[0] == 1 and "SD003" in first[1]


def test_a_caller_passing_argv_always_runs_the_checks(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated(Path("broken.safetensors"))
    checks = Checks(monkeypatch)
    command_line(monkeypatch, capsys, "check", "broken.safetensors")
    library(capsys, "check", "broken.safetensors")
    library(capsys, "check", "broken.safetensors")
    assert checks.count == 3


def stored_then(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    change: Any,
) -> tuple[tuple[int, str, str], tuple[int, str, str], int]:
    """Run, make `change`, run again: both results and how many runs checked."""
    checks = Checks(monkeypatch)
    before = command_line(monkeypatch, capsys, *argv)
    assert command_line(monkeypatch, capsys, *argv) == before and checks.count == 1
    change()
    after = command_line(monkeypatch, capsys, *argv)
    return before, after, checks.count


def same_size_rewrite(path: Path, data: bytes) -> None:
    """Rewrite `path` with `data` of the same size and put its mtime back: only its ctime (and
    the bytes) tell."""
    before = path.stat()
    assert len(data) == before.st_size
    while True:
        path.write_bytes(data)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        if path.stat().st_ctime_ns != before.st_ctime_ns:
            break
        time.sleep(0.01)  # the same coarse clock tick: write again
    assert path.stat().st_mtime_ns == before.st_mtime_ns


def test_a_same_size_rewrite_with_its_mtime_restored_is_seen_by_its_ctime(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_tensors(Path("model.safetensors"), TENSORS)
    intact = path.read_bytes()
    header_size = int.from_bytes(intact[:8], "little")
    broken = intact[:8] + intact[8 : 8 + header_size].replace(b"F32", b"F64", 1)
    broken += intact[8 + header_size :]
    before, after, count = stored_then(
        monkeypatch,
        capsys,
        ["check", "model.safetensors"],
        lambda: same_size_rewrite(path, broken),
    )
    assert count == 2
    assert before[0] == 0 and after[0] == 1
    assert after == library(capsys, "check", "model.safetensors")


def test_a_changed_target_config_runs_the_checks_again(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tensors(Path("model.safetensors"), TENSORS)
    target = Path("target.json")
    target.write_text(json.dumps({"model_type": "bert", "num_labels": 2}))
    argv = ["check", "model.safetensors", "--model-config", str(target), "--model-checks=off"]
    _, _, count = stored_then(
        monkeypatch,
        capsys,
        argv,
        lambda: target.write_text(json.dumps({"model_type": "bert", "num_labels": 3})),
    )
    assert count == 2


def test_another_selection_is_another_run(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated(Path("broken.safetensors"))
    checks = Checks(monkeypatch)
    found = command_line(monkeypatch, capsys, "check", "broken.safetensors")
    ignored = command_line(monkeypatch, capsys, "check", "broken.safetensors", "--select", "SD1")
    assert checks.count == 2
    assert found[0] == 1 and ignored[0] == 0
    assert command_line(monkeypatch, capsys, "check", "broken.safetensors") == found
    assert checks.count == 2


def test_another_transformers_version_runs_the_checks_again(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tensors(Path("model.safetensors"), TENSORS)
    real = sdlint.environment.installed_version

    def upgrade() -> None:
        monkeypatch.setattr(
            sdlint.environment,
            "installed_version",
            lambda name: "99.0.0" if name == "transformers" else real(name),
        )

    _, _, count = stored_then(monkeypatch, capsys, ["check", "model.safetensors"], upgrade)
    assert count == 2


def test_a_changed_or_new_configuration_file_runs_the_checks_again(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated(Path("models") / "broken.safetensors")
    pyproject = Path("pyproject.toml")
    pyproject.write_text('[tool.sdlint]\nignore = ["SD002"]\n')
    argv = ["check", "models"]
    checks = Checks(monkeypatch)
    first = command_line(monkeypatch, capsys, *argv)
    assert command_line(monkeypatch, capsys, *argv) == first and checks.count == 1
    pyproject.write_text('[tool.sdlint]\nignore = ["SD003"]\n')
    changed = command_line(monkeypatch, capsys, *argv)
    assert command_line(monkeypatch, capsys, *argv) == changed and checks.count == 2
    # A configuration file nearer to the checkpoint, where there was none, takes over.
    (Path("models") / "sdlint.toml").write_text("ignore = []\n")
    nearer = command_line(monkeypatch, capsys, *argv)
    assert checks.count == 3
    assert (first[0], changed[0], nearer[0]) == (1, 0, 1)
    assert nearer == library(capsys, *argv)


def test_a_new_checkpoint_in_a_checked_folder_runs_the_checks_again(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tensors(Path("models") / "a" / "model.safetensors", TENSORS)
    before, after, count = stored_then(
        monkeypatch,
        capsys,
        ["check", "models"],
        lambda: truncated(Path("models") / "b" / "model.safetensors"),
    )
    assert count == 2 and before[0] == 0 and after[0] == 1


def test_files_modified_within_the_timestamp_granularity_are_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As git's racy index entries: a file whose timestamps are within `RACY_NS` of the run's
    start could still change within the same clock tick unseen, so the run is not kept."""
    monkeypatch.setenv("SDLINT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    write_tensors(Path("model.safetensors"), TENSORS)  # just now
    checks = Checks(monkeypatch)
    command_line(monkeypatch, capsys, "check", "model.safetensors")
    command_line(monkeypatch, capsys, "check", "model.safetensors")
    assert checks.count == 2 and entries(tmp_path / "cache") == []


def test_no_cache_neither_reads_nor_writes_runs(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated(Path("broken.safetensors"))
    checks = Checks(monkeypatch)
    for _ in range(2):
        command_line(monkeypatch, capsys, "check", "broken.safetensors", "--no-cache")
    assert checks.count == 2 and entries(cache) == []


def test_an_unwritable_cache_folder_is_one_note(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated(Path("broken.safetensors"))
    cache.mkdir()
    (cache / runcache._ENTRY_DIR).write_text("in the way")  # not a folder: nothing is written
    code, out, err = command_line(monkeypatch, capsys, "check", "broken.safetensors")
    uncached = library(capsys, "check", "broken.safetensors")
    assert code == uncached[0] == 1 and err == uncached[2] == ""
    assert out.count("the run cache") == 1
    note = next(line for line in out.splitlines() if "the run cache" in line)
    assert f"the run cache {cache} cannot be written" in note
    assert out.replace(note + "\n", "") == uncached[1]


def test_runs_that_depend_on_more_than_files_are_not_kept(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fixes and baselines are never replayed."""
    write_tensors(Path("model.safetensors"), TENSORS)
    Path("config.json").write_text(json.dumps({"model_type": "bert"}))
    baseline = Path("baseline.json")
    library(capsys, "check", "model.safetensors", "--write-baseline", str(baseline))
    for extra in (["--baseline", str(baseline)], ["--fix"]):
        command_line(monkeypatch, capsys, "check", "model.safetensors", *extra)
    assert entries(cache) == []


def test_sdlint_own_sources_are_fingerprinted() -> None:
    """A rule changed under the same version changes the output: sdlint's files are inputs."""
    sources = runcache._own_sources()
    assert str(Path(runcache.__file__).resolve()) in {str(Path(s).resolve()) for s in sources}
    assert any(Path(s).parts[-2:] == ("rules", "integrity.py") for s in sources)


# --- sdlint's own code: a regular install's RECORD, a working copy's files -----------------------


def test_a_working_copy_is_fingerprinted_file_by_file() -> None:
    """This repository's venvs install sdlint editable (a finder in site-packages points at the
    working copy, whose files change without a reinstall): every source file is an input."""
    package = str(Path(sdlint.__file__).parent)
    assert runcache._installed_record(package) is None
    assert len(runcache._own_sources()) > 50


def installed_copy(site: Path, record: str) -> Path:
    """sdlint's package as a wheel installs it into `site`, with a dist-info whose RECORD holds
    `record`."""
    shutil.copytree(
        Path(sdlint.__file__).parent, site / "sdlint", ignore=shutil.ignore_patterns("__pycache__")
    )
    info = site / f"sdlint-{sdlint.__version__}.dist-info"
    info.mkdir()
    (info / "RECORD").write_text(record)
    return info / "RECORD"


def test_a_regular_install_is_fingerprinted_by_its_record(tmp_path: Path) -> None:
    """One stat instead of ~100: pip, uv and installer rewrite RECORD on every (re)install."""
    record = installed_copy(tmp_path, "sdlint/__init__.py,sha256=x,1\nsdlint/cli.py,,\n")
    assert runcache._own_sources(str(tmp_path / "sdlint")) == [str(record)]


def test_a_dist_info_that_does_not_list_the_package_counts_for_nothing(tmp_path: Path) -> None:
    installed_copy(tmp_path, "__editable___sdlint_finder.py,sha256=x,1\n")
    sources = runcache._own_sources(str(tmp_path / "sdlint"))
    assert str(tmp_path / "sdlint" / "runcache.py") in sources and len(sources) > 50


REPLAY = """
import sys
from sdlint.cli import main
sys.argv = ["sdlint", *sys.argv[1:]]
code = main()
print("checked" if "sdlint.engine" in sys.modules else "replayed", file=sys.stderr)
raise SystemExit(code)
"""


@pytest.mark.slow
def test_a_wheel_install_is_replayed_on_its_record(tmp_path: Path) -> None:
    """A real wheel (`pip wheel`) installed as pip installs it: the stored run's inputs hold its
    RECORD, none of its source files; a reinstall runs the checks again."""
    source, wheels = tmp_path / "source", tmp_path / "wheels"
    site, cache = tmp_path / "site", tmp_path / "cache"
    # Built from a copy: a build writes build/ and an egg-info beside its sources.
    shutil.copytree(
        ROOT / "sdlint", source / "sdlint", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("sdlint-*.whl")

    def install() -> None:
        subprocess.run(
            [*pip, "install", "--no-deps", "--upgrade", "--target", str(site), str(wheel)],
            check=True,
            capture_output=True,
        )
        time.sleep(2.1)  # older than the run cache's racy window (RACY_NS)

    work = tmp_path / "work"  # the run lists its folder: the cache is not in it
    write_tensors(work / "model.safetensors", TENSORS)
    install()
    env = {**os.environ, "PYTHONPATH": str(site), "SDLINT_CACHE_DIR": str(cache)}

    def run() -> tuple[str, str]:
        done = subprocess.run(
            [sys.executable, "-c", REPLAY, "check", "model.safetensors", "--model-checks=off"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout, done.stderr.strip().splitlines()[-1]

    first = run()
    assert first[1] == "checked"
    (entry,) = (cache / runcache._ENTRY_DIR).glob("*.run")
    stored = marshal.loads(entry.read_bytes()[len(runcache._MAGIC) + 4 :])
    inputs = [path for path, _ in stored[1]]
    (record,) = site.glob("sdlint-*.dist-info")
    assert str(record / "RECORD") in inputs
    assert not [path for path in inputs if path.startswith(f"{site / 'sdlint'}{os.sep}")]
    assert run() == (first[0], "replayed")
    install()  # a reinstall writes RECORD anew
    assert run() == (first[0], "checked")
    assert run() == (first[0], "replayed")


def test_a_stored_run_prunes_the_runs_a_replay_does_not(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`runs-v1/` is bounded (sdlint/prune.py, `KEEP_RUNS`): a run that stores itself looks the
    folder over (at most hourly) and removes runs unused for too long; a replay lists nothing."""
    stale = cache / runcache._ENTRY_DIR / "0123456789abcdef0123.run"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an old run")
    long_ago = time.time() - (runcache.KEEP_RUNS[2] + 1) * 86_400
    os.utime(stale, (long_ago, long_ago))
    truncated(Path("broken.safetensors"))
    first = command_line(monkeypatch, capsys, "check", "broken.safetensors")
    assert not stale.exists() and len(entries(cache)) == 1
    with pytest.MonkeyPatch.context() as spies:
        seen = looked_at(spies)
        assert command_line(monkeypatch, capsys, "check", "broken.safetensors") == first
    assert [path for path in seen if path.startswith(str(cache))] == []  # read by open() only


# --- Every file and folder a run looks at is recorded --------------------------------------------


def absolute(path: str | os.PathLike[str]) -> str:
    """One spelling for each path: absolute and normalized, symlinks kept (as the OS is given)."""
    return os.path.abspath(path)  # noqa: PTH100 (Path.resolve would follow symlinks)


def looked_at(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths os.stat, os.listdir, os.scandir and os.open are given from now on."""
    seen: list[str] = []
    for name in ("stat", "listdir", "scandir", "open"):
        real = getattr(os, name)

        def spy(path: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            if isinstance(path, (str, os.PathLike)):
                seen.append(absolute(path))
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, spy)
    return seen


def test_every_path_a_run_looks_at_is_recorded(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever a run stats, lists or opens (outside the caches and Python's own files) is among
    the paths whose fingerprints decide a replay: a model folder in a diffusers pipeline, shards
    with their index, a pickle, an adapter with a local base, configuration files."""
    work = Path.cwd()
    write_sharded(
        work / "tree" / "sharded",
        {"model-00001-of-00002.safetensors": TENSORS, "model-00002-of-00002.safetensors": {}},
    )
    (work / "tree" / "sharded" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (work / "tree" / "model_index.json").write_text(json.dumps({"sharded": ["x", "Y"]}))
    truncated(work / "tree" / "lone" / "model.safetensors")
    (work / "tree" / "pickled").mkdir()
    (work / "tree" / "pickled" / "pytorch_model.bin").write_bytes(b"\x80\x02}q\x00.")
    shutil.copytree(ROOT / "examples" / "roberta-2-labels-lora", work / "tree" / "adapter")
    shutil.copytree(EXAMPLE, work / "base")
    adapter_config = work / "tree" / "adapter" / "adapter_config.json"
    document = json.loads(adapter_config.read_text())
    adapter_config.write_text(json.dumps({**document, "base_model_name_or_path": "../../base"}))
    (work / "pyproject.toml").write_text('[tool.sdlint]\nignore = ["SD104"]\n')

    recorded: list[str] = []
    real_store = runcache.Recorder.store

    def store(self: runcache.Recorder, output: str, code: int) -> str | None:
        recorded.extend(absolute(p) for p in self.seen)
        return real_store(self, output, code)

    monkeypatch.setattr(runcache.Recorder, "store", store)
    for argv in (
        ["check", "tree", "--model-checks=cached"],
        ["check", "tree/sharded/model-00001-of-00002.safetensors", "--model-checks=cached"],
        ["check", "tree/sharded/config.json", "--model-config", "base", "--model-checks=cached"],
    ):
        recorded.clear()
        with pytest.MonkeyPatch.context() as spies:
            seen = looked_at(spies)
            command_line(monkeypatch, capsys, *argv)
        ignored = (str(cache), sys.prefix, sys.base_prefix, str(Path(sdlint.__file__).parent))
        known = set(recorded)
        # sys.path folders are listed for the installed versions, a key input (not files)
        paths = {absolute(entry) for entry in sys.path}
        missed = sorted({p for p in seen if not p.startswith(ignored) and p not in known | paths})
        assert recorded and missed == [], argv
        if argv[1] == "tree":
            assert str(work / "tree" / "adapter" / "adapter_config.json") in known
            assert str(work / "base" / "config.json") in known
            assert str(work / "tree" / "model_index.json") in known


@pytest.mark.parametrize("spread", ["headers", "verdicts"])
def test_runs_spread_over_processes_are_not_kept(
    cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    spread: str,
) -> None:
    """What worker processes look at and meet is not seen by this process's recorder."""
    import sdlint.model
    import sdlint.parallel
    from tests.test_parallel import ComputationLog, many_checkpoints

    monkeypatch.setattr(sdlint.model, "_predict", ComputationLog(tmp_path / "computations"))
    many_checkpoints(Path("models"), 6)
    argv = ["check", "models", "--isolated"]
    command_line(monkeypatch, capsys, *argv, "--jobs", "1")
    assert len(entries(cache)) == 1  # in one process, the run is kept
    monkeypatch.setenv("SDLINT_CACHE_DIR", str(tmp_path / "other-cache"))
    monkeypatch.setattr(sdlint.parallel, "HEADERS_FROM", 4 if spread == "headers" else 10**6)
    monkeypatch.setattr(sdlint.parallel, "VERDICTS_FROM", 2 if spread == "verdicts" else 10**6)
    command_line(monkeypatch, capsys, *argv, "--jobs", "2")
    assert entries(tmp_path / "other-cache") == []


@pytest.mark.model
@pytest.mark.parametrize("output_format", ["text", "json", "sarif"])
def test_a_replayed_model_check_prints_what_the_run_printed(
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    output_format: str,
) -> None:
    """SD101 against a 5-label target, with the verdict computed by transformers: replayed as
    printed."""
    pytest.importorskip("transformers")
    argv = ["check", str(EXAMPLE), "--model-config", str(FIVE_LABELS)]
    argv += ["--output-format", output_format]
    checks = Checks(monkeypatch)
    first = command_line(monkeypatch, capsys, *argv)
    assert command_line(monkeypatch, capsys, *argv) == first and checks.count == 1
    assert first == library(capsys, *argv)
    assert first[0] == 1 and "SD101" in first[1]


# --- The pre-commit hooks: git's staged deletions and recorded verdicts ---------------------------


class Runs:
    """Counts the command lines that ran, not replayed (whether or not they check a file)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = runcache.begin

        def counting(argv: Any) -> Any:
            self.count += 1
            return real(argv)

        monkeypatch.setattr(runcache, "begin", counting)


def git(*args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True, capture_output=True
    )


SHARDS: dict[str, TensorSpecs] = {
    "model-00001-of-00002.safetensors": {"a.weight": ("F32", (2, 2))},
    "model-00002-of-00002.safetensors": {"b.weight": ("F32", (3,))},
}
SECOND = "m/model-00002-of-00002.safetensors"
HOOK = ["check", "--model-checks=cached", "--staged-deletions"]  # .pre-commit-hooks.yaml's


@pytest.fixture
def repo(cache: Path) -> Path:
    """A git repository with a committed two-shard checkpoint in m/, as the working folder."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    git("init", "-q")
    write_sharded(Path("m"), SHARDS)
    git("add", "m")
    git("commit", "-qm", "weights")
    return Path.cwd()


def test_the_hook_replays_until_git_says_the_commit_deletes_something_else(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hooks' `--staged-deletions` runs are kept with git's answer: the same hook run again
    replays; staging a deletion, unstaging it, committing it (HEAD moves, the index does not) each
    give git another answer, so the run checks again, and prints what an uncached run prints."""
    runs = Runs(monkeypatch)

    def hook(*paths: str) -> tuple[int, str, str]:
        result = command_line(monkeypatch, capsys, *HOOK, *paths)
        assert result == library(capsys, *HOOK, *paths)
        return result

    clean = (0, "", "")
    assert hook() == clean and runs.count == 1
    assert hook() == clean and runs.count == 1  # replayed
    git("rm", "-q", "--cached", SECOND)  # staged: the file stays on disk
    deleting = hook()
    assert deleting[0] == 1 and "the commit deletes it" in deleting[1] and runs.count == 2
    assert hook() == deleting and runs.count == 2
    git("reset", "-q", "--", SECOND)  # unstaged
    assert hook() == clean and runs.count == 3
    assert hook() == clean and runs.count == 3
    git("rm", "-q", "--cached", SECOND)
    assert hook() == deleting and runs.count == 4
    git("commit", "-qm", "one shard less", "--no-verify")  # HEAD moves; the index stays
    assert hook() == clean and runs.count == 5
    # pre-commit passes the staged weights: that command line is another run, kept alike.
    index = "m/model.safetensors.index.json"
    Path(SECOND).unlink()  # gone from the disk too: the index names a missing shard
    broken = hook(index)
    assert broken[0] == 1 and "SD004" in broken[1] and runs.count == 6
    assert hook(index) == broken and runs.count == 6


def test_a_replay_asks_git_once_when_nothing_is_deleted(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A replay asks git by posix_spawn, not subprocess (whose import costs more than the replay):
    one process when the answer is that nothing is deleted, two when it is not."""
    import sdlint.staged

    command_line(monkeypatch, capsys, *HOOK)
    spawned: list[tuple[str, ...]] = []
    real = sdlint.staged._spawned

    def spawn(args: tuple[str, ...]) -> str | None:
        spawned.append(args)
        return real(args)

    monkeypatch.setattr(sdlint.staged, "_spawned", spawn)
    assert command_line(monkeypatch, capsys, *HOOK) == (0, "", "")
    assert [args[0] for args in spawned] == ["diff"]
    git("rm", "-q", "--cached", SECOND)
    first = command_line(monkeypatch, capsys, *HOOK)
    spawned.clear()
    assert command_line(monkeypatch, capsys, *HOOK) == first
    assert [args[0] for args in spawned] == ["diff", "rev-parse"]


def test_outside_a_repository_the_hook_is_not_replayed(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = Runs(monkeypatch)
    command_line(monkeypatch, capsys, *HOOK)
    shutil.rmtree(".git")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(repo.parent))
    code, _, err = command_line(monkeypatch, capsys, *HOOK)
    assert code == 2 and "--staged-deletions needs a git repository" in err and runs.count == 2


def test_a_new_recorded_verdict_runs_the_cached_model_checks_again(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--model-checks=cached` (the light hook) reads verdicts other runs recorded: the recorded
    verdict it looked for, found or not, is fingerprinted as the files are."""
    from sdlint.discover import find_checkpoints
    from sdlint.model import recorded_key
    from sdlint.model.cache import VerdictCache
    from sdlint.model.verdict import LoadVerdict

    write_tensors(Path("m") / "model.safetensors", TENSORS)
    Path("m", "config.json").write_text(json.dumps({"model_type": "bert"}))
    argv = ["check", "m", "--model-checks=cached"]
    checks = Checks(monkeypatch)
    skipped = command_line(monkeypatch, capsys, *argv)
    assert "no recorded verdict" in skipped[1]
    assert command_line(monkeypatch, capsys, *argv) == skipped and checks.count == 1
    (checkpoint,) = find_checkpoints([Path("m")])
    assert checkpoint.config is not None
    key = recorded_key(checkpoint.config.raw, checkpoint.signature(), None)
    verdict = LoadVerdict("BertModel", "model_type", "bert", "bert", False, "5", "float32", None)
    assert VerdictCache.recorded(cache).put(key, verdict)
    found = command_line(monkeypatch, capsys, *argv)
    assert checks.count == 2 and found == library(capsys, *argv)
    assert "no recorded verdict" not in found[1]
    assert command_line(monkeypatch, capsys, *argv) == found and checks.count == 3
    VerdictCache.recorded(cache).path(key).unlink()  # gone again
    assert command_line(monkeypatch, capsys, *argv) == skipped and checks.count == 4
