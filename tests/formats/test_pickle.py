"""The torch.save reader: tensors listed from files torch itself wrote, hostile pickles named and
never run, broken files described, never an exception."""

from __future__ import annotations

import io
import pickle
import struct
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdlint.dtypes import TORCH_DTYPES
from sdlint.formats.pickle import (
    MAX_PICKLE_BYTES,
    PickleCheckpoint,
    PickleTensor,
    read_pickle_checkpoint,
)
from tests.pickle_files import (
    Reduce,
    payloads,
    reducers,
    rewrite_zip,
    run_unpickler,
    torch_save,
    torch_zip,
)

torch = pytest.importorskip("torch")

LAYOUTS = [pytest.param(False, id="zip"), pytest.param(True, id="legacy")]


def describe(path: Path) -> PickleCheckpoint:
    result = read_pickle_checkpoint(path)
    assert isinstance(result, PickleCheckpoint)
    return result


def tensors_of(checkpoint: PickleCheckpoint) -> dict[str, tuple[str | None, tuple[int, ...]]]:
    return {t.name: (t.dtype, t.shape) for t in checkpoint.entries}


# -- files torch writes --------------------------------------------------------------------------


@pytest.mark.parametrize("legacy", LAYOUTS)
def test_state_dict_of_a_module(tmp_path: Path, legacy: bool) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    path = torch_save(tmp_path / "pytorch_model.bin", model.state_dict(), legacy=legacy)
    checkpoint = describe(path)
    assert checkpoint.layout == ("legacy" if legacy else "zip")
    assert checkpoint.problems == () and checkpoint.unsafe == ()
    assert tensors_of(checkpoint) == {
        "0.weight": ("F32", (2, 3)),
        "0.bias": ("F32", (2,)),
        "1.weight": ("F32", (2,)),
        "1.bias": ("F32", (2,)),
    }
    assert sorted(s.size or 0 for s in checkpoint.storages) == [8, 8, 8, 24]


def _creatable_dtypes() -> Iterator[Any]:
    for name in TORCH_DTYPES:
        dtype = getattr(torch, name, None)
        if dtype is None:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tensor = torch.zeros(2, 3, dtype=dtype)
                if tensor.is_quantized:
                    continue  # quantized tensors are not described (see below)
                torch.save(tensor, io.BytesIO())
        except (RuntimeError, TypeError, NotImplementedError, KeyError):
            continue
        yield pytest.param(name, id=name)


@pytest.mark.parametrize("legacy", LAYOUTS)
@pytest.mark.parametrize("name", list(_creatable_dtypes()))
def test_every_dtype_torch_saves(tmp_path: Path, name: str, legacy: bool) -> None:
    tensor = torch.zeros(2, 3, dtype=getattr(torch, name))
    path = torch_save(tmp_path / "x.pt", {"t": tensor, "view": tensor[1]}, legacy=legacy)
    checkpoint = describe(path)
    expected_dtype, itemsize = TORCH_DTYPES[name]
    assert checkpoint.unsafe == ()
    assert [p.tensor for p in checkpoint.problems] == ([] if expected_dtype else ["t", "view"])
    t, view = checkpoint.entries
    assert (t.name, t.torch_dtype, t.dtype, t.shape, t.itemsize) == (
        "t",
        name,
        expected_dtype,
        (2, 3),
        itemsize,
    )
    assert tensor.element_size() == itemsize
    assert (view.shape, view.storage, view.storage_offset) == ((3,), t.storage, 3)
    (storage,) = checkpoint.storages
    assert storage.size == tensor.untyped_storage().nbytes() == t.storage_bytes_needed


def test_quantized_tensors_are_named_not_described(tmp_path: Path) -> None:
    q = torch.quantize_per_tensor(torch.zeros(4), 0.1, 0, torch.qint8)
    path = torch_save(tmp_path / "q.pt", {"q": q, "w": torch.zeros(2)})
    checkpoint = describe(path)
    assert checkpoint.unsafe == ()
    assert tensors_of(checkpoint) == {"w": ("F32", (2,))}
    assert [(p.kind, p.tensor) for p in checkpoint.problems] == [("unsupported-tensor", "q")]


