"""`transfer` and `joint_search` modes: several benchmarks at once (lpzero_jax/study/).

    python -m lpzero_jax.main --config=experiments/gpt2.py --config.mode=transfer \
        --config.study.benchmarks=flexibert,gpt2,llama --config.study.pool=cached \
        --config.study.cache_dirs=flexibert=DIR,llama=DIR \
        --config.study.search_dirs=flexibert=RUN,gpt2=RUN,llama=RUN --config.workdir=runs/transfer

transfer: the best genome of each benchmark's `search` run (study.search_dirs), the paper's
Appendix B genomes and #Params, scored on every benchmark over its pool less the S sample its search
drew (config.seed), so that no cell scores a genome on the architectures it was searched on:
DIR/transfer.{json,csv,md,png}.

joint_search: Algorithm 1 with fitness = min over the benchmarks of rho on each benchmark's S sample
(the sample that benchmark's own `search` run draws with config.seed, S = its search.sample_archs);
the best genome's held-out rho/tau per benchmark beside those of each single-benchmark best genome
(when study.search_dirs names its run) on the same held-out architectures: DIR/joint.{json,csv,md}
and DIR/joint_history.csv. Not checkpointed (minutes over cached inputs): a killed run starts over.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from absl import logging

from lpzero_jax import evaluation, files
from lpzero_jax.expression.genome import parse_genome
from lpzero_jax.expression.published import PUBLISHED
from lpzero_jax.inputs import stack_inputs
from lpzero_jax.modes.base import register_mode
from lpzero_jax.modes.search import write_history
from lpzero_jax.modes.search import evolution_config, score_archs
from lpzero_jax.search.evolution import evolve
from lpzero_jax.search.fitness import FitnessEvaluator
from lpzero_jax.study import benchmarks as bm
from lpzero_jax.study.joint import JointEvaluator
from lpzero_jax.study.pool import load_pool
from lpzero_jax.study.transfer import transfer_table, write_transfer


def _pools(config, workdir: Path, min_size: int = 3):
    """name -> (its config, its pool) for every benchmark of the study."""
    out = {}
    for name in bm.benchmark_names(config):
        c = bm.benchmark_config(config, name)
        size = int(c.search.sample_archs) + 3 if config.mode == "joint_search" else min_size
        out[name] = (c, load_pool(c, workdir, bm.pool_spec(config, name), min_size=size))
    return out


def run_transfer(config, workdir: Path) -> dict:
    workdir = Path(workdir)
    names = bm.benchmark_names(config)
    proxies = {f"searched on {n}": bm.searched_genome(config, n) for n in names}
    proxies.update({k: PUBLISHED[k] for k in (f"lpzero_{n}" for n in names) if k in PUBLISHED})
    proxies["params"] = ""
    pools = _pools(config, workdir)
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


def run_joint(config, workdir: Path) -> dict:
    workdir = Path(workdir)
    s = config.search
    pools = _pools(config, workdir)
    evaluators, splits = {}, {}
    for name, (c, pool) in pools.items():
        sample_idx, held_idx = pool.search_split(int(c.search.sample_archs), int(config.seed))
        splits[name] = (sample_idx, held_idx)
        evaluators[name] = FitnessEvaluator(
            stack_inputs([pool.inputs[i] for i in sample_idx]), pool.truth[sample_idx],
            use_rps=bool(s.rps), aggregate=c.search.aggregate, backend=s.evaluator, n_unary=s.n_unary)
    joint = JointEvaluator(evaluators)
    state = evolve(joint, evolution_config(config))
    best = state.history[-1]["best_genome"]
    single = {}
    for name in pools:
        try:
            single[name] = bm.searched_genome(config, name)
        except Exception as e:  # noqa: BLE001  (that benchmark's own search is optional here)
            logging.info("no single-benchmark search for %s (%s)", name, e)
    per_benchmark = {}
    for name, (c, pool) in pools.items():
        sample_idx, held_idx = splits[name]
        held = [pool.inputs[i] for i in held_idx]
        row = {"sample_size": len(sample_idx), "held_out_size": len(held_idx),
               "sample_rho": joint.rho_per_benchmark(parse_genome(best))[name],
               "held_out": score_archs(evaluators[name], parse_genome(best), held,
                                       pool.truth[held_idx]),
               "params_held_out": evaluation.rank_correlations(pool.references["params"][held_idx],
                                                               pool.truth[held_idx])}
        for source, genome in single.items():
            row[f"searched_on_{source}"] = {
                "genome": genome,
                "held_out": score_archs(evaluators[name], parse_genome(genome), held,
                                        pool.truth[held_idx])}
        per_benchmark[name] = row
    result = {"benchmarks": list(pools), "best_genome": best,
              "fitness_on_samples": state.history[-1]["best_fitness"],
              "candidates_evaluated": joint.evaluated, "generations": state.generation,
              "seed": int(config.seed), "per_benchmark": per_benchmark,
              "pools": {n: {"spec": bm.pool_spec(config, n), "size": p.size, "digest": p.digest()}
                        for n, (_, p) in pools.items()}}
    files.write_json(workdir / "joint.json", result, indent=1)
    write_history(state, workdir / "joint_history.csv")
    write_joint_tables(result, workdir)
    logging.info("joint best %s: min sample rho %.4f; held-out %s", best, result["fitness_on_samples"],
                 ", ".join(f"{n} {r['held_out']['spearman_rho']:.4f}" for n, r in per_benchmark.items()))
    return result


def write_joint_tables(result: dict, workdir: Path) -> None:
    """joint.csv (one row per benchmark and proxy) and joint.md (benchmarks as columns)."""
    names = result["benchmarks"]
    rows = {"joint search": {n: result["per_benchmark"][n]["held_out"] for n in names}}
    for source in names:
        key = f"searched_on_{source}"
        if all(key in result["per_benchmark"][n] for n in names):
            rows[f"searched on {source}"] = {n: result["per_benchmark"][n][key]["held_out"] for n in names}
    rows["params"] = {n: result["per_benchmark"][n]["params_held_out"] for n in names}
    with files.atomic_write(workdir / "joint.csv") as f:
        w = csv.writer(f)
        w.writerow(["proxy", "benchmark", "held_out_rho", "held_out_tau", "n"])
        for proxy, cells in rows.items():
            for n in names:
                w.writerow([proxy, n, cells[n]["spearman_rho"], cells[n]["kendall_tau"], cells[n]["n"]])
    md = [f"Joint search best genome `{result['best_genome']}` (min sample rho "
          f"{result['fitness_on_samples']:.3f}; sample rho " + ", ".join(
              f"{n} {result['per_benchmark'][n]['sample_rho']:.3f}" for n in names) + ")", "",
          "| proxy | " + " | ".join(f"{n} held-out rho / tau (n={result['per_benchmark'][n]['held_out_size']})"
                                    for n in names) + " |",
          "|---|" + "---|" * len(names)]
    for proxy, cells in rows.items():
        md.append(f"| {proxy} | " + " | ".join(
            "-" if not np.isfinite(cells[n]["spearman_rho"]) else
            f"{cells[n]['spearman_rho']:.3f} / {cells[n]['kendall_tau']:.3f}" for n in names) + " |")
    files.write_text(workdir / "joint.md", "\n".join(md) + "\n")


register_mode("transfer")(run_transfer)
register_mode("joint_search")(run_joint)
