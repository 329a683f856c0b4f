"""`search` mode: LPZero's proxy search (Algorithm 1) on a sample of S architectures.

Writes DIR/search.json (best genome, its fitness on the sample, rho/tau on all and held-out archs,
candidates evaluated and pruned per rule, seconds split into extraction / compilation / evaluation,
peak RSS), DIR/history.csv (generation, best fitness, population mean) and DIR/evolution.png
(best-so-far for evolution, and for the baselines that were run). The search checkpoints to
DIR/search_checkpoint.json every few generations; rerunning with the same workdir resumes.
"""

from __future__ import annotations

import csv
import resource
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
from absl import logging

from lpzero_jax import evaluation, parallel, report
from lpzero_jax.checks import load_archs
from lpzero_jax.errors import ConfigError, DataFileError, describe
from lpzero_jax.files import atomic_write
from lpzero_jax.families import get_family
from lpzero_jax.input_store import InputStore, collect_inputs
from lpzero_jax.inputs import stack_inputs
from lpzero_jax.modes.base import register_mode
from lpzero_jax.expression.genome import parse_genome
from lpzero_jax.search.checkpoint import load_json, save_json
from lpzero_jax.search.evolution import EvolutionConfig, SearchState, evolve
from lpzero_jax.search.fitness import FitnessEvaluator
from lpzero_jax.search.random_search import random_search


def evolution_config(config) -> EvolutionConfig:
    s = config.search
    return EvolutionConfig(population=s.population, generations=s.generations,
                           pool_ratio=s.pool_ratio, crossover_rate=s.crossover_rate,
                           mutation_rate=s.mutation_rate, n_unary=s.n_unary, seed=config.seed)


def _run_evolution(evaluator, cfg, path: Path, every: int, label: str, fitness_key: dict) -> SearchState:
    """Evolution with checkpoints at `path` (resumed if the file exists). `fitness_key` describes
    what the cached fitness values depend on besides `cfg`; a checkpoint with other settings is
    refused rather than silently mixed in."""
    saved = load_json(path)
    state = None
    # generations only bounds the loop (the RNG state is checkpointed): a checkpoint of fewer
    # generations is extended exactly as an uninterrupted run of the new count would go
    settings = {k: v for k, v in dict(vars(cfg), **fitness_key).items() if k != "generations"}
    if saved is not None:
        old = {k: v for k, v in (saved.get("config") or {}).items() if k != "generations"}
        if old != settings:
            differ = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            raise ConfigError(f"{path} was written by a search with other settings "
                              f"({', '.join(differ)} differ); use another workdir or delete it")
        try:
            state = SearchState.from_dict(saved["state"])
            evaluator.restore(saved["evaluator"])
        except (KeyError, TypeError, ValueError) as e:
            raise DataFileError(f"{path}: not a search checkpoint ({describe(e)}); delete it to "
                                "start the search again") from None
        if state.generation > cfg.generations:
            raise ConfigError(f"{path} is at generation {state.generation}, beyond "
                              f"search.generations={cfg.generations}; set "
                              f"--config.search.generations={state.generation} or more, or use "
                              "another workdir")
        logging.info("%s: resuming at generation %d from %s", label, state.generation, path)

    def checkpoint(s: SearchState) -> None:
        if not parallel.is_writer():  # every host runs the same search; process 0 records it
            return
        if s.generation % every == 0 or s.generation == cfg.generations:
            save_json(path, {"config": dict(settings, generations=cfg.generations),
                             "state": s.to_dict(),
                             "evaluator": evaluator.state()})

    state = evolve(evaluator, cfg, state, on_generation=checkpoint)
    checkpoint(state)
    return state


def score_archs(evaluator: FitnessEvaluator, genome, inputs: List, truth) -> Dict[str, float]:
    """Rank correlations of a genome's scores over the given architectures' inputs."""
    scores = np.concatenate([evaluator.scores(genome, stack_inputs(inputs[i:i + 50]))
                             for i in range(0, len(inputs), 50)])
    return evaluation.rank_correlations(scores, truth)


def _history_points(state: SearchState) -> List[dict]:
    return [{"evaluated": h["evaluated"], "best_fitness": h["best_fitness"]} for h in state.history]


def fitness_key(config, use_rps: bool) -> dict:
    """Settings the fitness of a genome depends on (besides the evolution parameters)."""
    from lpzero_jax.input_store import fingerprint_fields
    from lpzero_jax.inputs import inputs_fingerprint

    s = config.search
    return {"rps": use_rps, "aggregate": s.aggregate, "sample_archs": s.sample_archs,
            "inputs": inputs_fingerprint(fingerprint_fields(config)), "num_archs": config.num_archs}


BASELINES = ("random", "no_rps")  # names `search.baselines` accepts


