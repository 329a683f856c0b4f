"""`search` mode: LPZero's proxy search (Algorithm 1) on a sample of S architectures.

Writes DIR/search.json (best genome, its fitness on the sample, rho/tau on all and held-out archs,
candidates evaluated and pruned per rule, seconds split into extraction / compilation / evaluation,
peak RSS), DIR/history.csv (generation, best fitness, population mean) and DIR/evolution.png
(best-so-far for evolution, and for the baselines that were run). The search checkpoints to
DIR/search_checkpoint.json every few generations; rerunning with the same workdir resumes.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

from absl import logging

from lpzero_jax import parallel, report
from lpzero_jax.modes.base import register_mode
from lpzero_jax.results import write_json
from lpzero_jax.search.driver import (
    SearchData,
    best_of,
    evaluate_on_all,
    make_evaluator_factory,
    run_searches,
    write_history,
)
from lpzero_jax.search.settings import check_sample, validate_search


def run(config, workdir: Path) -> dict:
    workdir = Path(workdir)
    s = config.search
    started = time.perf_counter()
    data = SearchData(config, workdir)
    state, evaluator, baselines, runs = run_searches(config, make_evaluator_factory(config, data),
                                                     workdir)
    search_seconds = time.perf_counter() - started - data.extract_seconds

    best = best_of(state)
    result = {
        "family": config.family,
        "best_genome": str(best),
        "fitness_on_sample": state.history[-1]["best_fitness"],
        "sample_arch_ids": [data.archs[i].arch_id for i in data.sample_idx],
        "candidates_evaluated": evaluator.evaluated,
        "candidates_pruned": evaluator.pruned.total(),
        "pruned_per_rule": {k: v for k, v in evaluator.pruned.counts.items() if v},
        "generations": state.generation,
        "population": s.population,
        "baselines": {name: dict(best_genome=str(g) if g is not None else None, **info)
                      for name, (g, info) in baselines.items()},
    }
    held_seconds = evaluate_on_all(data, evaluator, best, baselines, result) if s.evaluate_all else 0.0
    result["seconds"] = {
        "input_extraction_sample": data.extract_seconds,
        "input_extraction_held_out": held_seconds,
        "compilation": evaluator.compile_seconds,
        "evaluation": evaluator.eval_seconds,
        "search_total": search_seconds,
        "total": time.perf_counter() - started,
    }
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if parallel.is_writer():
        write_json(workdir / "search.json", result)
        write_history(state, workdir / "history.csv")
        report.plot_search_curves(runs, workdir / "evolution.png")
    logging.info("best genome %s: fitness %.4f on the sample%s", result["best_genome"],
                 result["fitness_on_sample"], "" if "held_out" not in result else
                 f"; held-out rho {result['held_out']['spearman_rho']:.4f} "
                 f"tau {result['held_out']['kendall_tau']:.4f}")
    return result


register_mode("search", validate=validate_search,
              check_archs=check_sample)(run)
