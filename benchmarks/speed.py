"""The speed targets (issue 11), measured side by side in one run: ratios with their medians and
peak RSS, every measurement a fresh process as a pre-commit hook or CI step runs it.

    .venv/bin/python -m benchmarks.speed [--repeat 7] [--cold-repeat 7]

It builds its own fixtures in a temporary folder (sparse files: real headers, holes for data):
- roberta-base: the real classifier layout (201 tensors, 499 MB) with a 5-label target config;
- llama-70B: 723 tensors in 30 shards with their index (141 GB) and its config;
- 200 fine-tunes: small BERT classifiers in one tree, 4 distinct configs.
Peers: `from_pretrained(..., output_loading_info=True, ignore_mismatched_sizes=True)` and the
model class built on the meta device alone (the model side); a bare `open`/`json` script and
`safetensors.safe_open` reading the same index and headers (the floors of header reading);
`modelaudit scan` as a security scanner a user might run on the same files (skipped with a note
when it is not installed: `pip install modelaudit`). Warm: the verdict cache filled by an earlier
run, and the targets are judged on the "checks run": `main(argv)` in a fresh process, which never
uses the run cache, so every header is read and checked and only the model verdicts come from the
cache (what the first run after any change costs, as a pre-commit hook on changed weights does).
"replayed" is the same command line once the run cache (sdlint/runcache.py) holds it: what an
unchanged folder costs, shown beside it. Cold: `--no-cache` (every model built). Rounds are
interleaved (each command once per round), so a change of load on the shared machine hits every
command alike. A summary of every target closes the output.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks._util import write_sparse_checkpoint
from benchmarks.conformance import FROM_PRETRAINED
from benchmarks.conformance import build as build_roberta
from benchmarks.header_read import huge

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable

# Both floors walk their arguments alike (an index: its shards; else the file); only `header`
# differs: the bare script reads the header with open/json, the other with safe_open.
_EVERY_HEADER = """
for arg in sys.argv[1:]:
    if arg.endswith(".json"):
        with open(arg) as f:
            index = json.load(f)
        for shard in sorted(set(index["weight_map"].values())):
            header(os.path.join(os.path.dirname(arg), shard))
    else:
        header(arg)
"""

BARE = (
    """
import json, os, struct, sys
def header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))
"""
    + _EVERY_HEADER
)

SAFE_OPEN = (
    """
import json, os, sys
from safetensors import safe_open
def header(path):
    with safe_open(path, framework="numpy") as f:
        return {k: f.get_slice(k).get_shape() for k in f.keys()}
"""
    + _EVERY_HEADER
)

META_BUILD = """
import sys, torch, transformers
from transformers import AutoConfig, RobertaForSequenceClassification
transformers.logging.set_verbosity_error()
config = AutoConfig.from_pretrained(sys.argv[1])
with torch.device("meta"):
    model = RobertaForSequenceClassification(config)
"""

# `sdlint ARGV` through the library entry point: the checks always run (no run cache).
CHECKS_RUN = """
import sys
from sdlint.cli import main
raise SystemExit(main(sys.argv[1:]))
"""

# Runs one command and reports its wall time, CPU time (user + system) and peak RSS:
# RUSAGE_CHILDREN in a fresh wrapper process sees only that one child. CPU time is the steadier
# figure on a loaded machine (waiting for a core is not counted), so both are shown.
WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
result = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime,
                  "kib": usage.ru_maxrss, "rc": result.returncode,
                  "err": result.stderr.decode(errors="replace")[-1500:]}))
"""


class Timing:
    def __init__(self, label: str, argv: Sequence[str], codes: Sequence[int] = (0, 1)) -> None:
        self.label, self.argv, self.codes = label, list(argv), tuple(codes)
        self.seconds: list[float] = []
        self.cpu: list[float] = []
        self.kib = 0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    @property
    def mib(self) -> float:
        return self.kib / 1024


def measure(commands: Sequence[Timing], rounds: int, env: dict[str, str]) -> None:
    """`rounds` interleaved rounds: each command once per round, in a fresh process."""
    for _ in range(rounds):
        for c in commands:
            out = subprocess.run(
                [PY, "-c", WRAPPER, *c.argv], capture_output=True, text=True, env=env, check=True
            )
            run = json.loads(out.stdout.strip().splitlines()[-1])
            if run["rc"] not in c.codes:
                raise RuntimeError(f"{c.label}: {c.argv} exited {run['rc']}:\n{run['err']}")
            c.seconds.append(run["seconds"])
            c.cpu.append(run["cpu"])
            c.kib = max(c.kib, run["kib"])


def show(commands: Sequence[Timing]) -> None:
    for c in commands:
        print(
            f"  {c.label:<46} median {c.median * 1e3:9.1f} ms (CPU {c.cpu_median * 1e3:9.1f} ms)"
            f"   peak RSS {c.mib:6.1f} MiB"
        )


SUMMARY: list[str] = []


