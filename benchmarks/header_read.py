"""Header reading: sdlint's own reader against `safetensors.safe_open`, side by side in one run.

    .venv/bin/python benchmarks/header_read.py [--repeat 7]

Files are sparse (a data section with no disk blocks), so a 140 GB checkpoint costs nothing here;
both readers touch only the header. Two views:
- in process: read_header() vs safe_open(...).keys()/get_slice().get_shape(), imports excluded;
- fresh processes: `sdlint check FILE` vs a script that imports safetensors (+numpy, which
  safe_open needs) and lists the tensors: what a pre-commit hook or CI step pays.
Figures are printed as ratios; the machines are shared and noisy, absolute times are not stable.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from functools import partial
from pathlib import Path

from benchmarks._util import in_process, time_process, write_sparse_checkpoint
from sdlint.formats.safetensors import Header, read_header

SAFE_OPEN_SCRIPT = """
import sys
from safetensors import safe_open
with safe_open(sys.argv[1], framework="numpy") as f:
    shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}
"""


def roberta_base_like() -> dict[str, tuple[str, tuple[int, ...]]]:
    """The 201 tensors of a roberta-base classifier (shapes as in the real model)."""
    h, layers, vocab = 768, 12, 50265
    t: dict[str, tuple[str, tuple[int, ...]]] = {
        "roberta.embeddings.word_embeddings.weight": ("F32", (vocab, h)),
        "roberta.embeddings.position_embeddings.weight": ("F32", (514, h)),
        "roberta.embeddings.token_type_embeddings.weight": ("F32", (1, h)),
        "roberta.embeddings.LayerNorm.weight": ("F32", (h,)),
        "roberta.embeddings.LayerNorm.bias": ("F32", (h,)),
    }
    for i in range(layers):
        p = f"roberta.encoder.layer.{i}."
        for name, shape in [
            ("attention.self.query", (h, h)),
            ("attention.self.key", (h, h)),
            ("attention.self.value", (h, h)),
            ("attention.output.dense", (h, h)),
            ("intermediate.dense", (4 * h, h)),
            ("output.dense", (h, 4 * h)),
        ]:
            t[p + name + ".weight"] = ("F32", shape)
            t[p + name + ".bias"] = ("F32", (shape[0],))
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + ln + ".weight"] = ("F32", (h,))
            t[p + ln + ".bias"] = ("F32", (h,))
    t["classifier.dense.weight"] = ("F32", (h, h))
    t["classifier.dense.bias"] = ("F32", (h,))
    t["classifier.out_proj.weight"] = ("F32", (2, h))
    t["classifier.out_proj.bias"] = ("F32", (2,))
    return t


def huge(n_layers: int, hidden: int) -> dict[str, tuple[str, tuple[int, ...]]]:
    """A 70B-class decoder: few tensors, each of billions of bytes."""
    t: dict[str, tuple[str, tuple[int, ...]]] = {
        "model.embed_tokens.weight": ("BF16", (128256, hidden))
    }
    for i in range(n_layers):
        for name, shape in [
            ("self_attn.q_proj", (hidden, hidden)),
            ("self_attn.k_proj", (1024, hidden)),
            ("self_attn.v_proj", (1024, hidden)),
            ("self_attn.o_proj", (hidden, hidden)),
            ("mlp.gate_proj", (28672, hidden)),
            ("mlp.up_proj", (28672, hidden)),
            ("mlp.down_proj", (hidden, 28672)),
        ]:
            t[f"model.layers.{i}.{name}.weight"] = ("BF16", shape)
        t[f"model.layers.{i}.input_layernorm.weight"] = ("BF16", (hidden,))
        t[f"model.layers.{i}.post_attention_layernorm.weight"] = ("BF16", (hidden,))
    t["model.norm.weight"] = ("BF16", (hidden,))
    t["lm_head.weight"] = ("BF16", (128256, hidden))
    return t


def many(n: int) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {f"t.{i}.weight": ("F16", (16, 16)) for i in range(n)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "roberta-base (201 tensors, 0.5 GB)": roberta_base_like(),
            "llama-70B-like (723 tensors, 141 GB)": huge(80, 8192),
            "100k small tensors (header 9 MB)": many(100_000),
        }
        print(
            f"{'checkpoint':<40} {'in-process: sdlint':>19} {'safe_open':>10} {'ratio':>7}"
            f" | {'process: sdlint':>16} {'safe_open':>10} {'ratio':>7}"
        )
        for label, tensors in cases.items():
            path = Path(tmp) / "model.safetensors"
            size = write_sparse_checkpoint(path, tensors)
            result = read_header(path)
            assert isinstance(result, Header) and len(result.tensors) == len(tensors)

            from safetensors import safe_open

            def reference(p: Path = path) -> object:
                with safe_open(str(p), framework="numpy") as f:
                    return {k: f.get_slice(k).get_shape() for k in f.keys()}  # noqa: SIM118

            ours = in_process(partial(read_header, path), args.repeat)
            theirs = in_process(reference, args.repeat)
            cli, _ = time_process(
                [sys.executable, "-m", "sdlint", "check", "-q", str(path)], args.repeat
            )
            ref, _ = time_process([sys.executable, "-c", SAFE_OPEN_SCRIPT, str(path)], args.repeat)
            print(
                f"{label:<40} {ours * 1e3:>16.2f} ms {theirs * 1e3:>7.2f} ms {theirs / ours:>6.1f}x"
                f" | {cli * 1e3:>13.0f} ms {ref * 1e3:>7.0f} ms {ref / cli:>6.1f}x"
                f"   ({size / 1e9:.1f} GB file)"
            )
            path.unlink()
        print("ratio = safe_open time / sdlint time (above 1: sdlint is faster)")


if __name__ == "__main__":
    main()