def test_parameters_and_shared_storage(tmp_path: Path) -> None:
    weight = torch.nn.Parameter(torch.zeros(4, 2))
    path = torch_save(tmp_path / "p.pt", {"w": weight, "tied": weight, "row": weight[3]})
    checkpoint = describe(path)
    assert tensors_of(checkpoint) == {
        "w": ("F32", (4, 2)),
        "tied": ("F32", (4, 2)),
        "row": ("F32", (2,)),
    }
    assert len(checkpoint.storages) == 1
    assert checkpoint.entries[2].storage_offset == 6


@pytest.mark.parametrize("legacy", LAYOUTS)
@pytest.mark.parametrize("wrapper", ["state_dict", "model", "module", "model_state_dict"])
def test_wrapped_state_dicts(tmp_path: Path, wrapper: str, legacy: bool) -> None:
    path = torch_save(
        tmp_path / "x.pt", {wrapper: {"w": torch.zeros(2)}, "epoch": 3}, legacy=legacy
    )
    checkpoint = describe(path)
    assert checkpoint.wrapper == (wrapper,)
    assert tensors_of(checkpoint) == {"w": ("F32", (2,))}


def test_lightning_checkpoint(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.zeros(1, 2)).sum().backward()
    optimizer.step()
    ckpt = {
        "epoch": 1,
        "global_step": 10,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "loops": {"fit_loop": {"state_dict": {}}},
        "callbacks": {},
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": {"lr": 0.001, "layers": [2, 2], "name": None},
    }
    checkpoint = describe(torch_save(tmp_path / "last.ckpt", ckpt))
    assert checkpoint.problems == () and checkpoint.unsafe == ()
    assert checkpoint.wrapper == ("state_dict",)
    assert tensors_of(checkpoint) == {
        "model.weight": ("F32", (2, 2)),
        "model.bias": ("F32", (2,)),
    }


@pytest.mark.parametrize(
    ("obj", "kind"),
    [
        ([torch.zeros(2)], "a list of 1 items"),
        (torch.zeros(2), "a single tensor"),
        ({"config": {"a": 1}}, "a dict without tensors"),
        (3, "a int"),
    ],
)
def test_other_structures_are_not_state_dicts(tmp_path: Path, obj: Any, kind: str) -> None:
    checkpoint = describe(torch_save(tmp_path / "x.pt", obj))
    (problem,) = checkpoint.problems
    assert problem.kind == "not-state-dict" and kind in problem.message
    assert checkpoint.entries == () and not checkpoint.readable


def test_non_tensor_entries_are_kept_aside(tmp_path: Path) -> None:
    path = torch_save(tmp_path / "x.pt", {"w": torch.zeros(2), "_version": 2})
    checkpoint = describe(path)
    assert tensors_of(checkpoint) == {"w": ("F32", (2,))}
    assert checkpoint.other_entries == ("_version",)


def test_empty_state_dict(tmp_path: Path) -> None:
    checkpoint = describe(torch_save(tmp_path / "x.pt", {}))
    assert checkpoint.readable and checkpoint.entries == ()


# -- integrity -----------------------------------------------------------------------------------


def test_truncated_zip(tmp_path: Path) -> None:
    path = torch_save(tmp_path / "x.bin", {"w": torch.zeros(100)})
    path.write_bytes(path.read_bytes()[:300])
    checkpoint = describe(path)
    (problem,) = checkpoint.problems
    assert problem.kind == "unreadable" and "not a readable zip archive" in problem.message


def test_missing_storage_record(tmp_path: Path) -> None:
    path = torch_save(tmp_path / "x.bin", {"a": torch.zeros(2), "b": torch.zeros(3)})
    rewrite_zip(path, lambda name, data: None if name.endswith("data/1") else data)
    checkpoint = describe(path)
    assert [p.message for p in checkpoint.problems] == [
        "storage `1` has no record (zip entry x/data/1 is missing; truncated file?); "
        "tensors affected: `b`"
    ]
    assert checkpoint.storage("1") is not None and checkpoint.storage("1").size is None  # type: ignore[union-attr]


def test_storage_smaller_than_the_tensor_needs(tmp_path: Path) -> None:
    path = torch_save(tmp_path / "x.bin", {"a": torch.zeros(2, 3)})
    rewrite_zip(path, lambda name, data: data[:8] if name.endswith("data/0") else data)
    messages = [p.message for p in describe(path).problems]
    assert messages == [
        "storage `0` holds 8 bytes, but the pickle declares 6 elements of 4 bytes (24 bytes)",
        "tensor `a` (float32, shape [2, 3], offset 0) needs 24 bytes of storage `0`, which holds 8",
    ]


