"""sdlint.rewrite under faults: SIGKILL mid-write, permission errors, a full disk, a failing fsync,
corruption on the way to disk, and a file changed underneath us. Every case checks that the
original is byte-identical and still the same inode, that the error is one line, and that no
temporary file is left behind (except after SIGKILL, where nothing can remove it).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from sdlint import rewrite
from sdlint.rewrite import (
    TEMP_SUFFIX,
    NewTensor,
    RewriteError,
    RewritePlan,
    rewrite_safetensors,
    write_text_atomic,
)
from tests.write_faults import fail_after

REPO = Path(__file__).resolve().parent.parent
PLAN = RewritePlan(
    renames={"layer.0.weight": "module.layer.0.weight"},
    drops=frozenset({"layer.1.weight"}),
    replacements={"head.weight": NewTensor("F32", (2, 3), np.ones(6, np.float32).tobytes())},
)


def _make(path: Path) -> Path:
    rng = np.random.default_rng(1)
    save_file(
        {
            "layer.0.weight": rng.standard_normal((64, 200)).astype(np.float32),  # 51,200 bytes
            "layer.1.weight": rng.standard_normal((32, 100)).astype(np.float32),
            "layer.2.weight": rng.standard_normal((50, 100)).astype(np.float32),
            "head.weight": rng.standard_normal((10, 100)).astype(np.float32),
        },
        str(path),
        metadata={"format": "pt"},
    )
    return path


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    return _make(tmp_path / "model.safetensors")


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes PLAN produces when nothing goes wrong."""
    path = _make(tmp_path_factory.mktemp("reference") / "model.safetensors")
    rewrite_safetensors(path, PLAN)
    return path.read_bytes()


class Snapshot:
    """The original's bytes and identity and the folder's listing, to compare after a failure."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = path.read_bytes()
        self.inode = path.stat().st_ino
        self.listing = sorted(p.name for p in path.parent.iterdir())

    def assert_intact(self, *, leftovers_allowed: bool = False) -> list[str]:
        assert self.path.read_bytes() == self.data
        assert self.path.stat().st_ino == self.inode, "the original was replaced"
        new = sorted(set(p.name for p in self.path.parent.iterdir()) - set(self.listing))
        if not leftovers_allowed:
            assert new == [], "temporary files left behind"
        return new


def _assert_one_line(error: RewriteError, path: Path, *fragments: str) -> None:
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"cannot rewrite {path}: ")
    assert message.endswith("; the original is intact")
    assert error.original_intact
    for fragment in fragments:
        assert fragment in message, message


# --- (a) SIGKILL at a chosen byte -----------------------------------------------------------------

_CHILD = """
import json, os, sys
from pathlib import Path
import numpy as np
from sdlint import rewrite
from tests.write_faults import fail_after

rewrite.CHUNK_SIZE = 4096  # many chunks, so the kill lands mid-tensor
if os.environ.get("KILL_AFTER_BYTES"):
    rewrite._write = fail_after(int(os.environ["KILL_AFTER_BYTES"]), kill=True)
if sys.argv[2] == "text":
    rewrite.write_text_atomic(Path(sys.argv[1]), "x" * 50_000, backup=True)
    sys.exit(0)
if sys.argv[3] == "no-hardlinks":
    def no_link(*args, **kwargs):
        raise OSError(1, "Operation not permitted")
    os.link = no_link
plan = rewrite.RewritePlan(
    renames={"layer.0.weight": "module.layer.0.weight"},
    drops=frozenset({"layer.1.weight"}),
    replacements={"head.weight": rewrite.NewTensor("F32", (2, 3), np.ones(6, np.float32).tobytes())},
)
try:
    rewrite.rewrite_safetensors(Path(sys.argv[1]), plan, backup=sys.argv[2] == "backup")
except rewrite.RewriteError as e:
    print(e)
    sys.exit(3)
