"""Hold the model oracle to transformers' own `from_pretrained` across every auto-mapped class.

For each model class in transformers' auto mappings (base models, causal/masked LM, sequence and
token classification, QA, seq2seq, image-text-to-text, image classification, speech seq2seq,
object detection) the sweep:

1. shrinks the class's default config (hidden 64, 2 layers, 4 heads, vocab <= 1000, 4 experts,
   sub-configs too; per-layer lists truncated), falling back to the default config when the
   shrunk one cannot be built and the model stays under 150 M parameters;
2. builds the model on CPU and `save_pretrained`s it (safetensors);
3. checks that the oracle finds the round trip clean, and compares the oracle with the real
   `from_pretrained(output_loading_info=True, ignore_mismatched_sizes=True)` on the round trip,
   a dropped key, an added key and a `module.` prefix (which must also be found as SD106's wrapper
   prefix, with a clean verdict after stripping);
4. for a class that cannot be built, checks that the oracle answers a ConfigProblem, not an
   exception.

Run (about 25-40 min on 2 cores for all ~1350 classes):

    .venv/bin/python benchmarks/sweep_architectures.py --jobs 2
    .venv/bin/python benchmarks/sweep_architectures.py --limit 40 --only 'Bert|Llama'

It writes benchmarks/out/sweep.json (one record per class) and benchmarks/out/sweep.md (the
summary, also printed); `--out DIR` puts them elsewhere (one folder per transformers version), and
`--resume` keeps the classes an earlier run recorded there (its sweep.jsonl holds each record as it
arrives, so an interrupted run resumes too). Each class runs in a worker process with a timeout,
so a class that hangs or crashes the interpreter costs only itself. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import selectors
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sdlint.model._text import describe_exception

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"

MAPPINGS = (
    "MODEL_MAPPING_NAMES",
    "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
    "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
    "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
    "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES",
    "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES",
    "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",
    "MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES",
    "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES",
    "MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES",
)
MAX_PARAMS = 150_000_000

# Config shrinking: key -> target (ints are capped at it, never raised).
HIDDEN = 64
CAPS = {
    **dict.fromkeys(
        ("hidden_size", "d_model", "n_embd", "dim", "word_embed_proj_dim", "embedding_size"),
        HIDDEN,
    ),
    **dict.fromkeys(
        (
            "num_hidden_layers",
            "num_layers",
            "n_layer",
            "n_layers",
            "encoder_layers",
            "decoder_layers",
            "num_encoder_layers",
            "num_decoder_layers",
        ),
        2,
    ),
    **dict.fromkeys(
        (
            "num_attention_heads",
            "n_head",
            "n_heads",
            "encoder_attention_heads",
            "decoder_attention_heads",
        ),
        4,
    ),
    **dict.fromkeys(("num_key_value_heads", "num_kv_heads", "multi_query_group_num"), 2),
    **dict.fromkeys(
        ("intermediate_size", "ffn_dim", "encoder_ffn_dim", "decoder_ffn_dim", "d_ff", "n_inner"),
        128,
    ),
    **dict.fromkeys(
        ("moe_intermediate_size", "shared_expert_intermediate_size", "expert_intermediate_size"),
        32,
    ),
    "vocab_size": 1000,
    **dict.fromkeys(("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts"), 4),
    **dict.fromkeys(("num_experts_per_tok", "moe_topk", "top_k"), 2),
    **dict.fromkeys(("n_group", "topk_group"), 1),
    "head_dim": HIDDEN // 4,
    "max_position_embeddings": 512,
}
LAYER_KEYS = (
    "num_hidden_layers",
    "num_layers",
    "n_layer",
    "n_layers",
    "encoder_layers",
    "decoder_layers",
)
TOKEN_ID = re.compile(r"(_token_id|_token_index|_token_ids)$")


# ---------------------------------------------------------------------------------------------
# Worker side: one class at a time.


# A gentler shrink for configs whose sizes are tied together (codebook = hidden, ...): depth,
# experts and vocabulary only.
GENTLE_KEYS = (
    *LAYER_KEYS,
    "num_encoder_layers",
    "num_decoder_layers",
    "num_local_experts",
    "num_experts",
    "n_routed_experts",
    "moe_num_experts",
    "num_experts_per_tok",
    "moe_topk",
    "top_k",
    "n_group",
    "topk_group",
    "vocab_size",
)
GENTLE = {k: CAPS[k] for k in GENTLE_KEYS}


def shrink(
    config: dict[str, Any], caps: dict[str, int], generic: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A smaller copy of a config dict, sub-configs included.

    `generic` holds the values every config inherits (transformers 4.x gives each config the
    generation defaults, such as `top_k=50`): those are not the model's sizes and stay as they are.
    """
    generic = generic or {}
    out: dict[str, Any] = {}
    layers_before = next((config[k] for k in LAYER_KEYS if isinstance(config.get(k), int)), None)
    for key, value in config.items():
        if isinstance(value, dict) and ("model_type" in value or key.endswith("_config")):
            out[key] = shrink(value, caps, generic)
        elif key in generic and generic[key] == value:
            out[key] = value
        elif isinstance(value, int) and not isinstance(value, bool) and key in caps:
            out[key] = min(value, caps[key])
        elif isinstance(value, list) and layers_before and len(value) == layers_before > 2:
            out[key] = value[:2]  # per-layer lists (layer_types, ...)
        else:
            out[key] = value
    vocab = out.get("vocab_size")
    if isinstance(vocab, int):
        for key, value in out.items():
            if TOKEN_ID.search(key) and isinstance(value, int) and value >= vocab:
                out[key] = vocab - 1
    return out


