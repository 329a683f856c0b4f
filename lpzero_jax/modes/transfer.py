"""`transfer` mode: each benchmark's searched proxy on the other benchmarks (lpzero_jax/study/).

    python -m lpzero_jax.main --config=experiments/gpt2.py --config.mode=transfer \
        --config.study.benchmarks=flexibert,gpt2,llama --config.study.pool=cached \
        --config.study.cache_dirs=flexibert=DIR,llama=DIR \
        --config.study.search_dirs=flexibert=RUN,gpt2=RUN,llama=RUN --config.workdir=runs/transfer

The best genome of each benchmark's `search` run (study.search_dirs), the paper's Appendix B genomes
and #Params, scored on every benchmark over its pool less the S sample its search drew
(config.seed), so that no cell scores a genome on the architectures it was searched on:
DIR/transfer.{json,csv,md,png}.
"""

from __future__ import annotations

from pathlib import Path

from absl import logging

from lpzero_jax import files
from lpzero_jax.expression.published import PUBLISHED
from lpzero_jax.modes.base import register_mode
from lpzero_jax.study import benchmarks as bm
from lpzero_jax.study.transfer import transfer_table, write_transfer


def run_transfer(config, workdir: Path) -> dict:
    workdir = Path(workdir)
    names = bm.benchmark_names(config)
    proxies = {f"searched on {n}": bm.searched_genome(config, n) for n in names}
    proxies.update({k: PUBLISHED[k] for k in (f"lpzero_{n}" for n in names) if k in PUBLISHED})
    proxies["params"] = ""
    pools = bm.benchmark_pools(config, workdir)
    held = {n: p.search_split(int(c.search.sample_archs), int(config.seed))[1]
            for n, (c, p) in pools.items()}
    rows = transfer_table({n: p for n, (_, p) in pools.items()},
                          {n: c.search.aggregate for n, (c, _) in pools.items()}, proxies, held)
    sizes = {n: len(held[n]) for n in names}
    write_transfer(rows, names, sizes, workdir)
    files.write_json(workdir / "transfer_pools.json",
                     {n: {"size": p.size, "digest": p.digest(),
                          "held_out_arch_ids": [p.arch_ids[i] for i in held[n]]}
                      for n, (_, p) in pools.items()}, indent=1)
    for r in rows:
        logging.info("%-24s %s", r["proxy"], "  ".join(f"{n} {r[n]['spearman_rho']:.3f}" for n in names))
    return {"rows": rows, "pool_sizes": sizes}


register_mode("transfer")(run_transfer)