def ratio(line: str, a: Timing, b: Timing, *, at_most: float = 0, at_least: float = 0) -> None:
    """a / b in wall time, judged against the target; CPU time beside it."""
    value, cpu = a.median / b.median, a.cpu_median / b.cpu_median
    met = value <= at_most if at_most else value >= at_least
    target = f"<= {at_most:g}x" if at_most else f">= {at_least:g}x"
    verdict = (
        f"{line}: {value:.2f}x, CPU {cpu:.2f}x (target {target}: {'met' if met else 'NOT met'})"
    )
    SUMMARY.append(verdict)
    print(f"  => {verdict}")


def build_llama(folder: Path) -> Path:
    """Llama-3-70B's layout in 30 shards with its index and config."""
    tensors = huge(80, 8192)
    names = list(tensors)
    bounds = [round(i * len(names) / 30) for i in range(31)]
    weight_map: dict[str, str] = {}
    total = 0
    for i in range(30):
        shard = f"model-{i + 1:05d}-of-00030.safetensors"
        part = {k: tensors[k] for k in names[bounds[i] : bounds[i + 1]]}
        write_sparse_checkpoint(folder / shard, part)
        for name, (_, shape) in part.items():
            weight_map[name] = shard
            count = 1
            for d in shape:
                count *= d
            total += 2 * count  # BF16
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 8192,
        "intermediate_size": 28672,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "num_hidden_layers": 80,
        "vocab_size": 128256,
        "rms_norm_eps": 1e-05,
        "max_position_embeddings": 8192,
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder / "model.safetensors.index.json"