def _baselines(config, make_evaluator, budget: int, workdir: Path, runs: dict) -> dict:
    """The baselines of `config.search.baselines`, at the same evaluation budget as evolution."""
    s = config.search
    cfg = evolution_config(config)
    out = {}
    for name in [b.strip() for b in s.baselines.split(",") if b.strip()]:
        if name == "random":
            ev = make_evaluator(s.rps)
            best, rho, runs["random"] = random_search(ev, budget, cfg.n_unary, config.seed)
            out["random"] = {"best_genome": best, "fitness": rho, "evaluated": ev.evaluated}
        elif name == "no_rps":
            if not s.rps:
                continue  # the main run already is evolution without RPS
            ev = make_evaluator(False)
            st = _run_evolution(ev, cfg, workdir / "search_checkpoint_no_rps.json",
                                s.checkpoint_every, "evolution without RPS", fitness_key(config, False))
            runs["evolution_no_rps"] = _history_points(st)
            out["no_rps"] = {"best_genome": st.history[-1]["best_genome"],
                             "fitness": st.history[-1]["best_fitness"], "evaluated": ev.evaluated}
        else:  # checks.validate_config refuses unknown names before any work
            raise ConfigError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    return out


def _write_history(state: SearchState, path: Path) -> None:
    with atomic_write(path) as f:
        w = csv.writer(f)
        w.writerow(["generation", "best_fitness", "population_mean", "best_genome", "evaluated"])
        for h in state.history:
            w.writerow([h["generation"], h["best_fitness"], h["population_mean"], h["best_genome"],
                        h["evaluated"]])


def run(config, workdir: Path) -> dict:
    workdir = Path(workdir)
    s = config.search
    family = get_family(config.family)
    archs = load_archs(family, config, "search")
    sample_idx, held_idx = evaluation.sample_split(len(archs), s.sample_archs, config.seed)
    truth = np.array([a.score for a in archs])
    logging.info("search: %s, %d archs (S=%d sampled, %d held out), G=%d, p=%d, RPS %s",
                 config.family, len(archs), len(sample_idx), len(held_idx), s.generations,
                 s.population, "on" if s.rps else "off")
    started = time.perf_counter()
    batch = family.make_batch(config)
    store = InputStore(config, workdir)
    sample_inputs, extract_seconds = collect_inputs(store, family, [archs[i] for i in sample_idx],
                                                    config, batch, "sample inputs")
    stacked = stack_inputs(sample_inputs)
    devices = parallel.local_devices(config.parallel.get("devices") or None)
    mesh = (parallel.arch_mesh(devices) if config.parallel.get("shard_candidates", True)
            and len(devices) > 1 else None)

    def make_evaluator(use_rps: bool) -> FitnessEvaluator:
        return FitnessEvaluator(stacked, truth[sample_idx], use_rps=use_rps,
                                aggregate=s.aggregate, backend=s.evaluator,
                                n_unary=s.n_unary, mesh=mesh)

    evaluator = make_evaluator(s.rps)
    state = _run_evolution(evaluator, evolution_config(config), workdir / "search_checkpoint.json",
                           s.checkpoint_every, "evolution", fitness_key(config, s.rps))
    runs = {"evolution" if s.rps else "evolution_no_rps": _history_points(state)}
    baselines = _baselines(config, make_evaluator, evaluator.evaluated, workdir, runs)
    search_seconds = time.perf_counter() - started - extract_seconds

    best_text = state.history[-1]["best_genome"]
    best = parse_genome(best_text)
    result = {
        "family": config.family,
        "best_genome": best_text,
        "fitness_on_sample": state.history[-1]["best_fitness"],
        "sample_arch_ids": [archs[i].arch_id for i in sample_idx],
        "candidates_evaluated": evaluator.evaluated,
        "candidates_pruned": evaluator.pruned.total(),
        "pruned_per_rule": {k: v for k, v in evaluator.pruned.counts.items() if v},
        "generations": state.generation,
        "population": s.population,
        "baselines": baselines,
    }
    held_seconds = 0.0
    if s.evaluate_all:
        # only the inputs the scored genomes use: W alone needs no forward pass, A/H/S no backward
        genomes = [best] + [parse_genome(b["best_genome"]) for b in baselines.values()
                            if b["best_genome"]]
        needed = tuple(sorted({x for g in genomes for x in g.inputs}))
        others, held_seconds = collect_inputs(store, family, [archs[i] for i in held_idx], config,
                                              batch, "held-out inputs", needed=needed)
        by_index = dict(zip(held_idx.tolist(), others))
        by_index.update(zip(sample_idx.tolist(), sample_inputs))
        result["all"] = score_archs(evaluator, best, [by_index[i] for i in range(len(archs))], truth)
        result["held_out"] = score_archs(evaluator, best, others, truth[held_idx])
        for b in baselines.values():
            if b["best_genome"]:
                b["held_out"] = score_archs(evaluator, parse_genome(b["best_genome"]), others,
                                            truth[held_idx])
    result["seconds"] = {
        "input_extraction_sample": extract_seconds,
        "input_extraction_held_out": held_seconds,
        "compilation": evaluator.compile_seconds,
        "evaluation": evaluator.eval_seconds,
        "search_total": search_seconds,
        "total": time.perf_counter() - started,
    }
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if parallel.is_writer():
        save_json(workdir / "search.json", result)
        _write_history(state, workdir / "history.csv")
        report.plot_search_curves(runs, workdir / "evolution.png")
    logging.info("best genome %s: fitness %.4f on the sample%s", best_text, result["fitness_on_sample"],
                 "" if "held_out" not in result else
                 f"; held-out rho {result['held_out']['spearman_rho']:.4f} "
                 f"tau {result['held_out']['kendall_tau']:.4f}")
    return result


register_mode("search")(run)