@dataclass
class Built:
    model: Any
    config: Any
    how: str  # "shrunk", "gently shrunk" or "default"
    params: int


def build(transformers: Any, torch: Any, cls: Any, model_type: str) -> Built:
    """The class built on CPU from its shrunk default config, else a gently shrunk one, else the
    default one when it stays under MAX_PARAMS."""
    try:
        config_class = cls.config_class  # raises for a placeholder of a missing backend
        default = config_class()
    except Exception as e:  # the class's own defaults fail validation
        raise BuildError(f"default config: {describe_exception(e)}", too_large=False) from e
    try:
        generic = transformers.PretrainedConfig().to_dict()
    except Exception:  # a version without the generic defaults
        generic = {}
    errors: list[str] = []
    too_large = True
    for how, caps in (("shrunk", CAPS), ("gently shrunk", GENTLE), ("default", None)):
        try:
            config = (
                default
                if caps is None
                else config_class.from_dict(shrink(default.to_dict(), caps, generic))
            )
            with torch.device("meta"):
                params = sum(p.numel() for p in cls(config).parameters())
            if params > MAX_PARAMS:
                errors.append(f"{how}: {params / 1e6:.0f} M parameters")
                continue
            torch.manual_seed(0)
            return Built(cls(config), config, how, params)
        except Exception as e:
            too_large = False
            errors.append(f"{how}: {describe_exception(e)}")
    # "shrunk: X; gently shrunk: X; default: X" says X once
    reasons = {error.split(": ", 1)[1] for error in errors}
    raise BuildError(reasons.pop() if len(reasons) == 1 else "; ".join(errors), too_large)


class BuildError(Exception):
    def __init__(self, reason: str, too_large: bool) -> None:
        super().__init__(reason)
        self.too_large = too_large


