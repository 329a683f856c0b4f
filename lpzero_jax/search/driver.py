"""Algorithm 1's driver: the sampled architectures and their inputs, the evolution with its
checkpoints, the baselines at the same budget, and held-out scoring.

Used by the `search` mode (one run), the `study` (one run per seed) and `joint_search`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from absl import logging

from lpzero_jax import evaluation, parallel
from lpzero_jax.checks import load_archs
from lpzero_jax.errors import ConfigError, DataFileError, describe
from lpzero_jax.expression.genome import Genome, parse_genome
from lpzero_jax.families import get_family
from lpzero_jax.files import atomic_write
from lpzero_jax.input_store import InputStore, collect_inputs, fingerprint_fields
from lpzero_jax.inputs import inputs_fingerprint, stack_inputs
from lpzero_jax.results import load_json, write_json
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
            write_json(path, {"config": dict(settings, generations=cfg.generations),
                              "state": s.to_dict(), "evaluator": evaluator.state()}, exact=True)

    state = evolve(evaluator, cfg, state, on_generation=checkpoint)
    checkpoint(state)
    return state


def genome_scores(evaluator: FitnessEvaluator, genome, inputs: List) -> np.ndarray:
    """A genome's scores over the given architectures' inputs (50 at a time)."""
    return np.concatenate([evaluator.scores(genome, stack_inputs(inputs[i:i + 50]))
                           for i in range(0, len(inputs), 50)])


def score_archs(evaluator: FitnessEvaluator, genome, inputs: List, truth) -> Dict[str, float]:
    """Rank correlations of a genome's scores over the given architectures' inputs."""
    return evaluation.rank_correlations(genome_scores(evaluator, genome, inputs), truth)


def _history_points(state: SearchState) -> List[dict]:
    return [{"evaluated": h["evaluated"], "best_fitness": h["best_fitness"]} for h in state.history]


def fitness_key(config, use_rps: bool) -> dict:
    """Settings the fitness of a genome depends on (besides the evolution parameters)."""
    s = config.search
    return {"rps": use_rps, "aggregate": s.aggregate, "sample_archs": s.sample_archs,
            "inputs": inputs_fingerprint(fingerprint_fields(config)), "num_archs": config.num_archs}


BASELINES = ("random", "no_rps")  # names `search.baselines` accepts


def best_of(state: SearchState) -> Genome:
    """The best genome of the final population (the last history line's)."""
    return state.population[0] if state.generation else parse_genome(state.history[-1]["best_genome"])


def run_baselines(config, make_evaluator, budget: int, workdir: Path,
                  runs: dict) -> Dict[str, Tuple[Optional[Genome], dict]]:
    """The baselines of `config.search.baselines` at the same evaluation budget as evolution:
    name -> (best genome or None, {fitness, evaluated}); their best-so-far curves go into `runs`."""
    s = config.search
    cfg = evolution_config(config)
    out = {}
    for name in [b.strip() for b in s.baselines.split(",") if b.strip()]:
        if name == "random":
            ev = make_evaluator(s.rps)
            best, rho, runs["random"] = random_search(ev, budget, cfg.n_unary, config.seed)
            out["random"] = (parse_genome(best) if best else None,
                             {"fitness": rho, "evaluated": ev.evaluated})
        elif name == "no_rps":
            if not s.rps:
                continue  # the main run already is evolution without RPS
            ev = make_evaluator(False)
            st = _run_evolution(ev, cfg, workdir / "search_checkpoint_no_rps.json",
                                s.checkpoint_every, "evolution without RPS", fitness_key(config, False))
            runs["evolution_no_rps"] = _history_points(st)
            out["no_rps"] = (best_of(st), {"fitness": st.history[-1]["best_fitness"],
                                           "evaluated": ev.evaluated})
        else:  # the mode's validate (search.settings) refuses unknown names before any work
            raise ConfigError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    return out


def write_history(state: SearchState, path: Path) -> None:
    """history.csv: one line per recorded generation of an Algorithm 1 run."""
    with atomic_write(path) as f:
        w = csv.writer(f)
        w.writerow(["generation", "best_fitness", "population_mean", "best_genome", "evaluated"])
        for h in state.history:
            w.writerow([h["generation"], h["best_fitness"], h["population_mean"], h["best_genome"],
                        h["evaluated"]])


class SearchData:
    """The architectures of a search, split into the S sampled and the held-out ones, with the
    sample's stacked compact inputs."""

    def __init__(self, config, workdir: Path):
        s = config.search
        self.family = get_family(config.family)
        self.archs = load_archs(self.family, config)
        self.sample_idx, self.held_idx = evaluation.sample_split(len(self.archs), s.sample_archs,
                                                                 config.seed)
        self.truth = np.array([a.score for a in self.archs])
        logging.info("search: %s, %d archs (S=%d sampled, %d held out), G=%d, p=%d, RPS %s",
                     config.family, len(self.archs), len(self.sample_idx), len(self.held_idx),
                     s.generations, s.population, "on" if s.rps else "off")
        self.config = config
        self.batch = self.family.make_batch(config)
        self.store = InputStore(config, workdir)
        self.sample_inputs, self.extract_seconds = collect_inputs(
            self.store, self.family, [self.archs[i] for i in self.sample_idx], config, self.batch,
            "sample inputs")
        self.stacked = stack_inputs(self.sample_inputs)

    def held_out_inputs(self, genomes: Sequence[Genome]) -> Tuple[List, float]:
        """Compact inputs of the held-out archs, only those the genomes read (W alone needs no
        forward pass, A/H/S no backward), and the seconds their extraction took."""
        needed = tuple(sorted({x for g in genomes for x in g.inputs}))
        return collect_inputs(self.store, self.family, [self.archs[i] for i in self.held_idx],
                              self.config, self.batch, "held-out inputs", needed=needed)


def make_evaluator_factory(config, data: SearchData):
    """use_rps -> a FitnessEvaluator on the sample (sharded over the local devices if asked)."""
    s = config.search
    devices = parallel.local_devices(config.parallel.get("devices") or None)
    mesh = (parallel.arch_mesh(devices) if config.parallel.get("shard_candidates", True)
            and len(devices) > 1 else None)

    def make_evaluator(use_rps: bool) -> FitnessEvaluator:
        return FitnessEvaluator(data.stacked, data.truth[data.sample_idx], use_rps=use_rps,
                                aggregate=s.aggregate, backend=s.evaluator,
                                n_unary=s.n_unary, mesh=mesh)

    return make_evaluator


def evaluate_on_all(data: SearchData, evaluator: FitnessEvaluator, best: Genome,
                    baselines: Dict[str, Tuple[Optional[Genome], dict]], result: dict
                    ) -> Tuple[float, np.ndarray]:
    """Adds rho/tau of the best genome on every arch ("all") and on the held-out ones, and the
    baselines' held-out figures, to `result`; returns the held-out extraction seconds and the
    best genome's scores of every architecture (benchmark order)."""
    genomes = [best] + [g for g, _ in baselines.values() if g is not None]
    others, seconds = data.held_out_inputs(genomes)
    by_index = dict(zip(data.held_idx.tolist(), others))
    by_index.update(zip(data.sample_idx.tolist(), data.sample_inputs))
    held_truth = data.truth[data.held_idx]
    values = genome_scores(evaluator, best, [by_index[i] for i in range(len(data.archs))])
    result["all"] = evaluation.rank_correlations(values, data.truth)
    result["held_out"] = evaluation.rank_correlations(values[data.held_idx], held_truth)
    for name, (genome, _) in baselines.items():
        if genome is not None:
            result["baselines"][name]["held_out"] = score_archs(evaluator, genome, others, held_truth)
    return seconds, values


def run_searches(config, make_evaluator, workdir: Path
                 ) -> Tuple[SearchState, FitnessEvaluator, Dict[str, Tuple[Optional[Genome], dict]], dict]:
    """Algorithm 1 (RPS as config.search.rps says; seed config.seed) and, at its evaluation
    budget, the baselines of config.search.baselines, checkpointed in `workdir` (a rerun
    resumes). `make_evaluator(use_rps)` gives a FitnessEvaluator on the sample. Returns (the
    evolution's final state, its evaluator, the baselines as `run_baselines` gives them, the
    best-so-far curves by run name)."""
    s = config.search
    evaluator = make_evaluator(s.rps)
    state = _run_evolution(evaluator, evolution_config(config), Path(workdir) / "search_checkpoint.json",
                           s.checkpoint_every, "evolution", fitness_key(config, s.rps))
    runs = {"evolution" if s.rps else "evolution_no_rps": _history_points(state)}
    baselines = run_baselines(config, make_evaluator, evaluator.evaluated, workdir, runs)
    return state, evaluator, baselines, runs
