"""Model conformance on a roberta-base-sized checkpoint: sdlint (cold and warm cache) against
transformers' own `from_pretrained(..., output_loading_info=True)`, side by side in one run.

    .venv/bin/python -m benchmarks.conformance [--repeat 5]

The checkpoint is the real roberta-base classifier layout (201 tensors, 125 M parameters, 499 MB)
written as a sparse file, checked against its own 2-label config (clean) and against a 5-label
config (the canonical SD101 case; `from_pretrained` gets `ignore_mismatched_sizes=True`, without
which it raises instead of reporting). Every measurement is a fresh process, as a pre-commit hook
or CI step runs. Figures are ratios: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from benchmarks._util import in_process, time_process, write_sparse_checkpoint

FROM_PRETRAINED = """
import sys, transformers
from transformers import RobertaForSequenceClassification, RobertaConfig
transformers.logging.set_verbosity_error()
config = RobertaConfig.from_pretrained(sys.argv[2])
model, info = RobertaForSequenceClassification.from_pretrained(
    sys.argv[1], config=config, output_loading_info=True, ignore_mismatched_sizes=True
)
print(sorted(info["mismatched_keys"]))
"""

WARM_IMPORTS = """
import sys
from sdlint.cli import main
code = main(sys.argv[1:])
assert "torch" not in sys.modules and "transformers" not in sys.modules, "warm run imported torch"
raise SystemExit(code)
"""


def build(folder: Path) -> tuple[Path, Path]:
    """The checkpoint (with its 2-label config) and a 5-label config, shapes from a meta model."""
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    dtypes = {torch.float32: "F32", torch.int64: "I64"}
    config = RobertaConfig(architectures=["RobertaForSequenceClassification"])
    config.num_labels = 2
    with torch.device("meta"):
        model = RobertaForSequenceClassification(config)
    tensors = {k: (dtypes[v.dtype], tuple(v.shape)) for k, v in model.state_dict().items()}
    size = write_sparse_checkpoint(folder / "model.safetensors", tensors)
    config.save_pretrained(folder)
    five = RobertaConfig(architectures=["RobertaForSequenceClassification"])
    five.num_labels = 5
    five.save_pretrained(folder / "five")
    print(f"checkpoint: {len(tensors)} tensors, {size / 1e6:.0f} MB (sparse)")
    return folder, folder / "five" / "config.json"


def oracle_seconds(folder: Path, config: Path, repeat: int) -> float:
    """What a cold run costs beyond importing torch and transformers: one `predict_load`."""
    from sdlint.config_fields import read_config
    from sdlint.discover import find_checkpoints
    from sdlint.model import TensorSpec
    from sdlint.model.oracle import predict_load

    (checkpoint,) = find_checkpoints([folder / "model.safetensors"])
    tensors = {k: TensorSpec(t.dtype, t.shape) for k, t in checkpoint.tensors.items()}
    parsed = read_config(config)
    predict_load(parsed, tensors)  # the first call pays for importing the model's module
    return in_process(lambda: predict_load(parsed, tensors), repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        folder, five = build(Path(tmp) / "roberta-base")
        env = {**os.environ, "SDLINT_CACHE_DIR": str(Path(tmp) / "cache"), "NO_COLOR": "1"}
        print(
            f"{'target config':<16} {'from_pretrained':>16} {'sdlint cold':>12} {'sdlint warm':>12}"
            f" {'cold ratio':>11} {'warm ratio':>11} | peak RSS MiB: fp / cold / warm"
        )
        for label, config in (
            ("2 labels (clean)", folder / "config.json"),
            ("5 labels (SD101)", five),
        ):
            check = ["check", "-q", str(folder), "--model-config", str(config)]
            reference, ref_rss = time_process(
                [py, "-c", FROM_PRETRAINED, str(folder), str(config)], args.repeat, env
            )
            cold, cold_rss = time_process(
                [py, "-m", "sdlint", *check, "--no-cache"], args.repeat, env
            )
            time_process([py, "-m", "sdlint", *check], 1, env)  # fill the cache
            warm, warm_rss = time_process([py, "-c", WARM_IMPORTS, *check], args.repeat, env)
            print(
                f"{label:<16} {reference:>14.2f} s {cold:>10.2f} s {warm:>10.3f} s"
                f" {reference / cold:>10.1f}x {reference / warm:>10.0f}x"
                f" | {ref_rss / 1024:.0f} / {cold_rss / 1024:.0f} / {warm_rss / 1024:.0f}"
            )
        print("ratio = from_pretrained time / sdlint time (above 1: sdlint is faster)")
        oracle = oracle_seconds(folder, five, args.repeat)
        print(f"the oracle alone, in process after the imports: {oracle * 1e3:.0f} ms (median)")


if __name__ == "__main__":
    main()