def check_class(name: str, model_type: str, workdir: Path) -> dict[str, Any]:
    torch = importlib.import_module("torch")
    transformers = importlib.import_module("transformers")
    safetensors_torch = importlib.import_module("safetensors.torch")
    from sdlint.config_fields import read_config
    from sdlint.model import ConfigProblem, LoadVerdict
    from sdlint.model.oracle import predict_load
    from sdlint.model.reference import differences, directory_signature, reference_report

    record: dict[str, Any] = {"class": name, "model_type": model_type}

    def oracle_answer(cls: Any) -> str:
        """What the oracle says for a class the sweep cannot build: a ConfigProblem kind, or
        "verdict" when it can build it on meta (a model too large for CPU). Never an exception."""
        directory = workdir / "config-only"
        directory.mkdir()
        document: dict[str, Any] = {"model_type": model_type, "architectures": [name]}
        with contextlib.suppress(Exception):
            document = {**cls.config_class().to_dict(), "architectures": [name]}
        (directory / "config.json").write_text(json.dumps(document, default=str))
        result = predict_load(read_config(directory / "config.json"), {}, name)
        return result.kind if isinstance(result, ConfigProblem) else "verdict"

    try:
        cls = getattr(transformers, name, None)
    except Exception as e:  # the class's module needs a missing package (torchaudio, ...)
        reason = describe_exception(e)
        return {**record, "status": "cannot-build", "reason": reason, "oracle": oracle_answer(None)}
    if cls is None:
        return {**record, "status": "not-exported"}
    try:
        built = build(transformers, torch, cls, model_type)
    except BuildError as e:
        status = "too-large" if e.too_large else "cannot-build"
        return {**record, "status": status, "reason": str(e), "oracle": oracle_answer(cls)}
    record.update(config=built.how, params=built.params)

    base = workdir / "roundtrip"
    try:
        built.model.save_pretrained(str(base))
    except Exception as e:
        return {**record, "status": "save-failed", "reason": describe_exception(e)}
    weights: dict[str, Any] = safetensors_torch.load_file(str(base / "model.safetensors"))
    middle = sorted(weights)[len(weights) // 2]

    def variant(tag: str, edited: dict[str, Any]) -> Path:
        directory = workdir / tag
        directory.mkdir()
        safetensors_torch.save_file(
            {k: v.contiguous() for k, v in edited.items()},
            str(directory / "model.safetensors"),
            metadata={"format": "pt"},
        )
        (directory / "config.json").write_bytes((base / "config.json").read_bytes())
        return directory

    cases = {
        "roundtrip": base,
        "drop-key": variant("drop-key", {k: v for k, v in weights.items() if k != middle}),
        "add-key": variant("add-key", {**weights, "extra_head.weight": torch.zeros(3, 4)}),
        "module-prefix": variant("module-prefix", {"module." + k: v for k, v in weights.items()}),
    }
    # A config saved without `architectures` (Qwen2.5-VL under 4.57) makes sdlint check the base
    # class of its model_type, as AutoModel would; the sweep compares with this class, so it names
    # it, as a user would with --architecture.
    saved = json.loads((base / "config.json").read_text())
    architecture = None if saved.get("architectures") else name
    if architecture is not None:
        record["architecture_passed"] = True
    problems: dict[str, list[str]] = {}
    timings: dict[str, float] = {}
    for tag, directory in cases.items():
        tensors = directory_signature(directory)
        start = time.perf_counter()
        verdict = predict_load(read_config(directory / "config.json"), tensors, architecture)
        timings[tag] = round(time.perf_counter() - start, 3)
        if not isinstance(verdict, LoadVerdict):
            problems[tag] = [f"oracle: {verdict.kind}: {verdict.message}"]
            continue
        found = differences(verdict, reference_report(cls, directory), tensors)
        if tag == "roundtrip" and not verdict.is_clean:
            found.append("round trip is not clean")
        if tag == "module-prefix":
            wrapper = verdict.wrapper_prefix
            if wrapper is None or wrapper.prefix != "module.":
                found.append(f"wrapper prefix not found ({wrapper})")
            elif not wrapper.verdict.is_clean:
                found.append("verdict after stripping `module.` is not clean")
        elif verdict.wrapper_prefix is not None:
            found.append(f"spurious wrapper prefix {verdict.wrapper_prefix.prefix!r}")
        if found:
            problems[tag] = found
    status = "agree" if not problems else "disagree"
    return {**record, "status": status, "problems": problems, "oracle_seconds": timings}


def worker() -> int:
    """Answer one JSON task per stdin line on the original stdout; everything else to stderr."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # model code that prints cannot corrupt the protocol
    sys.stdout = sys.stderr
    for line in sys.stdin:
        task = json.loads(line)
        with tempfile.TemporaryDirectory(prefix="sweep-") as tmp:
            try:
                result = check_class(task["class"], task["model_type"], Path(tmp))
            except Exception as e:  # a harness error: report it and keep going
                result = {
                    "class": task["class"],
                    "model_type": task["model_type"],
                    "status": "error",
                    "reason": describe_exception(e),
                }
        protocol.write(json.dumps(result) + "\n")
    return 0


# ---------------------------------------------------------------------------------------------
# Parent side: the class list, the worker pool with timeouts, the summary.


def classes() -> list[tuple[str, str]]:
    modeling_auto = importlib.import_module("transformers.models.auto.modeling_auto")
    seen: dict[str, str] = {}
    for mapping in MAPPINGS:
        for model_type, value in getattr(modeling_auto, mapping).items():
            for name in value if isinstance(value, (tuple, list)) else (value,):
                seen.setdefault(name, model_type)
    return sorted(seen.items())


class Worker:
    def __init__(self, log: IO[str]) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.task: tuple[str, str] | None = None
        self.deadline = 0.0

    def send(self, task: tuple[str, str], timeout: float) -> None:
        assert self.process.stdin is not None
        self.task = task
        self.deadline = time.monotonic() + timeout
        self.process.stdin.write(json.dumps({"class": task[0], "model_type": task[1]}) + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
        self.process.wait()


def run(
    tasks: list[tuple[str, str]], jobs: int, timeout: float, log: IO[str]
) -> Iterator[dict[str, Any]]:
    """Yield one record per task, running `jobs` workers, each task under `timeout` seconds."""
    pending = list(reversed(tasks))
    selector = selectors.DefaultSelector()
    workers: list[Worker] = []

    def start() -> None:
        w = Worker(log)
        assert w.process.stdout is not None
        selector.register(w.process.stdout, selectors.EVENT_READ, w)
        workers.append(w)

    def replace(w: Worker) -> None:
        assert w.process.stdout is not None
        selector.unregister(w.process.stdout)
        workers.remove(w)
        w.stop()
        if pending:
            start()

    for _ in range(min(jobs, len(tasks))):
        start()
    for w in list(workers):
        if pending:
            w.send(pending.pop(), timeout)
    while any(w.task is not None for w in workers):
        now = time.monotonic()
        wait = max(0.0, min(w.deadline for w in workers if w.task is not None) - now)
        for key, _ in selector.select(timeout=wait + 0.05):
            w = key.data
            assert w.process.stdout is not None
            line = w.process.stdout.readline()
            task, w.task = w.task, None
            if task is None:
                continue
            if not line:  # the worker died on this class
                yield {
                    "class": task[0],
                    "model_type": task[1],
                    "status": "crashed",
                    "reason": f"worker exited with {w.process.wait()}",
                }
                replace(w)
                continue
            yield json.loads(line)
            if pending:
                w.send(pending.pop(), timeout)
        now = time.monotonic()
        for w in list(workers):
            if w.task is not None and now > w.deadline:
                task, w.task = w.task, None
                yield {
                    "class": task[0],
                    "model_type": task[1],
                    "status": "timeout",
                    "reason": f"over {timeout:.0f} s",
                }
                replace(w)
                fresh = workers[-1] if workers and workers[-1].task is None else None
                if fresh is not None and pending:
                    fresh.send(pending.pop(), timeout)
    for w in workers:
        w.stop()


def summarize(records: list[dict[str, Any]], seconds: float, versions: dict[str, str]) -> str:
    counts = Counter(r["status"] for r in records)
    tested = counts["agree"] + counts["disagree"]
    lines = [
        "# Architecture sweep: the oracle against `from_pretrained`",
        "",
        f"transformers {versions['transformers']}, torch {versions['torch']}; "
        f"{len(records)} classes in {seconds / 60:.1f} min.",
        "",
        f"**Agreeing: {counts['agree']} / {tested}** classes built and compared "
        "(round trip clean, and the round trip, a dropped key, an added key and a `module.` "
        "prefix all equal to transformers' report; the prefix found as a wrapper).",
        "",
        "| outcome | classes |",
        "|---|---|",
    ]
    lines += [f"| {status} | {n} |" for status, n in counts.most_common()]
    named = sorted(r["class"] for r in records if r.get("architecture_passed"))
    if named:
        lines += [
            "",
            f"Saved without `architectures` in config.json, so checked with `--architecture` "
            f"naming the class ({len(named)}): " + ", ".join(f"`{c}`" for c in named) + ".",
        ]
    disagree = [r for r in records if r["status"] == "disagree"]
    if disagree:
        lines += ["", "## Disagreements", ""]
        for r in disagree:
            for tag, found in r["problems"].items():
                lines.append(
                    f"- `{r['class']}` ({r['model_type']}) {tag}: {'; '.join(found)[:400]}"
                )
    failed = [r for r in records if r["status"] not in ("agree", "disagree")]
    if failed:
        oracle_kinds = Counter(
            r.get("oracle", "-") for r in failed if r["status"] == "cannot-build"
        )
        lines += [
            "",
            "## Not compared",
            "",
            "For classes not built, the oracle's answer on the default config (a ConfigProblem "
            "kind, or `verdict` when the meta build works, as for a too-large model): "
            + ", ".join(f"{kind} {n}" for kind, n in oracle_kinds.most_common())
            + ".",
            "",
        ]
        for r in failed:
            oracle = f" (oracle: {r['oracle']})" if "oracle" in r else ""
            lines.append(
                f"- `{r['class']}` ({r['model_type']}): {r['status']}: "
                f"{str(r.get('reason', ''))[:300]}{oracle}"
            )
    return "\n".join(lines) + "\n"


def recorded(out: Path, versions: dict[str, str]) -> tuple[dict[str, dict[str, Any]], float]:
    """The records an earlier run with these versions left in `out`, by class, and its time."""
    done: dict[str, dict[str, Any]] = {}
    seconds = 0.0
    with contextlib.suppress(FileNotFoundError):
        earlier = json.loads((out / "sweep.json").read_text())
        if earlier["versions"] != versions:
            raise SystemExit(f"{out}/sweep.json was written with {earlier['versions']}")
        done.update((r["class"], r) for r in earlier["records"])
        seconds = float(earlier["seconds"])
    with contextlib.suppress(FileNotFoundError):
        for line in (out / "sweep.jsonl").read_text().splitlines():
            with contextlib.suppress(ValueError):  # a line cut short by the interruption
                record = json.loads(line)
                done[record["class"]] = record
    return done, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--limit", type=int, default=None, help="check only the first N classes")
    parser.add_argument("--only", default=None, help="regex: check only matching class names")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2)), help="workers")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per class")
    parser.add_argument("--out", type=Path, default=OUT, help="where sweep.json/.md go")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the classes already recorded in --out (sweep.json, or the sweep.jsonl an "
        "interrupted run left) and check only the others",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker()

    args.out.mkdir(parents=True, exist_ok=True)
    versions = {
        name: importlib.import_module(name).__version__ for name in ("transformers", "torch")
    }
    done, earlier_seconds = recorded(args.out, versions) if args.resume else ({}, 0.0)
    tasks = [t for t in classes() if t[0] not in done]
    if args.only:
        tasks = [t for t in tasks if re.search(args.only, t[0])]
    if args.limit is not None:
        tasks = tasks[: args.limit]
    started = time.monotonic()
    records: list[dict[str, Any]] = list(done.values())
    mode = "a" if args.resume else "w"
    with (args.out / "sweep.log").open(mode) as log, (args.out / "sweep.jsonl").open(mode) as out:
        for i, record in enumerate(run(tasks, args.jobs, args.timeout, log), 1):
            records.append(record)
            out.write(json.dumps(record) + "\n")  # what --resume keeps if the run is stopped
            out.flush()
            print(f"[{i}/{len(tasks)}] {record['class']}: {record['status']}", file=sys.stderr)
    seconds = earlier_seconds + time.monotonic() - started
    records.sort(key=lambda r: str(r["class"]))
    (args.out / "sweep.json").write_text(
        json.dumps({"versions": versions, "seconds": seconds, "records": records}, indent=1)
    )
    summary = summarize(records, seconds, versions)
    (args.out / "sweep.md").write_text(summary)
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
