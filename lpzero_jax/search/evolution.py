"""Algorithm 1 of LPZero: genetic programming over proxy genomes.

Initialise a population of p valid random genomes; then for G generations: rank the population by
fitness, take the top R ratio as the pool Q, draw two parents from Q, cross them over with
probability Cr and mutate the child with probability Mr; if the child breaks a rule of the
Rule-based Pruning Strategy (or is already in the population) regenerate it; evaluate it and keep the
top p. Everything random comes from one seeded NumPy generator whose state is checkpointed, so an
interrupted run resumes on exactly the trajectory of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable, List, Optional

import numpy as np
from absl import logging

from lpzero_jax.expression.genome import Genome, crossover, mutate, parse_genome, random_genome
from lpzero_jax.search.fitness import FitnessEvaluator


@dataclasses.dataclass(frozen=True)
class EvolutionConfig:
    population: int = 80
    generations: int = 1000
    pool_ratio: float = 0.1
    crossover_rate: float = 0.5
    mutation_rate: float = 0.5
    n_unary: int = 2
    seed: int = 42
    max_regenerate: int = 200  # offspring draws per generation before giving up on that generation


@dataclasses.dataclass
class SearchState:
    """Everything needed to resume: generation done, population, history, RNG state."""

    generation: int = 0
    population: List[str] = dataclasses.field(default_factory=list)  # genome strings
    history: List[dict] = dataclasses.field(default_factory=list)
    rng_state: Optional[dict] = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SearchState":
        return cls(**d)


def _ranked(population: List[str], evaluator: FitnessEvaluator) -> List[str]:
    return sorted(population, key=lambda g: evaluator(parse_genome(g)).key(), reverse=True)


def initial_population(evaluator: FitnessEvaluator, cfg: EvolutionConfig,
                       rng: np.random.Generator) -> List[str]:
    """p distinct random genomes that pass RPS and evaluate to a valid fitness."""
    population: List[str] = []
    attempts = 0
    while len(population) < cfg.population:
        attempts += 1
        if attempts > 1000 * cfg.population:
            raise RuntimeError(f"found only {len(population)} valid genomes in {attempts} draws")
        g = random_genome(rng, cfg.n_unary)
        text = str(g)
        if text in population:
            continue
        fit = evaluator(g)
        if fit.valid or not evaluator.use_rps:
            population.append(text)
    return population


def offspring(pool: List[str], population_set: set, evaluator: FitnessEvaluator,
              cfg: EvolutionConfig, rng: np.random.Generator) -> Optional[Genome]:
    """Lines 7-15 of Algorithm 1: a new child from the pool, regenerated until it passes RPS."""
    for _ in range(cfg.max_regenerate):
        a = parse_genome(pool[rng.integers(len(pool))])
        b = parse_genome(pool[rng.integers(len(pool))])
        child = a
        if rng.random() < cfg.crossover_rate:
            child = crossover(a, b, rng)
        if rng.random() < cfg.mutation_rate:
            child = mutate(child, rng)
        if str(child) in population_set:
            continue
        fit = evaluator(child)
        if fit.valid or not evaluator.use_rps:
            return child
    return None


def evolve(evaluator: FitnessEvaluator, cfg: EvolutionConfig, state: Optional[SearchState] = None,
           on_generation: Optional[Callable[[SearchState], None]] = None,
           log_every: int = 50) -> SearchState:
    """Runs (or resumes) Algorithm 1 until cfg.generations; returns the final state."""
    rng = np.random.default_rng(cfg.seed)
    if state is None or not state.population:
        state = SearchState()
        t = time.perf_counter()
        state.population = initial_population(evaluator, cfg, rng)
        state.seconds += time.perf_counter() - t
        state.rng_state = rng.bit_generator.state
        _record(state, evaluator, generation=0)
    else:
        rng.bit_generator.state = state.rng_state
    pool_size = max(2, int(math.ceil(cfg.pool_ratio * cfg.population)))
    last_log = time.perf_counter()
    evaluated_at_log = evaluator.evaluated
    while state.generation < cfg.generations:
        t = time.perf_counter()
        ranked = _ranked(state.population, evaluator)
        child = offspring(ranked[:pool_size], set(ranked), evaluator, cfg, rng)
        if child is not None:
            ranked = _ranked(ranked + [str(child)], evaluator)[:cfg.population]
        state.population = ranked
        state.generation += 1
        state.rng_state = rng.bit_generator.state
        state.seconds += time.perf_counter() - t
        _record(state, evaluator, state.generation)
        if on_generation is not None:
            on_generation(state)
        if state.generation % log_every == 0 or state.generation == cfg.generations:
            now = time.perf_counter()
            rate = (evaluator.evaluated - evaluated_at_log) / max(now - last_log, 1e-9)
            h = state.history[-1]
            logging.info("generation %d/%d: best rho %.4f (%s), population mean %.4f, "
                         "%.1f candidates/s", state.generation, cfg.generations, h["best_fitness"],
                         h["best_genome"], h["population_mean"], rate)
            last_log, evaluated_at_log = now, evaluator.evaluated
    return state


def _record(state: SearchState, evaluator: FitnessEvaluator, generation: int) -> None:
    fits = [evaluator(parse_genome(g)) for g in state.population]
    valid = [f.rho for f in fits if f.valid]
    best = max(range(len(fits)), key=lambda i: fits[i].key())
    state.history.append({
        "generation": generation,
        "best_fitness": fits[best].rho,
        "best_genome": state.population[best],
        "population_mean": float(np.mean(valid)) if valid else float("nan"),
        "evaluated": evaluator.evaluated,
        "seconds": state.seconds,
    })