def build_many(folder: Path, count: int) -> list[Path]:
    """`count` small BERT classifiers (shapes from a meta model), 4 distinct label counts."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    files = []
    for labels in (2, 3, 4, 5):
        config = BertConfig(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=128,
            vocab_size=1000,
            architectures=["BertForSequenceClassification"],
        )
        config.num_labels = labels
        with torch.device("meta"):
            model = BertForSequenceClassification(config)
        dtypes = {torch.float32: "F32", torch.int64: "I64"}
        tensors = {k: (dtypes[v.dtype], tuple(v.shape)) for k, v in model.state_dict().items()}
        for i in range(labels - 2, count, 4):
            run = folder / f"run-{i:03d}"
            files.append(run / "model.safetensors")
            write_sparse_checkpoint(files[-1], tensors)
            config.save_pretrained(run)
    return sorted(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="rounds for warm runs (default 7)")
    parser.add_argument(
        "--cold-repeat", type=int, default=7, help="rounds for cold runs (default 7)"
    )
    args = parser.parse_args()
    started = time.monotonic()
    compileall.compile_dir(REPO / "sdlint", quiet=1)  # as an installed package is: bytecode
    print(f"sdlint benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"python {platform.python_version()}; load average at start: {os.getloadavg()}")
    sdlint = [PY, "-m", "sdlint", "check", "-q"]
    checks_run = [PY, "-c", CHECKS_RUN, "check", "-q"]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "SDLINT_CACHE_DIR": str(tmp / "cache"), "NO_COLOR": "1"}
        roberta, five = build_roberta(tmp / "roberta-base")
        index = build_llama(tmp / "llama-70b")
        files = build_many(tmp / "many", 200)
        print(f"fixtures: roberta-base, llama-70B (30 shards), {len(files)} small checkpoints")
        roberta_check = [*sdlint, str(roberta), "--model-config", str(five)]
        warmups = (
            roberta_check,
            [*sdlint, str(index.parent)],
            [*sdlint, str(tmp / "many")],
            [*sdlint, str(roberta / "model.safetensors"), "--select", "SD0"],
            [*sdlint, str(index), "--select", "SD0"],
        )
        for warmup in warmups:  # fills the verdict cache
            subprocess.run(warmup, env=env, stdout=subprocess.DEVNULL, check=False)
        # The run cache keeps no run over files modified within 2 s before it (their timestamps
        # could still change unseen: sdlint.runcache.RACY_NS), and the fixtures are that fresh.
        time.sleep(2.5)
        for warmup in warmups:  # fills the run cache, as any run after the first does
            subprocess.run(warmup, env=env, stdout=subprocess.DEVNULL, check=False)

        print("\n1. warm model check, roberta-base, 5-label target (SD101)")
        fp = Timing(
            "from_pretrained (whole process)", [PY, "-c", FROM_PRETRAINED, str(roberta), str(five)]
        )
        warm = Timing("sdlint check, warm, replayed", roberta_check)
        run = Timing(
            "sdlint check, warm, checks run",
            [*checks_run, str(roberta), "--model-config", str(five)],
        )
        measure([fp, warm, run], args.repeat, env)
        show([fp, warm, run])
        ratio("roberta: from_pretrained / sdlint warm (checks run)", fp, run, at_least=100)
        print(f"     (replayed: {fp.median / warm.median:.0f}x)")

        print("\n2. warm check, llama-70B, 30 shards")
        bare70 = Timing("bare open/json script (index + 30 headers)", [PY, "-c", BARE, str(index)])
        safe70 = Timing(
            "safetensors.safe_open (index + 30 headers)", [PY, "-c", SAFE_OPEN, str(index)]
        )
        warm70 = Timing("sdlint check, warm, replayed", [*sdlint, str(index.parent)])
        run70 = Timing("sdlint check, warm, checks run", [*checks_run, str(index.parent)])
        measure([bare70, safe70, warm70, run70], args.repeat, env)
        show([bare70, safe70, warm70, run70])
        ratio("llama-70B: sdlint warm (checks run) / bare script", run70, bare70, at_most=1.5)
        print(f"     (replayed: {warm70.median / bare70.median:.2f}x)")
        peak = max(run70.mib, warm70.mib)
        verdict = f"llama-70B: sdlint peak RSS {peak:.1f} MiB (target < 30 MiB: "
        SUMMARY.append(verdict + ("met)" if peak < 30 else "NOT met)"))
        print(f"  => {SUMMARY[-1]}")

        print(f"\n3. {len(files)} checkpoints in one tree, one invocation")
        bare_many = Timing(
            f"bare open/json script ({len(files)} headers)", [PY, "-c", BARE, *map(str, files)]
        )
        warm_many = Timing("sdlint check, warm, replayed", [*sdlint, str(tmp / "many")])
        run_many = Timing("sdlint check, warm, checks run", [*checks_run, str(tmp / "many")])
        run_many1 = Timing(
            "sdlint check, warm, checks run, --jobs 1",
            [*checks_run, str(tmp / "many"), "--jobs", "1"],
        )
        measure([bare_many, warm_many, run_many, run_many1], args.repeat, env)
        show([bare_many, warm_many, run_many, run_many1])
        line = f"{len(files)} files: sdlint warm (checks run) / bare script"
        ratio(line, run_many, bare_many, at_most=2)
        print(
            f"     (--jobs 1: {run_many1.median / bare_many.median:.2f}x;"
            f" replayed: {warm_many.median / bare_many.median:.2f}x)"
        )
        cold_many = Timing(
            "sdlint check --no-cache (cold)", [*sdlint, str(tmp / "many"), "--no-cache"]
        )
        cold_many1 = Timing(
            "sdlint check --no-cache --jobs 1",
            [*sdlint, str(tmp / "many"), "--no-cache", "--jobs", "1"],
        )
        # No target on these times (only on the count below): at most 3 rounds.
        measure([cold_many, cold_many1], min(3, args.cold_repeat), env)
        show([cold_many, cold_many1])
        fresh = tmp / "fresh-cache"
        subprocess.run(
            [*sdlint, str(tmp / "many"), "--jobs", "1"],
            env={**env, "SDLINT_CACHE_DIR": str(fresh)},
            stdout=subprocess.DEVNULL,
            check=False,
        )
        built = len(list(fresh.glob("verdicts-v*/*.json")))
        verdict = f"{len(files)} files: model computations in a cold run: {built} for 4 models"
        SUMMARY.append(verdict + (" (target 4: met)" if built == 4 else " (target 4: NOT met)"))
        print(f"  => {SUMMARY[-1]}")

        print("\n4. cold single checkpoint, roberta-base")
        meta = Timing("import the class + build on meta alone", [PY, "-c", META_BUILD, str(five)])
        cold = Timing("sdlint check --no-cache (cold)", [*roberta_check, "--no-cache"])
        fp_cold = Timing(
            "from_pretrained (whole process)", [PY, "-c", FROM_PRETRAINED, str(roberta), str(five)]
        )
        measure([fp_cold, meta, cold], args.cold_repeat, env)
        show([fp_cold, meta, cold])
        ratio("roberta: sdlint cold / meta build alone", cold, meta, at_most=1.2)
        ratio("roberta: sdlint cold / from_pretrained", cold, fp_cold, at_most=1)

        print("\n5. integrity only (SD0), against a security scanner on the same files")
        audit = shutil.which("modelaudit") or str(Path(PY).parent / "modelaudit")
        commands = [
            Timing(
                "sdlint check --select SD0, roberta-base",
                [*sdlint, str(roberta / "model.safetensors"), "--select", "SD0"],
            ),
            Timing(
                "sdlint check --select SD0, llama-70B", [*sdlint, str(index), "--select", "SD0"]
            ),
        ]
        if Path(audit).exists():  # its telemetry off, its cache in the temporary folder
            env["PROMPTFOO_DISABLE_TELEMETRY"] = "1"
            cache = ["--cache-dir", str(tmp / "modelaudit-cache")]
            commands.append(
                Timing(
                    "modelaudit scan, roberta-base",
                    [audit, "scan", "-q", *cache, str(roberta / "model.safetensors")],
                    codes=(0, 1, 2),  # 2: it found something to report
                )
            )
            print("  (modelaudit reads the tensor data: the 141 GB llama-70B is not given to it)")
        else:
            print("  (modelaudit is not installed: `pip install modelaudit` to compare)")
        measure(commands, max(1, args.cold_repeat), env)
        show(commands)
        if len(commands) == 3:
            r = commands[2].median / commands[0].median
            print(f"  => modelaudit / sdlint on roberta-base: {r:.1f}x")
    print("\nsummary:")
    for verdict in SUMMARY:
        print(f"  {verdict}")
    print(f"\nload average at the end: {os.getloadavg()}; took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
