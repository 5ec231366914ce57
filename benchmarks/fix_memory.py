"""Peak memory and time of `sdlint.rewrite` as the checkpoint grows: memory must stay flat.

    .venv/bin/python benchmarks/fix_memory.py                  # 1, 4 and 16 GiB (~5 minutes)
    .venv/bin/python benchmarks/fix_memory.py --sizes 0.25,1   # a quick look

For each size, a checkpoint of 256 MiB F16 tensors is made *sparse* (header written, then the file
extended with truncate: it costs no disk) and fixed in a child process three ways: drop one
tensor, rename every key (add `module.`), and replace one tensor by a new 64 MiB one supplied from
memory. The child's peak RSS comes from `wait4` (ru_maxrss); an `import only` child gives the
interpreter's own baseline. Ratios are against the smallest size, measured side by side in one run.

The rewrite does not preserve holes, so each fix writes the full size to disk (checkpoints are
not sparse in practice): the run needs the largest size free and deletes every file it makes.
Wall time is dominated by that write, the verifying read-back, and hashing both.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GIB = 1024**3
MIB = 1024**2
TENSOR_SHAPE = (8192, 16384)  # F16: 256 MiB
TENSOR_BYTES = TENSOR_SHAPE[0] * TENSOR_SHAPE[1] * 2
NEW_TENSOR_BYTES = 64 * MIB

# Runs in the child: the fix itself, nothing else, so ru_maxrss is the fix's peak.
CHILD = """
import sys
from pathlib import Path
from sdlint.rewrite import NewTensor, RewritePlan, rewrite_safetensors

path, scenario, names = Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")
if scenario == "import only":
    sys.exit(0)
if scenario == "drop 1 tensor":
    plan = RewritePlan(drops=frozenset({names[1]}))
elif scenario == "rename all keys":
    plan = RewritePlan(renames={name: "module." + name for name in names})
else:
    size = int(sys.argv[4])
    data = b"\x01" * size  # filled, so its pages count in RSS (bytes(size) would stay lazy zeros)
    plan = RewritePlan(replacements={names[0]: NewTensor("F16", (size // 2,), data)})
rewrite_safetensors(path, plan)
"""
SCENARIOS = ("import only", "drop 1 tensor", "rename all keys", "replace 1 by 64 MiB")


@dataclass(frozen=True)
class Run:
    size: int
    scenario: str
    peak_rss: int  # bytes
    seconds: float


def make_sparse_checkpoint(path: Path, size: int) -> list[str]:
    """A valid checkpoint of `size // 256 MiB` zero-filled F16 tensors that occupies no disk."""
    count = max(2, size // TENSOR_BYTES)
    names = [f"model.layers.{i}.weight" for i in range(count)]
    header = {
        name: {
            "dtype": "F16",
            "shape": list(TENSOR_SHAPE),
            "data_offsets": [i * TENSOR_BYTES, (i + 1) * TENSOR_BYTES],
        }
        for i, name in enumerate(names)
    }
    raw = json.dumps({"__metadata__": {"format": "pt"}, **header}, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        f.truncate(8 + len(raw) + count * TENSOR_BYTES)
    return names


def run_child(path: Path, scenario: str, names: list[str]) -> tuple[int, float]:
    """(peak RSS in bytes, wall seconds) of one fix in a fresh interpreter."""
    argv = [
        sys.executable,
        "-c",
        CHILD,
        str(path),
        scenario,
        ",".join(names),
        str(NEW_TENSOR_BYTES),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    child = subprocess.Popen(argv, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    if child.returncode != 0:
        raise SystemExit(f"{scenario} on {path.name} failed with exit code {child.returncode}")
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return usage.ru_maxrss * scale, seconds


def free_bytes(folder: Path) -> int:
    vfs = os.statvfs(folder)
    return vfs.f_bavail * vfs.f_frsize


def measure(sizes: list[int], folder: Path) -> list[Run]:
    runs: list[Run] = []
    for wanted in sizes:
        for scenario in SCENARIOS:
            path = folder / f"model-{wanted // MIB}MiB.safetensors"
            names = make_sparse_checkpoint(path, wanted)
            size = path.stat().st_size
            try:
                if scenario != "import only" and free_bytes(folder) < size + GIB:
                    print(f"skipping {scenario} at {size / GIB:g} GiB: not enough free disk")
                    continue
                peak, seconds = run_child(path, scenario, names)
                runs.append(Run(size, scenario, peak, seconds))
                print(
                    f"  {size / GIB:6g} GiB  {scenario:<20} {peak / MIB:7.1f} MiB {seconds:8.1f} s",
                    flush=True,
                )
            finally:
                path.unlink(missing_ok=True)
    return runs


def table(runs: list[Run]) -> str:
    smallest = min(run.size for run in runs)
    base = {run.scenario: run.peak_rss for run in runs if run.size == smallest}
    lines = [
        "| size | fix | peak RSS | RSS vs smallest | wall | input read per second |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for run in sorted(runs, key=lambda r: (SCENARIOS.index(r.scenario), r.size)):
        ratio = run.peak_rss / base[run.scenario] if run.scenario in base else float("nan")
        speed = "" if run.scenario == "import only" else f"{run.size / GIB / run.seconds:.2f} GiB/s"
        lines.append(
            f"| {run.size / GIB:g} GiB | {run.scenario} | {run.peak_rss / MIB:.1f} MiB "
            f"| {ratio:.2f}x | {run.seconds:.1f} s | {speed} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="1,4,16", help="checkpoint sizes in GiB (default 1,4,16)"
    )
    parser.add_argument("--dir", type=Path, default=None, help="where to make the files")
    args = parser.parse_args()
    sizes = sorted(int(float(s) * GIB) for s in args.sizes.split(","))
    folder = Path(tempfile.mkdtemp(prefix="sdlint-fix-memory-", dir=args.dir))
    try:
        print(f"files in {folder} (deleted afterwards); chunk buffer 4 MiB")
        runs = measure(sizes, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print()
    print(table(runs))


if __name__ == "__main__":
    main()