"""


def _run_child(
    path: Path, *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-c", _CHILD, str(path), *args],
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _kill_points(size: int) -> list[int]:
    # Before anything, inside the length prefix, inside the header, at a chunk boundary, mid
    # tensor, and one byte short of the end.
    return [0, 3, 100, 4096, size // 2, size - 1]


@pytest.mark.slow
@pytest.mark.parametrize("point", range(6))
def test_sigkill_mid_write_leaves_the_original(ckpt: Path, expected: bytes, point: int) -> None:
    kill_at = _kill_points(len(expected))[point]
    before = Snapshot(ckpt)
    child = _run_child(ckpt, "plain", "", env={"KILL_AFTER_BYTES": str(kill_at)})
    assert child.returncode == -signal.SIGKILL, child.stderr
    leftovers = before.assert_intact(leftovers_allowed=True)
    # The only debris is one hidden temporary file holding exactly the bytes written before the kill.
    assert len(leftovers) == 1
    assert leftovers[0].startswith(".model.safetensors.") and leftovers[0].endswith(TEMP_SUFFIX)
    partial = (ckpt.parent / leftovers[0]).read_bytes()
    assert partial == expected[:kill_at]

    # The next run is not disturbed by the debris.
    assert _run_child(ckpt, "plain", "").returncode == 0
    assert ckpt.read_bytes() == expected


@pytest.mark.slow
def test_sigkill_while_copying_a_backup_leaves_no_false_backup(ckpt: Path, expected: bytes) -> None:
    # Without hard links the backup is a copy; kill half-way through it.
    before = Snapshot(ckpt)
    kill_at = len(expected) + len(before.data) // 2
    child = _run_child(ckpt, "backup", "no-hardlinks", env={"KILL_AFTER_BYTES": str(kill_at)})
    assert child.returncode == -signal.SIGKILL, child.stderr
    leftovers = before.assert_intact(leftovers_allowed=True)
    assert not [name for name in leftovers if ".bak" in name], "a truncated backup looks real"
    assert all(name.endswith(TEMP_SUFFIX) for name in leftovers)


@pytest.mark.slow
def test_sigkill_while_writing_text_leaves_the_original(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"original": true}')
    before = Snapshot(path)
    child = _run_child(path, "text", env={"KILL_AFTER_BYTES": "20000"})
    assert child.returncode == -signal.SIGKILL, child.stderr
    before.assert_intact(leftovers_allowed=True)


@pytest.mark.parametrize("fail_at", [0, 9, 20_000])
def test_fail_hook_cleans_up_and_reports(
    ckpt: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    before = Snapshot(ckpt)
    monkeypatch.setattr(rewrite, "_write", fail_after(fail_at))
    with pytest.raises(RewriteError) as info:
        rewrite_safetensors(ckpt, PLAN, backup=True)
    _assert_one_line(
        info.value, ckpt, f"writing the new file failed after {fail_at:,} bytes", "simulated"
    )
    before.assert_intact()


# --- (b) permissions ------------------------------------------------------------------------------


@pytest.mark.slow
def test_read_only_folder(ckpt: Path) -> None:
    before = Snapshot(ckpt)
    folder = ckpt.parent
    folder.chmod(0o555)
    try:
        if os.geteuid() == 0:
            # Root ignores permission bits; drop every capability (CAP_DAC_OVERRIDE among them)
            # for the child so the folder is read-only to it, as it would be to a user.
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
            child = _run_child(
                ckpt, "plain", "", prefix=(setpriv, "--bounding-set=-all", "--inh-caps=-all")
            )
            assert child.returncode == 3, child.stderr
            message = child.stdout.strip()
        else:
            with pytest.raises(RewriteError) as info:
                rewrite_safetensors(ckpt, PLAN)
            message = str(info.value)
    finally:
        folder.chmod(0o755)
    assert "\n" not in message
    assert message == (
        f"cannot rewrite {ckpt}: creating a temporary file in {folder} failed: "
        "Permission denied (EACCES); the original is intact"
    )
    before.assert_intact()


def test_read_only_file(ckpt: Path) -> None:
    ckpt.chmod(0o444)
    before = Snapshot(ckpt)
    with pytest.raises(RewriteError) as info:
        rewrite_safetensors(ckpt, PLAN)
    _assert_one_line(info.value, ckpt, "the file is read-only (mode 0444)")
    before.assert_intact()


def test_replace_refused_by_the_filesystem(ckpt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_replace = Path.replace

    def refuse(self: Path, target: str | os.PathLike[str]) -> Path:
        if Path(target) == ckpt:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_replace(self, target)

    before = Snapshot(ckpt)
    monkeypatch.setattr(Path, "replace", refuse)
    with pytest.raises(RewriteError) as info:
        rewrite_safetensors(ckpt, PLAN, backup=True)
    _assert_one_line(info.value, ckpt, "replacing the original failed: Permission denied (EACCES)")
    before.assert_intact()  # and the backup link made just before is gone too


def test_ctrl_c_mid_write_cleans_up(ckpt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(fd: int, data: memoryview) -> int:
        raise KeyboardInterrupt

    before = Snapshot(ckpt)
    monkeypatch.setattr(rewrite, "_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rewrite_safetensors(ckpt, PLAN, backup=True)
    before.assert_intact()


def test_ctrl_c_just_after_the_replace_keeps_the_backup(
    ckpt: Path, expected: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The backup is then the original's only name: the cleanup must not remove it.
    real_replace = Path.replace

    def replace_then_interrupt(self: Path, target: str | os.PathLike[str]) -> Path:
        result = real_replace(self, target)
        if Path(target) == ckpt:
            raise KeyboardInterrupt
        return result

    original = ckpt.read_bytes()
    monkeypatch.setattr(Path, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        rewrite_safetensors(ckpt, PLAN, backup=True)
    assert ckpt.read_bytes() == expected
    assert ckpt.with_name("model.safetensors.bak").read_bytes() == original


# --- (c) full disk and other I/O errors -----------------------------------------------------------


def _disk_full_after(limit: int) -> Callable[[int, memoryview], int]:
    """A write that fills the disk at `limit` bytes: a short write up to it, then ENOSPC."""
    written = 0

    def write(fd: int, data: memoryview) -> int:
        nonlocal written
        room = limit - written
        if room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = os.write(fd, data[:room])
        written += n
        return n

    return write


@pytest.mark.parametrize("room", [0, 5, 30_000, -1])
def test_disk_full_while_writing(
    ckpt: Path, expected: bytes, monkeypatch: pytest.MonkeyPatch, room: int
) -> None:
    room = len(expected) - 1 if room < 0 else room
    before = Snapshot(ckpt)
    monkeypatch.setattr(rewrite, "_write", _disk_full_after(room))
    with pytest.raises(RewriteError) as info:
        rewrite_safetensors(ckpt, PLAN)
    _assert_one_line(
        info.value,
        ckpt,
        f"writing the new file failed after {room:,} bytes: No space left on device (ENOSPC)",
    )
    before.assert_intact()


def test_disk_full_while_copying_the_backup(
    ckpt: Path, expected: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    before = Snapshot(ckpt)
    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(rewrite, "_write", _disk_full_after(len(expected) + 1000))
    with pytest.raises(RewriteError) as info:
        rewrite_safetensors(ckpt, PLAN, backup=True)
    _assert_one_line(
        info.value, ckpt, "keeping a backup of the original failed: No space left on device"
    )
    before.assert_intact()


def test_not_enough_free_space_is_refused_before_writing(
    ckpt: Path, expected: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[int] = []

    def write(fd: int, data: memoryview) -> int:
        writes.append(len(data))
        return os.write(fd, data)

    monkeypatch.setattr(rewrite, "_write", write)
    monkeypatch.setattr(os, "statvfs", lambda path: SimpleNamespace(f_bavail=2, f_frsize=4096))
    before = Snapshot(ckpt)
    with pytest.raises(RewriteError) as info:
        rewrite_safetensors(ckpt, PLAN)
    _assert_one_line(
        info.value, ckpt, f"the new file needs {len(expected):,} bytes but only 8,192 are free"
    )
    assert writes == []
    before.assert_intact()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_fsync_failure(ckpt: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    # Delayed allocation and network filesystems report a full disk or a lost write at fsync.
    def failing_fsync(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    before = Snapshot(ckpt)
    monkeypatch.setattr(rewrite, "_fsync", failing_fsync)
    with pytest.raises(RewriteError) as info:
        rewrite_safetensors(ckpt, PLAN)
    _assert_one_line(info.value, ckpt, f"syncing the new file to disk failed: {os.strerror(code)}")
    before.assert_intact()


@pytest.mark.slow
def test_a_real_kernel_write_error(ckpt: Path, expected: bytes) -> None:
    # RLIMIT_FSIZE makes the kernel itself refuse writes past a size (EFBIG): a genuine short
    # write followed by an error, without root or a tiny filesystem.
    limit = len(expected) // 2
    before = Snapshot(ckpt)
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import resource, signal, runpy, sys;"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN);"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}));"
            f"sys.argv = ['-c', {str(ckpt)!r}, 'plain', ''];"
            f"exec({_CHILD!r})",
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 3, child.stderr
    assert child.stdout.strip() == (
        f"cannot rewrite {ckpt}: writing the new file failed after {limit:,} bytes: "
        "File too large (EFBIG); the original is intact"
    )
    before.assert_intact()


def test_folder_fsync_failure_after_the_replace_is_reported_truthfully(
    ckpt: Path, expected: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        os.fsync(fd)

    monkeypatch.setattr(rewrite, "_fsync", fsync)
    with pytest.raises(RewriteError) as info:
        rewrite_safetensors(ckpt, PLAN)
    assert not info.value.original_intact
    assert str(info.value).endswith("; the new file is in place")
    assert ckpt.read_bytes() == expected


# --- verification catches what reached the disk wrong ---------------------------------------------


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        ("header", "the new file does not read back"),
        ("metadata", "the new file's __metadata__ differs from the original's"),
        ("head.weight", "tensor 'head.weight' reads back different from what was written"),
        ("module.layer.0.weight", "tensor 'module.layer.0.weight' reads back different from"),
        ("layer.2.weight", "tensor 'layer.2.weight' reads back different from what was written"),
    ],
)
def test_corruption_on_the_way_to_disk_is_caught(
    ckpt: Path, expected: bytes, monkeypatch: pytest.MonkeyPatch, where: str, fragment: str
) -> None:
    n = int.from_bytes(expected[:8], "little")
    if where == "header":
        target = 12
    elif where == "metadata":
        target = expected.index(b'"pt"') + 1  # "pt" -> "qt": still valid JSON, wrong value
    else:
        begin, end = json.loads(expected[8 : 8 + n])[where]["data_offsets"]
        target = 8 + n + (begin + end) // 2
    written = 0

    def corrupting_write(fd: int, data: memoryview) -> int:
        nonlocal written
        chunk = bytearray(data)
        if written <= target < written + len(chunk):
            chunk[target - written] ^= 0xFF if where != "metadata" else 0x01
        written += len(chunk)
        return os.write(fd, chunk)

    before = Snapshot(ckpt)
    monkeypatch.setattr(rewrite, "_write", corrupting_write)
    with pytest.raises(RewriteError) as info:
        rewrite_safetensors(ckpt, PLAN)
    _assert_one_line(info.value, ckpt, fragment)
    before.assert_intact()


def test_an_unaligned_header_is_caught(ckpt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Were the encoder to forget the padding, verification must refuse the file.
    real_encode = rewrite._encode_header

    def unpadded(metadata: Any, slots: Any) -> bytes:
        raw = real_encode(metadata, slots)[8:].rstrip(b" ")
        raw += b" " if len(raw) % 8 == 0 else b""
        return len(raw).to_bytes(8, "little") + raw

    before = Snapshot(ckpt)
    monkeypatch.setattr(rewrite, "_encode_header", unpadded)
    with pytest.raises(RewriteError) as info:
        rewrite_safetensors(ckpt, PLAN)
    _assert_one_line(info.value, ckpt, "does not have the planned size and alignment")
    before.assert_intact()


# --- the original changes underneath the rewrite --------------------------------------------------


def _touch(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _swap(path: Path) -> None:
    other = path.with_name("other")
    other.write_bytes(path.read_bytes())
    other.replace(path)


@pytest.mark.parametrize("meddle", [_touch, _swap])
def test_a_file_changed_during_the_rewrite_is_not_replaced(
    ckpt: Path, monkeypatch: pytest.MonkeyPatch, meddle: Callable[[Path], None]
) -> None:
    done = False

    def meddling_write(fd: int, data: memoryview) -> int:
        nonlocal done
        if not done:
            done = True
            meddle(ckpt)
        return os.write(fd, data)

    monkeypatch.setattr(rewrite, "_write", meddling_write)
    data = ckpt.read_bytes()
    with pytest.raises(RewriteError) as info:
        rewrite_safetensors(ckpt, PLAN)
    _assert_one_line(info.value, ckpt, "the file was modified during the rewrite")
    assert ckpt.read_bytes() == data
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["model.safetensors"]


# --- write_text_atomic under faults ---------------------------------------------------------------


def test_text_write_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"keep": 1}')
    before = Snapshot(path)
    monkeypatch.setattr(rewrite, "_write", _disk_full_after(10))
    with pytest.raises(RewriteError) as info:
        write_text_atomic(path, json.dumps({"new": list(range(100))}), backup=True)
    _assert_one_line(info.value, path, "No space left on device (ENOSPC)")
    before.assert_intact()


def test_text_write_to_a_new_file_that_fails_says_nothing_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.json"
    monkeypatch.setattr(rewrite, "_write", _disk_full_after(0))
    with pytest.raises(RewriteError, match=r"\(ENOSPC\); nothing was written$"):
        write_text_atomic(path, "{}")
    assert list(tmp_path.iterdir()) == []


def test_the_result_after_faults_is_loadable(ckpt: Path, expected: bytes) -> None:
    # The reference output used above is itself a valid checkpoint with the plan applied.
    path = ckpt.with_name("expected.safetensors")
    path.write_bytes(expected)
    loaded = load_file(str(path))
    assert sorted(loaded) == ["head.weight", "layer.2.weight", "module.layer.0.weight"]
    assert loaded["head.weight"].shape == (2, 3)
