"""torch.save files built in tests: real ones (torch.save itself), hostile ones (pickles whose
payload writes a marker file when unpickled), and torch-style archives around arbitrary pickles."""

from __future__ import annotations

import io
import pickle
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def torch_save(path: Path, obj: Any, *, legacy: bool = False) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def save_sharded(folder: Path, state: dict[str, object]) -> Path:
    """Shards and index as `save_pretrained(safe_serialization=False)` writes them (transformers
    4.x; huggingface_hub's `save_torch_state_dict` is its writer)."""
    from huggingface_hub import save_torch_state_dict

    folder.mkdir(parents=True, exist_ok=True)
    save_torch_state_dict(state, folder, safe_serialization=False, max_shard_size=200)  # type: ignore[arg-type]
    return folder / "pytorch_model.bin.index.json"


def tied_state() -> dict[str, object]:
    """Three tensors, two of them one storage (tied weights), that shard in two."""
    import torch

    torch.manual_seed(0)
    embed = torch.randn(10, 4)
    return {"embed.weight": embed, "a.weight": torch.randn(8, 4), "head.weight": embed}


class Reduce:
    """Pickles as a call of `func(*args)`: how a hostile pickle runs code."""

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return self.func, self.args


def touch_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def _string(text: str) -> bytes:
    """A protocol 0 STRING argument (quoted, escaped)."""
    return repr(text).encode() + b"\n"


def reducers(marker: Path) -> dict[str, tuple[Reduce, str]]:
    """Objects whose pickle calls a global that writes `marker`, with that global's name."""
    import os

    code = touch_code(marker)
    return {
        "exec": (Reduce(exec, code), "builtins.exec"),
        "eval": (Reduce(eval, code), "builtins.eval"),
        "system": (Reduce(os.system, f"touch {marker}"), f"{os.system.__module__}.system"),
        "popen": (Reduce(subprocess.Popen, ["touch", str(marker)]), "subprocess.Popen"),
    }


def payloads(marker: Path) -> dict[str, tuple[bytes, str]]:
    """Hostile pickles, each writing `marker` when unpickled, with the global it calls."""
    code = touch_code(marker)
    touch = f"touch {marker}"
    out = {
        # protocol 2 writes GLOBAL (builtins as `__builtin__`, fix_imports) and REDUCE
        f"{kind}-reduce": (pickle.dumps(obj, protocol=2), name)
        for kind, (obj, name) in reducers(marker).items()
    }
    # protocol 4 names globals with STACK_GLOBAL
    out["exec-stack-global"] = (
        pickle.dumps(reducers(marker)["exec"][0], protocol=4),
        "builtins.exec",
    )
    out.update(
        {
            # protocol 0 forms written by hand: INST and OBJ call what they name
            "system-inst": (b"(S" + _string(touch) + b"ios\nsystem\n.", "os.system"),
            "exec-obj": (b"(cbuiltins\nexec\nS" + _string(code) + b"o.", "builtins.exec"),
            # NEWOBJ instantiates a class named by a global: importing subprocess is the harm
            "popen-newobj": (
                b"\x80\x02csubprocess\nPopen\n]q\x00(X"
                + struct.pack("<I", 5)
                + b"touchX"
                + struct.pack("<I", len(str(marker)))
                + str(marker).encode()
                + b"e\x85\x81.",
                "subprocess.Popen",
            ),
            # a global named by STACK_GLOBAL from memoised strings, then called
            "system-stack-global-memo": (
                b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94h\x02\x8c"
                + bytes([len(touch)])
                + touch.encode()
                + b"\x85R.",
                "os.system",
            ),
        }
    )
    return out


def run_unpickler(data: bytes) -> None:
    """Unpickle `data` for real, in a fresh process: proves a payload works."""
    script = (
        "import pickle, sys\n"
        "value = pickle.loads(sys.stdin.buffer.read())\n"
        "getattr(value, 'wait', lambda: None)()\n"
    )
    subprocess.run([sys.executable, "-c", script], input=data, check=False, capture_output=True)


def torch_zip(
    path: Path,
    data_pkl: bytes,
    storages: Mapping[str, bytes] | None = None,
    *,
    folder: str = "archive",
) -> Path:
    """A zip laid out as torch.save lays it out, around any pickle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{folder}/data.pkl", data_pkl)
        archive.writestr(f"{folder}/byteorder", "little")
        for key, data in (storages or {}).items():
            archive.writestr(f"{folder}/data/{key}", data)
        archive.writestr(f"{folder}/version", "3\n")
    return path


def rewrite_zip(path: Path, edit: Callable[[str, bytes], bytes | None]) -> None:
    """Rewrite a zip entry by entry: `edit(name, data)` returns new data, or None to drop it."""
    with zipfile.ZipFile(path) as archive:
        entries = [(i.filename, archive.read(i)) for i in archive.infolist()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries:
            new = edit(name, data)
            if new is not None:
                archive.writestr(name, new)
    path.write_bytes(buffer.getvalue())
