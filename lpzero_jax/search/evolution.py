"""One evolutionary loop over any search space (`search/space.py`), and LPZero's Algorithm 1 on it.

`evolve_members` keeps a population ranked by a batch fitness (higher is better; NaN/inf rank last).
Each step takes the best `parents` as the pool, draws parents from it, crosses them over with
probability `crossover_rate` and mutates the child with probability `mutation_rate` (1: always, no
draw); a child that is a duplicate or invalid is redrawn, and after `max_tries` draws repaired by the
space (or dropped). Two replacement regimes:
  steady-state ("steady"): one child per step; the best `population` of the old members and the
      child survive (Algorithm 1 of LPZero, the proxy search);
  generational ("generational"): the parents survive (elitism) and children fill the population
      (the LoNAS subnet search, `search/subnets.py`).
Everything random comes from one seeded NumPy generator whose state is part of `SearchState`, so an
interrupted run resumes on exactly the trajectory of an uninterrupted one.

`evolve` is Algorithm 1: initialise p valid random genomes; for G generations rank, take the top R
ratio as the pool, breed one child that passes the Rule-based Pruning Strategy (and is not already in
the population), keep the top p.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable, Dict, Hashable, List, Optional, Sequence

import numpy as np
from absl import logging

from lpzero_jax.expression.genome import parse_genome
from lpzero_jax.search.fitness import FitnessEvaluator
from lpzero_jax.search.space import GenomeSpace, SearchSpace

BatchFitness = Callable[[Sequence[Hashable]], Sequence[float]]
REGIMES = ("steady", "generational")


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """population: members kept; steps: breeding steps after the initial population; parents: size of
    the pool children are bred from; regime: "steady" or "generational" (module doc);
    distinct_parents: draw two different parents (else with replacement)."""

    population: int
    steps: int
    parents: int
    regime: str = "steady"
    crossover_rate: float = 0.5
    mutation_rate: float = 0.5
    distinct_parents: bool = False
    max_tries: int = 200
    seed: int = 0

    def __post_init__(self):
        if self.regime not in REGIMES:
            raise ValueError(f"unknown replacement regime {self.regime!r}; expected one of {REGIMES}")


@dataclasses.dataclass
class SearchState:
    """Everything needed to resume: steps done, population (best first after the first step),
    history, RNG state.
    `scores` (every member scored, in scoring order) is rebuilt from the fitness on resume."""

    generation: int = 0
    population: List = dataclasses.field(default_factory=list)
    history: List[dict] = dataclasses.field(default_factory=list)
    rng_state: Optional[dict] = None
    seconds: float = 0.0
    scores: Dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def to_dict(self, key: Callable[[object], str] = str) -> dict:
        """JSON-able form; members as their text (`key`)."""
        return {"generation": self.generation, "population": [key(m) for m in self.population],
                "history": self.history, "rng_state": self.rng_state, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict, parse: Callable[[str], object] = parse_genome) -> "SearchState":
        """The state of a `to_dict` payload; members parsed from their text (`parse`)."""
        return cls(generation=d["generation"], population=[parse(t) for t in d["population"]],
                   history=d["history"], rng_state=d["rng_state"], seconds=d["seconds"])


def _rank_key(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def draw_valid(space: SearchSpace, draw: Callable[[], Hashable], avoid, tries: int,
          rng: np.random.Generator):
    """A valid draw not in `avoid`; after `tries` failed draws the space's repair of the last one."""
    member = None
    for _ in range(tries):
        member = draw()
        if member in avoid:
            continue
        if space.is_valid(member):
            return member
    return None if member is None else space.repair(member, rng)


def _breed(space: SearchSpace, parents: List, s: LoopSettings, rng: np.random.Generator):
    if s.distinct_parents:
        i, j = rng.choice(len(parents), size=2, replace=False)
    else:
        i, j = rng.integers(len(parents)), rng.integers(len(parents))
    child = parents[i]
    if rng.random() < s.crossover_rate:
        child = space.crossover(parents[i], parents[j], rng)
    if s.mutation_rate >= 1.0 or rng.random() < s.mutation_rate:
        child = space.mutate(child, rng)
    return child


