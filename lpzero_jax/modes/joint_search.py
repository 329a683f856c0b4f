"""`joint_search` mode: one proxy for several benchmarks at once (lpzero_jax/study/).

Algorithm 1 with fitness = min over the benchmarks of rho on each benchmark's S sample (the sample
that benchmark's own `search` run draws with config.seed, S = its search.sample_archs); the best
genome's held-out rho/tau per benchmark beside those of each single-benchmark best genome (when
study.search_dirs names its run) on the same held-out architectures: DIR/joint.{json,csv,md} and
DIR/joint_history.csv. Not checkpointed (minutes over cached inputs): a killed run starts over.
Settings as for `transfer` (study.benchmarks, study.cache_dirs, study.search_dirs).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from absl import logging

from lpzero_jax import evaluation, files
from lpzero_jax.expression.genome import parse_genome
from lpzero_jax.inputs import stack_inputs
from lpzero_jax.modes.base import register_mode
from lpzero_jax.search.driver import evolution_config, score_archs, write_history
from lpzero_jax.search.evolution import evolve
from lpzero_jax.search.fitness import FitnessEvaluator
from lpzero_jax.search.settings import check_drawn_sample, validate_search
from lpzero_jax.study import benchmarks as bm
from lpzero_jax.study.joint import JointEvaluator


def run_joint(config, workdir: Path) -> dict:
    workdir = Path(workdir)
    s = config.search
    pools = bm.benchmark_pools(config, workdir)
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


register_mode("joint_search", validate=validate_search,
              check_archs=check_drawn_sample)(run_joint)
