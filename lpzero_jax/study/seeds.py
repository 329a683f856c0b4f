"""Seeds and significance: the proxy search repeated with k seeds over one pool of inputs.

Each seed draws its own sample S (`evaluation.sample_split` over the pool) and seeds evolution,
random search and evolution without RPS, which run at the same evaluation budget exactly as in the
`search` mode. On the seed's held-out architectures we score the three best genomes and cheap
hand-crafted references: #Params (and the family's parameter groups, e.g. params_attn for GPT-2)
and the paper's Appendix B genome of the family (`lpzero_<family>`, computed from the same inputs).
With `study.proxies`, zoo proxies (e.g. wpca, zerolm) are references too: each is computed once
per pool architecture at config.seed by the rank mode's loop (resumable in DIR/zoo/, as the
`sensitivity` mode's) and scored on every seed's held-out architectures. Over the seeds: mean and
standard deviation of the held-out rho/tau, and a paired Wilcoxon signed-rank test of evolution
against random search (scipy).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
from scipy import stats

from lpzero_jax import evaluation
from lpzero_jax.checks import load_archs
from lpzero_jax.expression.genome import parse_genome
from lpzero_jax.expression.published import PUBLISHED
from lpzero_jax.families import get_family
from lpzero_jax.inputs import stack_inputs
from lpzero_jax.search.driver import BASELINES, best_of, evolution_config, run_searches, score_archs
from lpzero_jax.search.fitness import FitnessEvaluator
from lpzero_jax.study import sensitivity
from lpzero_jax.study.pool import Pool

SEARCHES = ("evolution", "random", "no_rps")  # searched proxies, in this order


def seed_settings(config, pool: Pool, aggregate: str) -> dict:
    """What one seed's results depend on besides the seed (a saved seed with others is stale)."""
    s = config.search
    evo = {k: v for k, v in vars(evolution_config(config)).items() if k != "seed"}
    return dict(evo, rps=bool(s.rps), aggregate=aggregate, sample_archs=int(s.sample_archs),
                evaluator=s.evaluator, pool=pool.digest(), version=1)


def held_out_scores(evaluator: FitnessEvaluator, genome_text: str, pool: Pool,
                    held_idx: np.ndarray) -> Dict[str, float]:
    """rho/tau of a genome over the held-out architectures of the pool."""

    return score_archs(evaluator, parse_genome(genome_text), [pool.inputs[i] for i in held_idx],
                       pool.truth[held_idx])


def search_seed(pool: Pool, config, seed: int, aggregate: str, workdir: Path) -> dict:
    """One seed: sample, the three searches (the `search` mode's `run_searches` with this seed,
    aggregation and every baseline (random search, evolution without RPS), checkpointed in `workdir`), and every proxy's
    held-out rho/tau.

    Returns {seed, aggregate, sample_arch_ids, searches: {name: {genome, fitness_on_sample,
    evaluated, held_out}}, references: {name: {genome?, held_out}}, seconds}.
    """

    started = time.perf_counter()
    s = config.search
    sample_idx, held_idx = evaluation.sample_split(pool.size, int(s.sample_archs), seed)
    stacked = stack_inputs([pool.inputs[i] for i in sample_idx])

    def make_evaluator(use_rps: bool) -> FitnessEvaluator:
        return FitnessEvaluator(stacked, pool.truth[sample_idx], use_rps=use_rps,
                                aggregate=aggregate, backend=s.evaluator, n_unary=s.n_unary)

    seed_config = config.copy_and_resolve_references()
    seed_config.seed = int(seed)
    seed_config.search.aggregate, seed_config.search.baselines = aggregate, ",".join(BASELINES)
    Path(workdir).mkdir(parents=True, exist_ok=True)
    state, evaluator, baselines, _ = run_searches(seed_config, make_evaluator, workdir)
    searches = {"evolution" if s.rps else "no_rps": {
        "genome": str(best_of(state)), "fitness_on_sample": state.history[-1]["best_fitness"],
        "evaluated": evaluator.evaluated}}
    for name, (genome, info) in baselines.items():
        searches[name] = {"genome": str(genome) if genome is not None else None,
                          "fitness_on_sample": info["fitness"], "evaluated": info["evaluated"]}
    for entry in searches.values():
        entry["held_out"] = (held_out_scores(evaluator, entry["genome"], pool, held_idx)
                             if entry["genome"] else None)
    references = {name: {"held_out": evaluation.rank_correlations(values[held_idx],
                                                                  pool.truth[held_idx])}
                  for name, values in pool.references.items()}
    published = f"lpzero_{pool.family}"
    if published in PUBLISHED:
        references[published] = {"genome": PUBLISHED[published],
                                 "held_out": held_out_scores(evaluator, PUBLISHED[published], pool,
                                                             held_idx)}
    return {"seed": int(seed), "aggregate": aggregate,
            "sample_arch_ids": [pool.arch_ids[i] for i in sample_idx],
            "searches": {k: searches[k] for k in SEARCHES if k in searches},
            "references": references, "seconds": time.perf_counter() - started}