def evolve_members(space: SearchSpace, fitness: BatchFitness, settings: LoopSettings,
                   record: Callable[[SearchState], dict], state: Optional[SearchState] = None,
                   on_generation: Optional[Callable[[SearchState], None]] = None,
                   log_every: int = 50) -> SearchState:
    """Runs (or resumes) the loop until `settings.steps`; returns the final state.

    fitness(members) -> one score per member, called once per member on the members not scored
    yet (in population order). record(state) -> the history line appended after the initial
    population and after every step (what a line holds is the caller's: each search keeps its own
    history format). on_generation(state) runs after each step (checkpoints)."""
    rng = np.random.default_rng(settings.seed)

    def rank(members: List) -> List:
        new = [m for m in dict.fromkeys(members) if m not in state.scores]
        if new:
            values = [float(v) for v in fitness(new)]
            if len(values) != len(new):
                raise ValueError(f"fitness returned {len(values)} scores for {len(new)} members")
            state.scores.update(zip(new, values))
        return sorted(members, key=lambda m: _rank_key(state.scores[m]), reverse=True)

    if state is None or not state.population:
        state = SearchState()
        t = time.perf_counter()
        population: List = []
        for _ in range(settings.population):
            member = draw_valid(space, lambda: space.random_member(rng), set(population),
                                settings.max_tries, rng)
            if member is None:
                raise RuntimeError(f"found only {len(population)} valid members of "
                                   f"{settings.population}: {settings.max_tries} draws in a row failed")
            population.append(member)
        rank(population)  # scores them; the population stays in draw order until the first step
        state.population = population
        state.seconds += time.perf_counter() - t
        state.rng_state = rng.bit_generator.state
        state.history.append(record(state))
    else:
        rng.bit_generator.state = state.rng_state
        rank(state.population)  # rescored from the fitness (the evaluator's restored cache)
    last_log, scored_at_log = time.perf_counter(), len(state.scores)
    while state.generation < settings.steps:
        t = time.perf_counter()
        ranked = rank(state.population)
        parents = ranked[:settings.parents]
        if settings.regime == "steady":
            kept, n_children = ranked, 1
        else:
            kept, n_children = parents, settings.population - len(parents)
        avoid, children = set(kept), []
        for _ in range(n_children):
            child = draw_valid(space, lambda: _breed(space, parents, settings, rng), avoid,
                                settings.max_tries, rng)
            if child is not None:
                children.append(child)
                avoid.add(child)
        state.population = rank(kept + children)[:settings.population]
        state.generation += 1
        state.rng_state = rng.bit_generator.state
        state.seconds += time.perf_counter() - t
        state.history.append(record(state))
        if on_generation is not None:
            on_generation(state)
        if state.generation % log_every == 0 or state.generation == settings.steps:
            now = time.perf_counter()
            best = _best(state)
            logging.info("generation %d/%d: best %.6g (%s), population mean %.6g, %d scored "
                         "(%.1f/s)", state.generation, settings.steps, state.scores[best],
                         space.key(best), _population_mean(state), len(state.scores),
                         (len(state.scores) - scored_at_log) / max(now - last_log, 1e-9))
            last_log, scored_at_log = now, len(state.scores)
    return state


def _best(state: SearchState):
    """The population's best member (the first of equals)."""
    return max(state.population, key=lambda m: _rank_key(state.scores[m]))


def _population_mean(state: SearchState) -> float:
    """Mean of the population's finite scores (NaN when none is finite)."""
    finite = [v for v in (state.scores[m] for m in state.population) if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


# --- Algorithm 1 (the proxy search) ----------------------------------------------------------------

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


def loop_settings(cfg: EvolutionConfig) -> LoopSettings:
    """Algorithm 1 as settings of the loop: steady-state, pool of ceil(R p) (at least 2)."""
    return LoopSettings(population=cfg.population, steps=cfg.generations,
                        parents=max(2, int(math.ceil(cfg.pool_ratio * cfg.population))),
                        regime="steady", crossover_rate=cfg.crossover_rate,
                        mutation_rate=cfg.mutation_rate, max_tries=cfg.max_regenerate, seed=cfg.seed)


def evolve(evaluator: FitnessEvaluator, cfg: EvolutionConfig, state: Optional[SearchState] = None,
           on_generation: Optional[Callable[[SearchState], None]] = None,
           log_every: int = 50) -> SearchState:
    """Runs (or resumes) Algorithm 1 until cfg.generations; returns the final state. Its history
    lines: generation, best_fitness (rho), best_genome (text), population_mean, evaluated, seconds."""

    def record(s: SearchState) -> dict:
        fits = [evaluator(g) for g in s.population]
        valid = [f.rho for f in fits if f.valid]
        best = max(range(len(fits)), key=lambda i: fits[i].key())
        return {"generation": s.generation, "best_fitness": fits[best].rho,
                "best_genome": str(s.population[best]),
                "population_mean": float(np.mean(valid)) if valid else float("nan"),
                "evaluated": evaluator.evaluated, "seconds": s.seconds}

    return evolve_members(GenomeSpace(evaluator, cfg.n_unary),
                          lambda genomes: [evaluator(g).key() for g in genomes], loop_settings(cfg),
                          record, state, on_generation, log_every)
