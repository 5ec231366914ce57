"""What a remote check costs: requests, bytes and time per checkpoint, against the local fake hub.

    .venv/bin/python -m benchmarks.remote_cost [--jobs 8]

Three repositories shaped like real ones (tensor names and shapes of BERT-base, Llama-2-7B in two
shards, Llama-2-70B in fifteen), their weights sparse files of the real size. Each is checked with
`sdlint check hf://ORG/NAME --model-checks off` in this process; the servers count every request
and every body byte they send. Loopback time is not network time: the figures to carry over are the
requests and bytes; docs/remote.md turns them into a projection.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path

from benchmarks._util import write_sparse_checkpoint
from sdlint.cli import main
from sdlint.dtypes import tensor_bits
from tests.http_server import LocalServers, serve

Tensors = dict[str, tuple[str, tuple[int, ...]]]


def bert_base() -> Tensors:
    t: Tensors = {
        "bert.embeddings.word_embeddings.weight": ("F32", (30522, 768)),
        "bert.embeddings.position_embeddings.weight": ("F32", (512, 768)),
        "bert.embeddings.token_type_embeddings.weight": ("F32", (2, 768)),
        "bert.embeddings.LayerNorm.weight": ("F32", (768,)),
        "bert.embeddings.LayerNorm.bias": ("F32", (768,)),
    }
    for i in range(12):
        p = f"bert.encoder.layer.{i}."
        for m in ("attention.self.query", "attention.self.key", "attention.self.value"):
            t[p + m + ".weight"] = ("F32", (768, 768))
            t[p + m + ".bias"] = ("F32", (768,))
        t[p + "attention.output.dense.weight"] = ("F32", (768, 768))
        t[p + "attention.output.dense.bias"] = ("F32", (768,))
        t[p + "attention.output.LayerNorm.weight"] = ("F32", (768,))
        t[p + "attention.output.LayerNorm.bias"] = ("F32", (768,))
        t[p + "intermediate.dense.weight"] = ("F32", (3072, 768))
        t[p + "intermediate.dense.bias"] = ("F32", (3072,))
        t[p + "output.dense.weight"] = ("F32", (768, 3072))
        t[p + "output.dense.bias"] = ("F32", (768,))
        t[p + "output.LayerNorm.weight"] = ("F32", (768,))
        t[p + "output.LayerNorm.bias"] = ("F32", (768,))
    t["bert.pooler.dense.weight"] = ("F32", (768, 768))
    t["bert.pooler.dense.bias"] = ("F32", (768,))
    return t


def llama(layers: int, hidden: int, inter: int, kv: int) -> Tensors:
    t: Tensors = {"model.embed_tokens.weight": ("F16", (32000, hidden))}
    for i in range(layers):
        p = f"model.layers.{i}."
        t[p + "self_attn.q_proj.weight"] = ("F16", (hidden, hidden))
        t[p + "self_attn.k_proj.weight"] = ("F16", (kv, hidden))
        t[p + "self_attn.v_proj.weight"] = ("F16", (kv, hidden))
        t[p + "self_attn.o_proj.weight"] = ("F16", (hidden, hidden))
        t[p + "mlp.gate_proj.weight"] = ("F16", (inter, hidden))
        t[p + "mlp.up_proj.weight"] = ("F16", (inter, hidden))
        t[p + "mlp.down_proj.weight"] = ("F16", (hidden, inter))
        t[p + "input_layernorm.weight"] = ("F16", (hidden,))
        t[p + "post_attention_layernorm.weight"] = ("F16", (hidden,))
    t["model.norm.weight"] = ("F16", (hidden,))
    t["lm_head.weight"] = ("F16", (32000, hidden))
    return t


def write_repo(folder: Path, tensors: Tensors, shards: int) -> int:
    """The repository's weights (sharded when shards > 1) and config; the bytes on "disk"."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "test"}))
    if shards == 1:
        return write_sparse_checkpoint(folder / "model.safetensors", tensors)
    names = list(tensors)
    per = -(-len(names) // shards)
    weight_map: dict[str, str] = {}
    files = 0
    for s in range(shards):
        part = {n: tensors[n] for n in names[s * per : (s + 1) * per]}
        shard = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        files += write_sparse_checkpoint(folder / shard, part)
        weight_map.update(dict.fromkeys(part, shard))
    tensor_bytes = sum((tensor_bits(d, s) or 0) // 8 for d, s in tensors.values())
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": tensor_bytes}, "weight_map": weight_map})
    )
    return files


def measure(jobs: int) -> list[dict[str, object]]:
    repos = {
        "bert-base": (bert_base(), 1),
        "llama-2-7b": (llama(32, 4096, 11008, 4096), 2),
        "llama-2-70b": (llama(80, 8192, 28672, 1024), 15),
    }
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sizes = {
            name: write_repo(root / "hub" / "bench" / name, tensors, shards)
            for name, (tensors, shards) in repos.items()
        }
        running: Generator[LocalServers, None, None] = serve(root)  # type: ignore[assignment]
        hub = next(running)
        os.environ["HF_ENDPOINT"] = hub.base
        os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
        try:
            for name, (tensors, shards) in repos.items():
                hub.log.reset()
                start = time.perf_counter()
                code = main(
                    [
                        "check",
                        "-q",
                        "--model-checks",
                        "off",
                        "--jobs",
                        str(jobs),
                        f"hf://bench/{name}",
                    ]
                )
                seconds = time.perf_counter() - start
                rows.append(
                    {
                        "repo": name,
                        "tensors": len(tensors),
                        "files": shards,
                        "weights_bytes": sizes[name],
                        "exit": code,
                        "requests": len(hub.log.requests),
                        "bytes": hub.log.body_bytes,
                        "seconds": round(seconds, 3),
                    }
                )
        finally:
            running.close()
    return rows


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=8)
    args = parser.parse_args()
    for row in measure(args.jobs):
        sys.stdout.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    run()
