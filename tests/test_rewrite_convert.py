"""`sdlint.rewrite.convert_pickle`: a torch.save file to safetensors without unpickling it.

Every tensor must come out equal (dtype, shape, values) to what `torch.load` gives, whatever its
strides, offset or storage sharing; a file that is not a clean state dict is refused with the
original untouched; a failure at any point leaves the original as it was and no new file."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from safetensors import safe_open  # noqa: E402

from sdlint import rewrite  # noqa: E402
from sdlint.formats.pickle import safetensors_index_name, safetensors_name  # noqa: E402
from sdlint.formats.safetensors import Header, read_header  # noqa: E402
from sdlint.rewrite import RewriteError, convert_pickle  # noqa: E402
from tests.pickle_files import Reduce, rewrite_zip, torch_save, touch_code  # noqa: E402
from tests.write_faults import fail_after  # noqa: E402


def every_kind_of_tensor() -> dict[str, Any]:
    """Contiguous tensors of several dtypes, and views: transposed, sliced with an offset, with a
    step, expanded (stride 0), sharing one storage (tied), 0-dim, empty."""
    torch.manual_seed(0)
    base = torch.randn(4, 6)
    return {
        "weight": base,
        "tied": base,  # the same tensor under two names: one storage
        "transposed": base.t(),
        "slice": base[1:3, 2:5],
        "step": base[:, ::2],
        "row": base[2],
        "expanded": torch.arange(3.0).reshape(3, 1).expand(3, 4),
        "expanded_rows": torch.arange(4.0).reshape(1, 4).expand(3, 4),
        "transposed_3d": torch.randn(2, 3, 4).permute(2, 0, 1),
        "c64_t": torch.randn(3, 2, dtype=torch.complex64).t(),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3),
        "bf16": torch.randn(3, 5).to(torch.bfloat16),
        "bf16_t": torch.randn(5, 3).to(torch.bfloat16).t(),
        "f16": torch.randn(7).half(),
        "f64": torch.randn(2, 2, dtype=torch.float64),
        "i64": torch.arange(5),
        "i8": torch.arange(-3, 4, dtype=torch.int8),
        "u8": torch.arange(9, dtype=torch.uint8).reshape(3, 3)[:, 1],
        "bool": torch.tensor([True, False, True]),
        "param": torch.nn.Parameter(torch.ones(2, 2)),
    }


def loaded(path: Path) -> dict[str, Any]:
    with safe_open(str(path), framework="pt") as f:
        return {name: f.get_tensor(name) for name in f.keys()}


def assert_same_tensors(converted: dict[str, Any], original: dict[str, Any]) -> None:
    assert set(converted) == set(original)
    for name, tensor in original.items():
        got = converted[name]
        assert got.dtype == tensor.dtype, name
        assert got.shape == tensor.shape, name
        assert torch.equal(got, tensor.detach()), name


@pytest.mark.parametrize("gather", [True, False], ids=["gathered", "run-by-run"])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_every_tensor_comes_out_as_torch_loads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, legacy: bool, gather: bool
) -> None:
    """Views with short contiguous runs are gathered in memory from the storage they span, or,
    when that is too large, copied run by run: both give the same bytes."""
    if not gather:
        monkeypatch.setattr(rewrite, "_GATHER_LIMIT", 0)
    path = torch_save(tmp_path / "model.pt", every_kind_of_tensor(), legacy=legacy)
    original = torch.load(path, weights_only=True)
    result = convert_pickle(path)
    assert result.target == tmp_path / "model.safetensors"
    assert result.tensors == len(original) and result.backup is None
    assert not path.exists()
    assert_same_tensors(loaded(result.target), original)
    header = read_header(result.target)
    assert isinstance(header, Header) and header.metadata == {"format": "pt"}
    assert result.new_size == result.target.stat().st_size
    # every tensor starts at a multiple of its element size in the data section
    for info in header.tensors.values():
        assert (
            info.begin % {"F64": 8, "I64": 8, "F32": 4, "BF16": 2, "F16": 2}.get(info.dtype, 1) == 0
        )


def test_tied_weights_each_get_their_own_bytes(tmp_path: Path) -> None:
    """safetensors forbids tensors sharing storage: each name gets a copy of its bytes."""
    from safetensors.torch import load_file

    base = torch.randn(3, 4)
    path = torch_save(tmp_path / "pytorch_model.bin", {"a": base, "b": base, "c": base[1]})
    result = convert_pickle(path)
    assert result.target.name == "model.safetensors"
    header = read_header(result.target)
    assert isinstance(header, Header)
    spans = sorted((i.begin, i.end) for i in header.tensors.values())
    assert spans == [(0, 48), (48, 96), (96, 112)]
    tensors = load_file(str(result.target))
    assert torch.equal(tensors["a"], base) and torch.equal(tensors["b"], base)
    assert torch.equal(tensors["c"], base[1])


def test_backup_keeps_the_original_byte_for_byte(tmp_path: Path) -> None:
    path = torch_save(tmp_path / "x.pth", {"w": torch.ones(3)})
    before = path.read_bytes()
    result = convert_pickle(path, backup=True)
    assert result.backup == tmp_path / "x.pth.bak"
    assert result.backup.read_bytes() == before and not path.exists()


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("pytorch_model.bin", "model.safetensors"),
        ("adapter_model.bin", "adapter_model.safetensors"),
        ("model.pt", "model.safetensors"),
        ("weights.best.pth", "weights.best.safetensors"),
        ("last.ckpt", "last.safetensors"),
        ("pytorch_model-00002-of-00010.bin", "model-00002-of-00010.safetensors"),
        ("other-00002-of-00010.bin", "other-00002-of-00010.safetensors"),
        # save_pretrained(variant="fp16") names (transformers' _add_variant)
        ("pytorch_model.fp16.bin", "model.fp16.safetensors"),
        ("pytorch_model.fp16-00001-of-00007.bin", "model.fp16-00001-of-00007.safetensors"),
        ("diffusion_pytorch_model.fp16.bin", "diffusion_pytorch_model.fp16.safetensors"),
        (
            "diffusion_pytorch_model-00001-of-00002.fp16.bin",
            "diffusion_pytorch_model-00001-of-00002.fp16.safetensors",
        ),
    ],
)
def test_target_names(name: str, target: str) -> None:
    assert safetensors_name(Path("m") / name) == Path("m") / target


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("pytorch_model.bin.index.json", "model.safetensors.index.json"),
        ("other.bin.index.json", "other.safetensors.index.json"),
        ("pytorch_model.bin.index.fp16.json", "model.safetensors.index.fp16.json"),
        (
            "diffusion_pytorch_model.bin.index.fp16.json",
            "diffusion_pytorch_model.safetensors.index.fp16.json",
        ),
        (  # diffusers' legacy variant names: its shards keep them too
            "diffusion_pytorch_model.bin.fp16.index.json",
            "diffusion_pytorch_model.safetensors.fp16.index.json",
        ),
    ],
)
def test_index_target_names(name: str, target: str) -> None:
    assert safetensors_index_name(Path("m") / name) == Path("m") / target


def refused(path: Path, match: str) -> None:
    """The conversion fails saying so; the original is untouched, and a file already at the
    target's name too."""
    target = safetensors_name(path)
    before = path.read_bytes()
    there = target.read_bytes() if target.exists() else None
    with pytest.raises(RewriteError, match=match) as caught:
        convert_pickle(path)
    assert "the original is intact" in str(caught.value)
    assert path.read_bytes() == before
    assert (target.read_bytes() if target.exists() else None) == there
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(rewrite.TEMP_SUFFIX)] == []
    assert sorted(p.name for p in path.parent.iterdir() if "sdlint-tmp" in p.name) == []


