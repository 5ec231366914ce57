"""The verdict cache: what it keys on, what it survives, and that a warm run stays light."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import pytest

import sdlint.environment
import sdlint.model.cache
from sdlint.config_fields import ConfigFile, read_config
from sdlint.formats.safetensors import Header, read_header
from sdlint.model import (
    ConfigProblem,
    LoadVerdict,
    Mismatch,
    Missing,
    TensorSpec,
    Unexpected,
    WrapperPrefix,
    cached_verdict,
    load_verdict,
)
from sdlint.model import verdict as v
from sdlint.model.cache import (
    CACHE_DIR_ENV,
    VerdictCache,
    cache_key,
    default_cache_dir,
    installed_version,
)
from sdlint.prune import STAMP
from tests.verdicts import TINY_ROBERTA, roberta_verdict

CONFIG = {**TINY_ROBERTA, "architectures": ["RobertaForSequenceClassification"]}
SIGNATURE = {
    "roberta.embeddings.word_embeddings.weight": TensorSpec("F32", (128, 32)),
    "classifier.out_proj.weight": TensorSpec("F32", (3, 32)),
}


def sample_verdict(note: str = "") -> LoadVerdict:
    inner = roberta_verdict(missing=(Missing("classifier.dense.weight", False),))
    return roberta_verdict(
        config_dtype="float32",
        missing=(Missing("roberta.pooler.dense.weight", True),),
        unexpected=(
            Unexpected("module.classifier.out_proj.weight", "module.classifier.out_proj.weight"),
        ),
        mismatched=(
            Mismatch(
                "classifier.out_proj.weight",
                "classifier.out_proj.weight",
                (3, 32),
                (5, 32),
                False,
                ("classifier.out_proj.weight",),
            ),
        ),
        wrapper_prefix=WrapperPrefix("module.", 2, inner),
        notes=(note,) if note else (),
    )


class FakeOracle:
    """Stands in for the oracle: counts calls and returns a fixed answer."""

    def __init__(self, answer: LoadVerdict | ConfigProblem) -> None:
        self.answer = answer
        self.calls = 0

    def __call__(
        self,
        config: ConfigFile,
        tensors: Mapping[str, TensorSpec],
        architecture: str | None,
        index_keys: Sequence[str] | None = None,
    ) -> LoadVerdict | ConfigProblem:
        self.calls += 1
        return self.answer


@pytest.fixture
def oracle(monkeypatch: pytest.MonkeyPatch) -> FakeOracle:
    fake = FakeOracle(sample_verdict())
    monkeypatch.setattr(sdlint.model, "_predict", fake)
    return fake


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "model" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(CONFIG, indent=2))
    return path


def entries(cache_dir: Path) -> list[Path]:
    """The exact cache's entries (the recorded verdicts live in their own folder)."""
    return sorted(p for p in cache_dir.rglob("*.json") if "recorded" not in p.parts)


# ---------------------------------------------------------------------------------------------
# Keying