def pool_zoo_values(config, pool: Pool, proxies: Dict[str, object], workdir: Path
                    ) -> Dict[str, dict]:
    """name -> {values [N] over the pool (NaN where the proxy failed), seconds (mean per arch),
    failures {arch id: reason}} of the zoo `proxies` at config.seed: the `sensitivity` mode's
    `zoo_values` at its base setting, so both modes read and extend the same DIR/zoo/ logs."""
    family = get_family(config.family)
    by_id = {str(a.arch_id): a for a in load_archs(family, config)}
    archs = [by_id[i] for i in pool.arch_ids]
    seed = int(config.seed)
    base = {"factor": "base", "init_seed": seed, "batch_seed": seed}
    return sensitivity.zoo_values(config, family, archs, proxies, [base], workdir)[(seed, seed)]


def add_zoo_references(record: dict, pool: Pool, zoo: Dict[str, dict]) -> dict:
    """`record` with each zoo proxy's held-out rho/tau (over the pool minus the seed's sample)
    among its references; a proxy's failures are NaN, left out of its n and counted."""
    sample = set(record["sample_arch_ids"])
    held = np.asarray([i for i, a in enumerate(pool.arch_ids) if a not in sample])
    for name, entry in zoo.items():
        record["references"][name] = {
            "held_out": evaluation.rank_correlations(entry["values"][held], pool.truth[held]),
            "zoo": True, "failures": len([a for a in entry["failures"] if a not in sample])}
    return record


def proxy_values(record: dict, metric: str = "spearman_rho") -> Dict[str, float]:
    """proxy name -> held-out `metric` of one seed record (searches first, then references)."""
    out = {}
    for group in ("searches", "references"):
        for name, entry in record[group].items():
            held = entry.get("held_out")
            out[name] = float(held[metric]) if held else float("nan")
    return out


def paired_test(first: Sequence[float], second: Sequence[float]) -> dict:
    """Wilcoxon signed-rank test of paired samples (scipy.stats.wilcoxon): two-sided p and the
    one-sided p of `first` > `second`. With all differences zero there is nothing to test (p 1)."""
    a, b = np.asarray(first, np.float64), np.asarray(second, np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    diff = a - b
    out = {"n": int(len(a)), "mean_difference": float(np.mean(diff)) if len(a) else float("nan"),
           "wins": int(np.sum(diff > 0)), "losses": int(np.sum(diff < 0)), "ties": int(np.sum(diff == 0))}
    if len(a) == 0:
        return dict(out, statistic=float("nan"), p_two_sided=float("nan"), p_greater=float("nan"))
    if np.all(diff == 0):
        return dict(out, statistic=0.0, p_two_sided=1.0, p_greater=1.0)
    two = stats.wilcoxon(a, b, alternative="two-sided")
    greater = stats.wilcoxon(a, b, alternative="greater")
    return dict(out, statistic=float(two.statistic), p_two_sided=float(two.pvalue),
                p_greater=float(greater.pvalue))


def summarize(records: List[dict]) -> dict:
    """Over the seed records of one aggregation: per proxy the mean and sample standard
    deviation of held-out rho and tau, and the paired test of evolution vs random search."""
    names = list(proxy_values(records[0]))
    summary = {}
    for name in names:
        row = {"n_seeds": len(records)}
        for metric, short in (("spearman_rho", "rho"), ("kendall_tau", "tau")):
            values = np.asarray([proxy_values(r, metric).get(name, np.nan) for r in records])
            finite = values[np.isfinite(values)]
            row[f"{short}_mean"] = float(np.mean(finite)) if len(finite) else float("nan")
            row[f"{short}_sd"] = float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan")
            row[f"{short}_values"] = values.tolist()
        summary[name] = row
    tests = {}
    if {"evolution", "random"} <= set(names):
        for metric, short in (("spearman_rho", "rho"), ("kendall_tau", "tau")):
            tests[f"evolution_vs_random_{short}"] = paired_test(
                [proxy_values(r, metric)["evolution"] for r in records],
                [proxy_values(r, metric)["random"] for r in records])
    return {"proxies": summary, "tests": tests}
