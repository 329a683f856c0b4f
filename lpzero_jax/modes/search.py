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

import numpy as np
from absl import logging

from lpzero_jax import parallel, report
from lpzero_jax.modes.base import register_mode
from lpzero_jax.files import write_csv
from lpzero_jax.results import write_json
from lpzero_jax.search.driver import (
    SearchData,
    best_of,
    evaluate_on_all,
    make_evaluator_factory,
    run_searches,
    write_history,
)
from lpzero_jax.search import answer as answer_lib
from lpzero_jax.search.arch_features import descriptor_table
from lpzero_jax.search.settings import check_sample, split_list, validate_search
from lpzero_jax.proxies.resolve import resolve_proxies
from lpzero_jax.proxies.scoring import load_log, score_into_log


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
    held_seconds, zoo_seconds = 0.0, 0.0
    if s.evaluate_all:
        held_seconds, values = evaluate_on_all(data, evaluator, best, baselines, result)
        zoo_seconds = answer_step(config, data, values, workdir, result)
    result["seconds"] = {
        "input_extraction_sample": data.extract_seconds,
        "input_extraction_held_out": held_seconds,
        "zoo": zoo_seconds,
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
    if "answer" in result:
        a = result["answer"]
        logging.info("answer (search.answer=%s): held-out rho %.4f; %s", a["method"],
                     a["held_out"]["spearman_rho"], "; ".join(
                         f"{m} {e['held_out']['spearman_rho']:.4f}" for m, e in a["methods"].items()))
        if a["not_beaten"]:
            logging.warning("the answer (%s) did not beat %s on the held-out architectures",
                            a["method"], ", ".join(a["not_beaten"]))
    return result


def zoo_values(config, data: SearchData, workdir: Path) -> tuple:
    """(values [N, Z], names, seconds) of the search.zoo proxies on every architecture, scored by
    the rank loop into DIR/zoo_values.jsonl (resumable; a failed value is NaN)."""
    spec = str(config.search.zoo).strip()
    if not spec:
        return np.zeros((len(data.archs), 0)), [], 0.0
    proxies = resolve_proxies(spec)
    path = Path(workdir) / "zoo_values.jsonl"
    started = time.perf_counter()
    done, failed = load_log(path)
    score_into_log(data.family, data.archs, config, data.batch, proxies, data.store, path, done,
                   failed)
    names = list(proxies)
    values = np.asarray([[done.get((str(a.arch_id), n), (np.nan,))[0] for n in names]
                         for a in data.archs], np.float64)
    return values, names, time.perf_counter() - started


def answer_step(config, data: SearchData, genome_values: np.ndarray, workdir: Path,
                result: dict) -> float:
    """search/answer.py over this run's S: every method, the one search.answer names returned in
    result["answer"] and written as DIR/answer_ranking.csv; returns the zoo's seconds."""
    s = config.search
    values, names, seconds = zoo_values(config, data, workdir)
    arch_names, arch_values = descriptor_table([a.config for a in data.archs])
    methods = answer_lib.answer_methods(
        data.truth, data.sample_idx, data.held_idx, genome_values, values, names, arch_names,
        arch_values, ranker_parts=split_list(s.ranker_features), seed=int(config.seed),
        kinds=split_list(s.ranker_kinds))
    result["answer"] = answer_lib.summary(methods, s.answer)
    if parallel.is_writer():
        rows = answer_lib.ranking_rows([a.arch_id for a in data.archs],
                                       methods[s.answer]["scores"], data.sample_idx, data.truth)
        write_csv(workdir / "answer_ranking.csv", rows)
        if s.answer == "ranker":
            methods["ranker"]["model"].save(workdir / "ranker.json")
    return seconds


register_mode("search", validate=validate_search,
              check_archs=check_sample)(run)