def test_unsafe_pickle_is_never_converted(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = torch_save(
        tmp_path / "model.pt", {"w": torch.zeros(2), "x": Reduce(exec, touch_code(marker))}
    )
    marker.unlink(missing_ok=True)
    refused(path, "allow-list")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ({"state_dict": {"w": torch.zeros(2)}, "epoch": 3}, "wrapped under `state_dict`"),
        ({"w": torch.zeros(2), "step": 3}, "not tensors"),
        ([torch.zeros(2)], "not a state dict"),
        ({}, "no tensors"),
        ({"w": torch.zeros(2), "c": collections.ChainMap()}, "allow-list"),
    ],
    ids=["wrapped", "non-tensor-entry", "list", "empty", "unsafe-global"],
)
def test_what_is_not_a_clean_state_dict_is_refused(tmp_path: Path, obj: Any, match: str) -> None:
    refused(torch_save(tmp_path / "model.pt", obj), match)


def test_short_storage_is_refused(tmp_path: Path) -> None:
    path = torch_save(tmp_path / "model.pt", {"a": torch.zeros(2, 3)})
    rewrite_zip(path, lambda name, data: data[:8] if name.endswith("data/0") else data)
    refused(path, "holds 8 bytes")


def test_big_endian_storages_are_refused(tmp_path: Path) -> None:
    path = torch_save(tmp_path / "model.pt", {"a": torch.zeros(2)})
    rewrite_zip(path, lambda name, data: b"big" if name.endswith("/byteorder") else data)
    refused(path, "big-endian")


