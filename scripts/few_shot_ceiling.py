"""What limits a few-shot ranker: its held-out rho as S grows far past the protocol's sizes, and
the rho of a ridge fitted on EVERY architecture and scored on the same ones (an ORACLE: it reads
all the labels, so it is the best these features allow a linear ranker, not a result).

    PYTHONPATH=. python scripts/few_shot_ceiling.py --family=flexibert \
        --features=flexibert.csv --sizes=50,100,200,300,400 --out=ceiling.json

Each size: the protocol's draw of S (study/few_shot.run_seed, the seeds of few_shot.seeds) with
ridge-only lines, so nothing but S changes; a few minutes over a 500-row table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

METHODS = ("ridge", "ridge+arch", "ridge_arch", "best_zoo_on_S")


def in_sample_rho(x: np.ndarray, truth: np.ndarray, alpha: float) -> float:
    """Spearman rho of the protocol's ridge (search/ranker.py) fitted on every label (ORACLE)."""
    from lpzero_jax.search import ranker

    names = [f"f{j}" for j in range(x.shape[1])]
    fitted = ranker.fit_model("ridge", {"alpha": alpha}, x, truth, names)
    return float(spearmanr(fitted.predict(x), truth)[0])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--family", required=True)
    p.add_argument("--features", required=True, help="feature table (arch_id, score, proxies)")
    p.add_argument("--sizes", default="50,100,200,300,400")
    p.add_argument("--seeds", default="42,43,44,45,46,47,48,49,50,51")
    p.add_argument("--out", default="ceiling.json")
    args = p.parse_args(argv)

    from lpzero_jax.checks import load_archs
    from lpzero_jax.configs import shipped_config
    from lpzero_jax.families import get_family
    from lpzero_jax.search import ranker
    from lpzero_jax.study import few_shot as fs

    config = shipped_config(args.family)
    table = fs.read_feature_table(Path(args.features), args.family, {})
    by_id = {str(a.arch_id): a for a in load_archs(get_family(args.family), config)}
    table = table.with_descriptors([by_id[a].config for a in table.arch_ids])
    seeds = [int(s) for s in args.seeds.split(",")]
    out = {"family": args.family, "features": table.names, "n": len(table.arch_ids),
           "by_size": {}, "oracle_in_sample": {}}
    for size in [int(s) for s in args.sizes.split(",")]:
        rhos = {m: [] for m in METHODS}
        for seed in seeds:
            result = fs.run_seed(table, seed, size, methods=METHODS)
            for m in METHODS:
                if m in result:
                    rhos[m].append(result[m]["held_out"]["rho"])
        out["by_size"][size] = {m: {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)),
                                    "n_seeds": len(v)} for m, v in rhos.items() if v}
        print(size, {m: f"{v['mean']:.3f} ± {v['sd']:.3f}" for m, v in out["by_size"][size].items()},
              flush=True)
    both = np.concatenate([table.values, table.arch_values], axis=1)
    for name, x in (("zoo", table.values), ("zoo+arch", both)):
        out["oracle_in_sample"][name] = {str(a): in_sample_rho(x, table.truth, a)
                                         for a in ranker.RIDGE_ALPHAS}
        print("ORACLE in-sample ridge", name, out["oracle_in_sample"][name], flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
