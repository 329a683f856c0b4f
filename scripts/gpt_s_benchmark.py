"""A GPT-S-style own benchmark for the decoder family, seeded: the knobs of HW-GPT-Bench's GPT-S space
(whittle's `hw_gpt_bench`) at test size.

    python scripts/gpt_s_benchmark.py --out examples/decoder_gpt_s.jsonl [--num 24] [--seed 0]

Each line is a LitGPT-style config: head_size 64 whatever the width (so the number of heads sets
the attention's shape), per-layer n_head and MLP ratio (intermediate_size = ratio x n_embd), bias
on or off per architecture, rotary positions on half of each head (rotary_percentage 0.5),
LayerNorm, GptNeoxMLP with exact GELU, sequential residual, an untied LM head over GPT-2's 50,257
tokens. Widths are GPT-S's choices divided by 3 (n_embd 64/128/256 for 192/384/768) and 2-4 layers
instead of 10-12, so a rank of all lines runs in minutes on a laptop.

THE SCORE IS SYNTHETIC: a seeded random number per line (metric "synthetic_random_score"), not a
measurement. The file exists to show the decoder family's shapes (e.g. that params_attn takes as
many values as the attention shapes differ) and the rank / NASLib outputs; its correlations mean
nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lpzero_jax.benchmarks.own import FORMAT

N_EMBD = (64, 128, 256)
N_LAYER = (2, 3, 4)
N_HEAD = (2, 4, 6)
MLP_RATIO = (2, 3, 4)


def architectures(num: int, seed: int) -> list:
    """`num` distinct seeded GPT-S-style configs (id, LitGPT-style config)."""
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    while len(out) < num:
        e = int(rng.choice(N_EMBD))
        layers = int(rng.choice(N_LAYER))
        heads = [int(h) for h in rng.choice(N_HEAD, layers)]
        ratios = [int(r) for r in rng.choice(MLP_RATIO, layers)]
        bias = bool(rng.integers(2))
        key = (e, tuple(heads), tuple(ratios), bias)
        if key in seen:
            continue
        seen.add(key)
        config = {"n_embd": e, "n_layer": layers, "n_head": heads, "head_size": 64,
                  "intermediate_size": [r * e for r in ratios], "bias": bias,
                  "rotary_percentage": 0.5, "vocab_size": 50257, "padded_vocab_size": 50257,
                  "block_size": 256, "norm_class_name": "LayerNorm", "mlp_class_name": "GptNeoxMLP",
                  "gelu_approximate": "none", "parallel_residual": False}
        out.append((f"gpts_{len(out):02d}", config))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--num", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed + 1)
    header = {"format": FORMAT, "family": "decoder", "metric": "synthetic_random_score",
              "higher_is_better": True, "dataset": "synthetic",
              "description": "GPT-S-style decoders at test size; the score is a seeded random "
                             "number, NOT a measurement (scripts/gpt_s_benchmark.py)"}
    lines = [json.dumps(header)]
    for arch_id, config in architectures(args.num, args.seed):
        lines.append(json.dumps({"id": arch_id, "config": config,
                                 "score": round(float(rng.random()), 6)}))
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.num} architectures to {args.out}")


if __name__ == "__main__":
    main()