def test_compressed_storage_is_refused(tmp_path: Path) -> None:
    import zipfile

    path = torch_save(tmp_path / "model.pt", {"a": torch.zeros(64)})
    with zipfile.ZipFile(path) as archive:
        entries = [(i.filename, archive.read(i)) for i in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries:
            kind = zipfile.ZIP_DEFLATED if name.endswith("data/0") else zipfile.ZIP_STORED
            archive.writestr(name, data, compress_type=kind)
    refused(path, "compressed")


def test_an_existing_target_is_never_replaced(tmp_path: Path) -> None:
    path = torch_save(tmp_path / "pytorch_model.bin", {"a": torch.zeros(2)})
    (tmp_path / "model.safetensors").write_bytes(b"mine!")
    refused(path, "model.safetensors already exists")
    assert (tmp_path / "model.safetensors").read_bytes() == b"mine!"


def test_a_target_appearing_during_the_conversion_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = torch_save(tmp_path / "pytorch_model.bin", {"a": torch.zeros(2)})
    verify = rewrite._CheckpointJob.verify

    def racing_verify(self: Any, tmp: Path) -> None:
        verify(self, tmp)
        (tmp_path / "model.safetensors").write_bytes(b"mine!")

    monkeypatch.setattr(rewrite._CheckpointJob, "verify", racing_verify)
    before = path.read_bytes()
    with pytest.raises(RewriteError, match="appeared meanwhile"):
        convert_pickle(path)
    assert (tmp_path / "model.safetensors").read_bytes() == b"mine!"
    assert path.read_bytes() == before


def test_read_only_file_is_refused(tmp_path: Path) -> None:
    path = torch_save(tmp_path / "model.pt", {"a": torch.zeros(2)})
    path.chmod(0o444)  # refused by its mode, even for root
    refused(path, "read-only")


@pytest.mark.parametrize("fail_at", [0, 10, 200])
def test_a_failing_write_leaves_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    path = torch_save(tmp_path / "model.pt", {"a": torch.randn(100), "b": torch.randn(7)})
    monkeypatch.setattr(rewrite, "_write", fail_after(fail_at))
    refused(path, "writing the new file failed")
    monkeypatch.undo()
    original = torch.load(path, weights_only=True)
    assert_same_tensors(loaded(convert_pickle(path).target), original)


def test_a_file_changed_during_the_conversion_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = torch_save(tmp_path / "model.pt", {"a": torch.zeros(2)})
    write = rewrite._CheckpointJob.write

    def meddling_write(self: Any, sink: Any) -> None:
        write(self, sink)
        with path.open("ab") as f:
            f.write(b"!")

    monkeypatch.setattr(rewrite._CheckpointJob, "write", meddling_write)
    with pytest.raises(RewriteError, match="modified during the rewrite"):
        convert_pickle(path)
    assert path.exists() and not (tmp_path / "model.safetensors").exists()