def test_truncated_legacy_file(tmp_path: Path) -> None:
    path = torch_save(tmp_path / "x.pt", {"a": torch.zeros(4), "b": torch.zeros(4)}, legacy=True)
    data = path.read_bytes()
    path.write_bytes(data[:-20])  # b's 16 bytes and 4 of its size word... of a's data
    checkpoint = describe(path)
    kinds = {p.kind for p in checkpoint.problems}
    assert kinds == {"storage"}
    assert any(
        "truncated" in p.message or "has no record" in p.message for p in checkpoint.problems
    )


def test_not_a_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"GGUF\x00\x00")
    (problem,) = describe(path).problems
    assert problem.message.startswith("not a torch.save file: not a valid pickle")
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    (problem,) = describe(plain).problems
    assert "no torch magic number" in problem.message


def test_zip_that_is_not_a_torch_archive(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    (problem,) = describe(path).problems
    assert "not a torch.save archive" in problem.message


def test_oversized_pickle_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = torch_zip(tmp_path / "x.bin", b"")
    # Claim a huge data.pkl in the central directory without writing it.
    data = bytearray(path.read_bytes())
    name = b"archive/data.pkl"
    central = data.find(b"PK\x01\x02")  # the central directory's first entry: data.pkl
    assert central >= 0 and data[central + 46 : central + 46 + len(name)] == name
    data[central + 24 : central + 28] = struct.pack("<I", MAX_PICKLE_BYTES + 1)
    path.write_bytes(bytes(data))
    (problem,) = describe(path).problems
    assert "more than the reader's limit" in problem.message


# -- hostile pickles -----------------------------------------------------------------------------

_imports: list[str] = []
_recording = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recording and event == "import":
        _imports.append(str(args[0]))


sys.addaudithook(_audit)


def read_recording_imports(path: Path) -> tuple[PickleCheckpoint, list[str]]:
    global _recording
    _imports.clear()
    _recording = True
    try:
        return describe(path), list(_imports)
    finally:
        _recording = False


def _payload_ids() -> list[str]:
    return list(payloads(Path("m")))


@pytest.mark.parametrize("kind", _payload_ids())
@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_hostile_pickles_are_named_and_never_run(tmp_path: Path, kind: str, container: str) -> None:
    marker = tmp_path / "marker"
    data, qualified = payloads(marker)[kind]
    path = tmp_path / "pytorch_model.bin"
    if container == "zip":
        torch_zip(path, data)
    else:
        path.write_bytes(data)  # torch.load unpickles the legacy layout's first pickle as it is
    checkpoint, imports = read_recording_imports(path)
    assert not marker.exists()
    assert qualified in {u.qualified for u in checkpoint.unsafe}
    assert imports == []


@pytest.mark.parametrize("kind", ["exec", "eval", "system", "popen"])
@pytest.mark.parametrize("legacy", LAYOUTS)
def test_hostile_call_beside_tensors(tmp_path: Path, kind: str, legacy: bool) -> None:
    marker = tmp_path / "marker"
    obj, qualified = reducers(marker)[kind]
    path = torch_save(tmp_path / "x.bin", {"w": torch.zeros(2), "evil": obj}, legacy=legacy)
    checkpoint, imports = read_recording_imports(path)
    assert not marker.exists() and imports == []
    assert [(u.qualified, u.called) for u in checkpoint.unsafe] == [(qualified, True)]
    assert tensors_of(checkpoint) == {"w": ("F32", (2,))}


def test_audit_hook_sees_imports() -> None:
    """The hook the tests above rely on does record imports."""
    global _recording
    sys.modules.pop("colorsys", None)
    _imports.clear()
    _recording = True
    try:
        import colorsys  # noqa: F401
    finally:
        _recording = False
    assert "colorsys" in _imports


def test_payloads_run_when_unpickled(tmp_path: Path) -> None:
    """The hostile pickles are real: Python's own unpickler runs them (in another process)."""
    for kind, (data, _) in payloads(tmp_path / "m").items():
        if kind == "popen-newobj":
            continue  # NEWOBJ only instantiates: the import is the harm
        marker = tmp_path / f"marker-{kind}"
        data = payloads(marker)[kind][0]
        run_unpickler(data)
        assert marker.exists(), kind


def test_unsafe_global_names_what_was_written(tmp_path: Path) -> None:
    data = pickle.dumps(Reduce(exec, "1"), protocol=2)
    checkpoint = describe(torch_zip(tmp_path / "x.bin", data))
    (found,) = checkpoint.unsafe
    assert (found.qualified, found.written, found.called, found.opcode) == (
        "builtins.exec",
        "__builtin__.exec",
        True,
        "REDUCE",
    )


def test_every_unsafe_global_is_named_after_the_simulation_gives_up(tmp_path: Path) -> None:
    # `_codecs.encode(..., "rot13")` is allowed but not simulated; Python's unpickler carries on
    # past it to the next global, so the reader must name that one too.
    rot13 = b"X\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86"
    data = b"\x80\x02cos\nsystem\n)R0c_codecs\nencode\n" + rot13 + b"R0csubprocess\ncall\n."
    checkpoint = describe(torch_zip(tmp_path / "x.bin", data))
    assert [u.qualified for u in checkpoint.unsafe] == ["os.system", "subprocess.call"]
    assert not checkpoint.readable


# -- never an exception --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("valid")
    sd = {"a": torch.zeros(2, 3), "b": torch.ones(3, dtype=torch.bfloat16)}
    return [
        torch_save(folder / "z.pt", sd).read_bytes(),
        torch_save(folder / "l.pt", sd, legacy=True).read_bytes(),
    ]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_files_give_a_value(
    valid_files: list[bytes], tmp_path: Path, data: st.DataObject
) -> None:
    original = data.draw(st.sampled_from(valid_files))
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(mutated)))
    path = tmp_path / "m.pt"
    path.write_bytes(bytes(mutated[:cut]))
    assert isinstance(describe(path), PickleCheckpoint)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=200))
