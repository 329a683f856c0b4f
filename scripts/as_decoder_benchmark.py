"""Rewrite a gpt2-family own benchmark (plain GPT-2s) or the llama family's mini-benchmark as a
decoder-family own benchmark, to rank the same architectures with both families.

    python scripts/as_decoder_benchmark.py --family gpt2 --src examples/gpt2_plain_20.jsonl --out X.jsonl
    python scripts/as_decoder_benchmark.py --family llama --out Y.jsonl   # the packaged mini-benchmark

Each architecture keeps its id and ground truth; its config becomes the decoder fields of the same
model (`benchmarks.decoder_configs.lts_gpt2_fields` / `llama_fields`), so parameters, initial
values and six inputs are the other family's (tests/families/test_decoder.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lpzero_jax.benchmarks.decoder_configs import llama_fields, lts_gpt2_fields
from lpzero_jax.benchmarks.own import FORMAT, load_own, parse_gpt2_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", choices=("gpt2", "llama"), required=True)
    parser.add_argument("--src", type=Path, help="gpt2: the own benchmark; llama: default packaged")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.family == "gpt2":
        archs, header = load_own(args.src, "gpt2", parse_gpt2_config)
        rows = [(a, lts_gpt2_fields(a.config, str(a.arch_id))) for a in archs]
        metric, higher = header["metric"], header["higher_is_better"]
    else:
        from lpzero_jax.benchmarks.minibench import DEFAULT_LLAMA_FILE, load_minibench
        from lpzero_jax.models.llama import llama_config_from_dict

        archs, _ = load_minibench(args.src or DEFAULT_LLAMA_FILE, None,
                                  parse_config=llama_config_from_dict, family="llama")
        rows = [(a, llama_fields(a.config, str(a.arch_id))) for a in archs]
        metric, higher = "valid_ppl", False
    lines = [json.dumps({"format": FORMAT, "family": "decoder", "metric": metric,
                         "higher_is_better": higher,
                         "description": f"the {args.family} family's architectures as decoders"})]
    for arch, fields in rows:
        score = arch.extra.get("metric", arch.score if higher else -arch.score)
        lines.append(json.dumps({"id": arch.arch_id, "config": fields, "score": score}))
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(rows)} architectures to {args.out}")


if __name__ == "__main__":
    main()