def test_same_signature_hits(oracle: FakeOracle, config_path: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    first = load_verdict(read_config(config_path), SIGNATURE, cache_dir=cache_dir)
    second = load_verdict(
        read_config(config_path), dict(reversed(SIGNATURE.items())), cache_dir=cache_dir
    )
    assert first == second == oracle.answer
    assert oracle.calls == 1
    assert len(entries(cache_dir)) == 1


def test_recorded_verdict_serves_any_transformers_version(
    oracle: FakeOracle, config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = tmp_path / "cache"
    assert (
        cached_verdict(read_config(config_path), SIGNATURE, cache_dir=cache_dir) is None
    )  # nothing yet
    load_verdict(read_config(config_path), SIGNATURE, cache_dir=cache_dir)
    monkeypatch.setattr(sdlint.model.cache, "installed_version", lambda name: None)
    assert cached_verdict(read_config(config_path), SIGNATURE, cache_dir=cache_dir) == oracle.answer
    other = {**SIGNATURE, "extra": TensorSpec("F32", (1,))}
    assert (
        cached_verdict(read_config(config_path), other, cache_dir=cache_dir) is None
    )  # exact inputs only
    config_path.write_text(config_path.read_text() + " ")
    assert cached_verdict(read_config(config_path), SIGNATURE, cache_dir=cache_dir) is None
    assert oracle.calls == 1


@pytest.mark.parametrize(
    "change",
    [
        "config-bytes",
        "config-value",
        "architecture",
        "shape",
        "dtype",
        "key",
        "transformers",
        "torch",
    ],
)
def test_any_input_change_misses(
    oracle: FakeOracle,
    config_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
) -> None:
    cache_dir = tmp_path / "cache"
    load_verdict(read_config(config_path), SIGNATURE, cache_dir=cache_dir)
    signature = dict(SIGNATURE)
    architecture = None
    if change == "config-bytes":  # the same settings, formatted differently
        config_path.write_text(json.dumps(CONFIG))
    elif change == "config-value":
        config_path.write_text(json.dumps({**CONFIG, "num_labels": 5}, indent=2))
    elif change == "architecture":
        architecture = "RobertaModel"
    elif change == "shape":
        signature["classifier.out_proj.weight"] = TensorSpec("F32", (5, 32))
    elif change == "dtype":
        signature["classifier.out_proj.weight"] = TensorSpec("BF16", (3, 32))
    elif change == "key":
        signature["extra"] = TensorSpec("F32", (1,))
    else:
        real = installed_version
        monkeypatch.setattr(
            sdlint.model.cache,
            "installed_version",
            lambda name: "0.0.1" if name == change else real(name),
        )
    load_verdict(read_config(config_path), signature, architecture, cache_dir=cache_dir)
    assert oracle.calls == 2
    assert len(entries(cache_dir)) == 2


def test_transformers_not_installed_is_part_of_the_key() -> None:
    keys = {
        cache_key(b"{}", SIGNATURE, None, transformers_version=version, torch_version="2.13.0")
        for version in (None, "5.24.0")
    }
    assert len(keys) == 2


def test_earlier_shard_copies_are_part_of_the_key_only_when_present() -> None:
    """A key in several shards is judged by every copy under 4.x: its earlier copies enter the
    key (a checkpoint without such a key hashes as before: `_spec_entry` adds nothing)."""

    def key(signature: Mapping[str, TensorSpec]) -> str:
        return cache_key(b"{}", signature, None, transformers_version="4.57.6", torch_version="2")

    name, spec = next(iter(SIGNATURE.items()))
    copied = {**SIGNATURE, name: TensorSpec(spec.dtype, spec.shape, earlier=(spec,))}
    other = {
        **SIGNATURE,
        name: TensorSpec(spec.dtype, spec.shape, earlier=(TensorSpec("F16", (1,)),)),
    }
    assert len({key(SIGNATURE), key(copied), key(other)}) == 3


def write_raw_safetensors(
    path: Path, tensors: dict[str, tuple[str, tuple[int, ...]]], fill: bytes
) -> None:
    header = {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = 4
        for d in shape:
            size *= d
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    data = (fill * (offset // len(fill) + 1))[:offset]
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)


def header_signature(path: Path) -> dict[str, TensorSpec]:
    header = read_header(path)
    assert isinstance(header, Header)
    return {name: TensorSpec(t.dtype, t.shape) for name, t in header.tensors.items()}


def test_retrained_weights_of_the_same_shapes_hit(
    oracle: FakeOracle, config_path: Path, tmp_path: Path
) -> None:
    layout = {name: (spec.dtype, spec.shape) for name, spec in SIGNATURE.items()}
    before, after = tmp_path / "before.safetensors", tmp_path / "after.safetensors"
    write_raw_safetensors(before, layout, b"\x00\x01\x02\x03")
    write_raw_safetensors(after, layout, b"\x7f\x3e\x11\x42")  # other values, same header
    assert before.read_bytes() != after.read_bytes()
    cache_dir = tmp_path / "cache"
    load_verdict(read_config(config_path), header_signature(before), cache_dir=cache_dir)
    load_verdict(read_config(config_path), header_signature(after), cache_dir=cache_dir)
    assert oracle.calls == 1


def test_use_cache_false_neither_reads_nor_writes(
    oracle: FakeOracle, config_path: Path, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    load_verdict(read_config(config_path), SIGNATURE, cache_dir=cache_dir)
    load_verdict(read_config(config_path), SIGNATURE, cache_dir=cache_dir, use_cache=False)
    assert oracle.calls == 2
    load_verdict(
        read_config(config_path),
        {**SIGNATURE, "x": TensorSpec("F32", (1,))},
        cache_dir=cache_dir,
        use_cache=False,
    )
    assert len(entries(cache_dir)) == 1


@pytest.mark.parametrize("without", [(), ("_sha2", "_sha256")])
def test_keys_are_hashlib_sha256_digests(
    monkeypatch: pytest.MonkeyPatch, without: tuple[str, ...]
) -> None:
    """Keys are sha256, recorded verdict folders are committed under them: the digest taken from
    CPython's `_sha2`/`_sha256` (sdlint/environment.py) is hashlib's, as is its fallback."""
    import hashlib
    import importlib

    real = importlib.import_module

    def import_module(name: str, package: str | None = None) -> Any:
        if name in without:
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", import_module)
    sdlint.environment._sha256.cache_clear()
    try:
        for data in (b"", b"{}", bytes(range(256)) * 300):
            assert sdlint.environment.sha256(data) == hashlib.sha256(data).hexdigest()
    finally:
        sdlint.environment._sha256.cache_clear()
    key = cache_key(b"{}", SIGNATURE, None, transformers_version=None, torch_version=None)
    assert len(key) == 64 and int(key, 16) >= 0


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv(CACHE_DIR_ENV)
    import platformdirs

    assert default_cache_dir() == Path(platformdirs.user_cache_dir("sdlint"))


def test_env_var_is_the_default_location(
    oracle: FakeOracle, config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "env-cache"))
    load_verdict(read_config(config_path), SIGNATURE)
    assert len(entries(tmp_path / "env-cache")) == 1


# ---------------------------------------------------------------------------------------------
# Which answers are stored


def test_config_problems_are_cached(
    config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeOracle(ConfigProblem(v.INVALID_CONFIG, "config.json is not valid: x. Fix it."))
    monkeypatch.setattr(sdlint.model, "_predict", fake)
    for _ in range(2):
        assert (
            load_verdict(read_config(config_path), SIGNATURE, cache_dir=tmp_path / "cache")
            == fake.answer
        )
    assert fake.calls == 1


@pytest.mark.parametrize("kind", [v.NOT_INSTALLED, v.MISSING_DEPENDENCY])
def test_environment_problems_are_not_cached(
    config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    fake = FakeOracle(ConfigProblem(kind, "x: y. Install z."))
    monkeypatch.setattr(sdlint.model, "_predict", fake)
    for _ in range(2):
        load_verdict(read_config(config_path), SIGNATURE, cache_dir=tmp_path / "cache")
    assert fake.calls == 2
    assert entries(tmp_path / "cache") == []


def test_config_changing_during_prediction_is_not_stored(
    config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def racing(
        config: ConfigFile,
        tensors: Mapping[str, TensorSpec],
        architecture: str | None,
        index_keys: Sequence[str] | None = None,
    ) -> LoadVerdict:
        config_path.write_text(json.dumps({**CONFIG, "num_labels": 7}))
        return sample_verdict()

    monkeypatch.setattr(sdlint.model, "_predict", racing)
    load_verdict(read_config(config_path), SIGNATURE, cache_dir=tmp_path / "cache")
    assert entries(tmp_path / "cache") == []


# ---------------------------------------------------------------------------------------------
# Robustness


def cached_path(config_path: Path, cache_dir: Path) -> Path:
    [path] = entries(cache_dir)
    return path


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'{"key": "someone-else", "value": {}}',
        "truncated",
        "other-format",
        "missing-field",
        "wrong-key",
    ],
    ids=[
        "empty",
        "open-brace",
        "binary",
        "array",
        "foreign",
        "truncated",
        "other-format",
        "missing-field",
        "wrong-key",
    ],
)
def test_corrupt_entry_is_ignored_and_rebuilt(
    oracle: FakeOracle, config_path: Path, tmp_path: Path, content: bytes | str
) -> None:
    cache_dir = tmp_path / "cache"
    load_verdict(read_config(config_path), SIGNATURE, cache_dir=cache_dir)
    path = cached_path(config_path, cache_dir)
    good = path.read_bytes()
    document = json.loads(good)
    if content == "truncated":
        data = good[: len(good) // 2]
    elif content == "other-format":
        document["value"]["format"] = v.FORMAT_VERSION + 1
        data = json.dumps(document).encode()
    elif content == "missing-field":
        del document["value"]["value"]["dtype"]
        data = json.dumps(document).encode()
    elif content == "wrong-key":
        document["key"] = "0" * 64
        data = json.dumps(document).encode()
    else:
        assert isinstance(content, bytes)
        data = content
    path.write_bytes(data)

    assert load_verdict(read_config(config_path), SIGNATURE, cache_dir=cache_dir) == oracle.answer
    assert oracle.calls == 2
    assert path.read_bytes() == good  # rebuilt
    assert load_verdict(read_config(config_path), SIGNATURE, cache_dir=cache_dir) == oracle.answer
    assert oracle.calls == 2


def test_unwritable_cache_never_fails_the_lint(
    oracle: FakeOracle, config_path: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for _ in range(2):
        assert (
            load_verdict(read_config(config_path), SIGNATURE, cache_dir=blocker / "cache")
            == oracle.answer
        )
    assert oracle.calls == 2
    assert VerdictCache(blocker).put("k" * 64, sample_verdict()) is False
    assert VerdictCache(blocker).get("k" * 64) is None


WRITER = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_cache import sample_verdict
from sdlint.model.cache import VerdictCache
cache = VerdictCache(Path({cache!r}))
mine = sample_verdict("writer {n}")
for _ in range(40):
    assert cache.put({key!r}, mine)
    seen = cache.get({key!r})
    # a reader sees a complete entry from some writer, never a torn one
    assert seen is not None and seen.notes[0].startswith("writer "), seen
"""


@pytest.mark.slow
def test_concurrent_writers_leave_a_valid_entry(tmp_path: Path) -> None:
    key = "c" * 64
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER.format(tests=str(Path(__file__).parent), cache=str(tmp_path), key=key, n=n),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(6)
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr.decode()
    cache = VerdictCache(tmp_path)
    final = cache.get(key)
    assert final in {sample_verdict(f"writer {n}") for n in range(6)}
    left = [p.name for p in cache.directory.iterdir() if p.name != STAMP]  # the prune stamp
    assert left == [f"{key}.json"]  # no temp file left


# ---------------------------------------------------------------------------------------------
# A warm run imports neither torch nor transformers.

WARM_RUN = """
import json, sys, time
from pathlib import Path
start = time.perf_counter()
from sdlint.config_fields import read_config
from sdlint.model import load_verdict, TensorSpec
signature = {{k: TensorSpec(d, tuple(s)) for k, (d, s) in json.loads(Path({signature!r}).read_text()).items()}}
result = load_verdict(read_config(Path({config!r})), signature, cache_dir=Path({cache!r}))
elapsed = time.perf_counter() - start
heavy = sorted(m for m in ("torch", "transformers", "safetensors", "numpy") if m in sys.modules)
print(json.dumps({{"result": result.to_json(), "heavy": heavy, "seconds": elapsed}}))
"""


def run_warm(
    config_path: Path, signature: Mapping[str, TensorSpec], cache_dir: Path
) -> dict[str, Any]:
    signature_path = cache_dir.parent / "signature.json"
    signature_path.write_text(
        json.dumps({k: [s.dtype, list(s.shape)] for k, s in signature.items()})
    )
    code = WARM_RUN.format(
        signature=str(signature_path), config=str(config_path), cache=str(cache_dir)
    )
    env = {k: val for k, val in os.environ.items() if k != CACHE_DIR_ENV}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout.splitlines()[-1])
    assert isinstance(document, dict)
    return document


@pytest.mark.slow
def test_warm_run_imports_neither_torch_nor_transformers(config_path: Path, tmp_path: Path) -> None:
    """The cache is filled here (no torch needed); a fresh interpreter then answers from it."""
    cache_dir = tmp_path / "cache"
    key = cache_key(
        config_path.read_bytes(),
        SIGNATURE,
        None,
        transformers_version=installed_version("transformers"),
        torch_version=installed_version("torch"),
    )
    assert VerdictCache(cache_dir).put(key, sample_verdict())
    document = run_warm(config_path, SIGNATURE, cache_dir)
    assert document["heavy"] == []
    assert LoadVerdict.from_json(str(document["result"])) == sample_verdict()


@pytest.mark.model
@pytest.mark.slow
def test_cold_then_warm_with_the_real_oracle(config_path: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = transformers.RobertaForSequenceClassification(transformers.RobertaConfig(**CONFIG))
    signature = {k: TensorSpec("F32", tuple(t.shape)) for k, t in model.state_dict().items()}
    signature["classifier.out_proj.weight"] = TensorSpec("F32", (3, 32))
    del torch
    cache_dir = tmp_path / "cache"
    cold = run_warm(config_path, signature, cache_dir)  # a miss: runs the oracle
    assert "torch" in cold["heavy"] and "transformers" in cold["heavy"]
    warm = run_warm(config_path, signature, cache_dir)
    assert warm["heavy"] == []
    assert warm["result"] == cold["result"]
    verdict = LoadVerdict.from_json(str(warm["result"]))
    assert [m.model_key for m in verdict.mismatched] == ["classifier.out_proj.weight"]


class _FullDisk:
    """A file whose writes fail as on a full disk."""

    def __init__(self, f: Any) -> None:
        self._f = f

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def _read_only(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    cache_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # root writes through file modes: refuse as a read-only mount does
        refuse = OSError(errno.EROFS, os.strerror(errno.EROFS))
        monkeypatch.setattr("tempfile.mkstemp", Mock(side_effect=refuse))
        return os.strerror(errno.EROFS)
    cache_dir.chmod(0o555)
    return os.strerror(errno.EACCES)


def _full(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    real = os.fdopen
    monkeypatch.setattr("sdlint.model.cache.os.fdopen", lambda *a, **k: _FullDisk(real(*a, **k)))
    return os.strerror(errno.ENOSPC)


@pytest.mark.parametrize("fault", [_read_only, _full], ids=["read-only", "full"])
def test_unwritable_cache_degrades_to_an_uncached_run_with_a_note(
    oracle: FakeOracle,
    config_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fault: Any,
) -> None:
    """The same findings as an uncached run, one note naming the cache, no stray files."""
    from sdlint.cli import main
    from tests.safetensors_files import write_tensors

    write_tensors(
        config_path.parent / "model.safetensors",
        {k: (s.dtype, s.shape) for k, s in SIGNATURE.items()},
    )
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--no-cache", "model"]) == 1
    uncached = capsys.readouterr().out
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv(CACHE_DIR_ENV, str(cache_dir))
    reason = fault(cache_dir, monkeypatch)
    try:
        for _ in range(2):  # nothing was stored: the second run builds the verdict again
            assert main(["check", "model"]) == 1
            out = capsys.readouterr().out
            note = (
                f"note: the verdict cache {cache_dir} cannot be written ({reason}): model verdicts "
                "are not cached, so later runs build them again\n"
            )
            assert out.count(note) == 1
            assert out.replace(note, "") == uncached
        assert oracle.calls == 3
        assert not [p for p in cache_dir.rglob("*") if p.is_file()]  # no temp file left behind
    finally:
        cache_dir.chmod(0o755)


@pytest.mark.parametrize(
    "name", ["torch", "transformers", "safetensors", "pytest", "typing-extensions", "Jinja2"]
)
def test_installed_version_agrees_with_importlib_metadata(name: str) -> None:
    import importlib.metadata

    try:
        expected: str | None = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        expected = None
    assert installed_version(name) == expected


def test_installed_version_takes_the_first_distribution_on_sys_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A distribution installed twice: the first sys.path entry's metadata, as importlib.metadata
    reads it (and as import takes the package), not the listing of a later entry."""
    import importlib.metadata

    first, second = tmp_path / "first", tmp_path / "second"
    for folder, version in ((first, "1.2.3"), (second, "9.9.9")):
        info = folder / f"fake_dist-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: fake-dist\nVersion: {version}\n\nVersion: 0\n"
        )
    monkeypatch.setattr(sys, "path", [str(tmp_path / "absent"), str(first), str(second)])
    sdlint.environment._dist_infos.cache_clear()
    sdlint.environment._version_on.cache_clear()
    try:
        assert installed_version("Fake.Dist") == "1.2.3" == importlib.metadata.version("fake-dist")
        assert installed_version("not-installed-anywhere") is None
    finally:
        sdlint.environment._dist_infos.cache_clear()
        sdlint.environment._version_on.cache_clear()


def test_installed_version_leaves_what_it_cannot_read_to_importlib_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "site"
    (folder / "odd_dist-2.0.dist-info").mkdir(parents=True)  # no METADATA file
    monkeypatch.setattr(sys, "path", [str(folder)])
    asked: list[str] = []

    def metadata_version(name: str) -> str:
        asked.append(name)
        return "2.0"

    monkeypatch.setattr(sdlint.environment, "_metadata_version", metadata_version)
    sdlint.environment._dist_infos.cache_clear()
    sdlint.environment._version_on.cache_clear()
    try:
        assert installed_version("odd-dist") == "2.0"
        assert asked == ["odd-dist"]
    finally:
        sdlint.environment._dist_infos.cache_clear()
        sdlint.environment._version_on.cache_clear()


@pytest.mark.parametrize("use_cache", [True, False])
def test_a_run_computes_each_distinct_model_once(
    oracle: FakeOracle, tmp_path: Path, use_cache: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many checkpoints in one run: one oracle computation per distinct (config, architecture,
    signature), not one per checkpoint, whether or not the disk cache is on."""
    from sdlint.engine import Settings, check_paths
    from tests.safetensors_files import write_tensors

    three = {"classifier.out_proj.weight": ("F32", (3, 32))}
    five = {"classifier.out_proj.weight": ("F32", (5, 32))}
    layouts = [(three, CONFIG)] * 4 + [(five, CONFIG)] * 2 + [(three, {**CONFIG, "vocab_size": 64})]
    for i, (tensors, config) in enumerate(layouts):
        folder = tmp_path / "models" / f"run-{i}"
        write_tensors(folder / "model.safetensors", tensors)
        (folder / "config.json").write_text(json.dumps(config, indent=2))
    settings = Settings(use_cache=use_cache, isolated=True, select="SD1")
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    report = check_paths([tmp_path / "models"], settings)
    assert len(report.checkpoints) == 7
    assert oracle.calls == 3


def test_a_computed_verdict_prunes_its_folders(
    oracle: FakeOracle, config_path: Path, tmp_path: Path
) -> None:
    """Storing a verdict looks its folders over (sdlint/prune.py): verdicts unused for longer than
    `KEEP_VERDICTS` allows go, from the exact cache and the recorded verdicts alike; a hit does
    not look."""
    cache_dir = tmp_path / "cache"
    unused_days = sdlint.model.cache.KEEP_VERDICTS[2]
    stale = []
    for cache in (VerdictCache(cache_dir), VerdictCache.recorded(cache_dir)):
        path = cache.path("0" * 64)
        path.parent.mkdir(parents=True)
        path.write_text("{}")
        long_ago = path.stat().st_mtime - (unused_days + 1) * 86_400
        os.utime(path, (long_ago, long_ago))
        stale.append(path)
    load_verdict(read_config(config_path), SIGNATURE, cache_dir=cache_dir)
    assert oracle.calls == 1 and not any(path.exists() for path in stale)
    assert len(entries(cache_dir)) == 1 and len(list((cache_dir / "recorded").rglob("*.json"))) == 1


def test_a_key_is_what_earlier_releases_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A verdict key is a contract with every cache and every committed folder of recorded
    verdicts: the same inputs give the key sdlint 0.1.0 gave (a faster way of computing it must
    give the same bytes)."""
    import sdlint
    from sdlint.formats import TensorSpec

    monkeypatch.setattr(sdlint, "__version__", "0.1.0")
    signature = {
        "b.weight": TensorSpec("F32", (2, 768)),
        "a.bias": TensorSpec("BF16", (3,)),
        "c": TensorSpec("I64", ()),
        "d": TensorSpec("F16", (4,), earlier=(TensorSpec("F16", (5,)),)),
    }
    assert (
        cache_key(
            b'{"x": 1}',
            signature,
            "BertModel",
            transformers_version="4.57.6",
            torch_version="2.13.0",
        )
        == "d5ee67ecfe1e83317988faa85fb99ba8eacbe91048a6b1b22ccde5bab90e27a4"
    )
    assert (
        cache_key(
            b"{}",
            signature,
            None,
            transformers_version=None,
            torch_version=None,
            extra={"index_keys": "ab"},
        )
        == "554d19b9d83d6e062eeedffebb92dbf8ac3ed3fd2fb1afcc2559adf686fde1b8"
    )