def test_arbitrary_pickle_bytes_give_a_value(tmp_path: Path, body: bytes) -> None:
    for data in (b"\x80\x02" + body, body):
        checkpoint = describe(torch_zip(tmp_path / "x.bin", data))
        assert isinstance(checkpoint, PickleCheckpoint)
        assert all(isinstance(t, PickleTensor) for t in checkpoint.entries)


# -- against picklescan, the scanner the Hugging Face Hub runs on uploads -----------------------


def _picklescan(path: Path) -> dict[str, str]:
    scanner = pytest.importorskip("picklescan.scanner")
    result = scanner.scan_file_path(str(path))
    assert not result.scan_err
    return {f"{g.module}.{g.name}": g.safety.value for g in result.globals}


@pytest.mark.parametrize("kind", _payload_ids())
def test_every_global_picklescan_finds_dangerous_is_named(tmp_path: Path, kind: str) -> None:
    data, _ = payloads(tmp_path / "marker")[kind]
    path = torch_zip(tmp_path / "pytorch_model.bin", data)
    theirs = _picklescan(path)
    ours = {u.written or u.qualified for u in describe(path).unsafe}
    dangerous = {name for name, safety in theirs.items() if safety == "dangerous"}
    assert dangerous and dangerous <= ours
    assert ours <= set(theirs)


@pytest.mark.parametrize("legacy", LAYOUTS)
def test_clean_torch_files_agree_with_picklescan(tmp_path: Path, legacy: bool) -> None:
    sd = {
        "w": torch.nn.Parameter(torch.zeros(2)),
        "f8": torch.zeros(2, dtype=torch.float8_e4m3fn),
        "i": torch.zeros(2, dtype=torch.int64),
    }
    path = torch_save(tmp_path / "pytorch_model.bin", sd, legacy=legacy)
    theirs = _picklescan(path)
    assert "dangerous" not in theirs.values() and theirs
    assert describe(path).unsafe == ()


def test_legacy_tar_format_is_named_and_its_pickle_searched(tmp_path: Path) -> None:
    import tarfile

    marker = tmp_path / "marker"
    data, qualified = payloads(marker)["exec-reduce"]
    path = tmp_path / "old.pt"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in (("sys_info", pickle.dumps({})), ("pickle", data)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    checkpoint, imports = read_recording_imports(path)
    assert [u.qualified for u in checkpoint.unsafe] == [qualified]
    (problem,) = checkpoint.problems
    assert problem.message.startswith("legacy tar format of torch before 0.4")
    assert not marker.exists() and imports == []
