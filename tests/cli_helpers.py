"""What the in-process CLI tests share: running `main`, and a tiny two-tensor checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdlint.cli import main
from tests.safetensors_files import TensorSpecs, header_for, write_raw

TENSORS: TensorSpecs = {
    "classifier.weight": ("F32", (2, 4)),
    "classifier.bias": ("F32", (2,)),
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`sdlint ARGV` in process: exit status, stdout, stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def truncated(path: Path) -> None:
    """The two-tensor checkpoint with its last 6 bytes missing (one SD003)."""
    header, size = header_for(TENSORS)
    write_raw(path, header, b"\0" * (size - 6))
