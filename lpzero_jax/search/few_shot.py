"""Genome searches on the S labelled architectures of a pool, for the few-shot protocol.

`search_on_sample` runs, on the S sampled architectures' compact inputs only: Algorithm 1 with the
plain fitness, random search at the same evaluation budget, and Algorithm 1 with each variant of
`FitnessOptions` asked for (k-fold / bootstrap estimate, parsimony, top-k rank-average answer).
Each answer is then scored on EVERY architecture of the pool (a genome's value is a function of
one architecture's inputs: no label is read), so the caller can score it on the held-out ones and
use the genomes' values as features of a ranker fitted on S.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Dict, List, Sequence

import numpy as np

from lpzero_jax.expression.genome import Genome, parse_genome
from lpzero_jax.inputs import stack_inputs
from lpzero_jax.search.evolution import EvolutionConfig, evolve
from lpzero_jax.search.fitness import FitnessEvaluator
from lpzero_jax.search.random_search import random_search
from lpzero_jax.search.robust_fitness import (
    FitnessOptions,
    RobustFitnessEvaluator,
    rank_average,
    top_genomes,
)

CHUNK = 50  # architectures scored per compiled call


def genome_values(evaluator: FitnessEvaluator, genome: Genome, inputs: Sequence) -> np.ndarray:
    """[N] values of a genome over `inputs` (CompactInputs of N architectures), in chunks."""
    return np.concatenate([np.asarray(evaluator.scores(genome, stack_inputs(inputs[i:i + CHUNK])),
                                      np.float64) for i in range(0, len(inputs), CHUNK)])


@dataclasses.dataclass(frozen=True)
class SampleSearchSettings:
    """evolution: Algorithm 1's settings (its seed is the run's); aggregate / evaluator / rps as
    in the `search` mode; variants: the FitnessOptions runs besides the plain one."""

    evolution: EvolutionConfig
    aggregate: str = "sum"
    backend: str = "program"
    rps: bool = True
    variants: Sequence[FitnessOptions] = ()


def search_on_sample(inputs: Sequence, truth: np.ndarray, sample_idx: np.ndarray,
                     settings: SampleSearchSettings) -> Dict[str, dict]:
    """name -> {genomes [text], fitness_on_sample, evaluated, seconds, values [N] over all the
    pool's architectures}. Names: 'evolution', 'random', and 'evolution_<label>' per variant.
    Only truth[sample_idx] is read."""
    cfg = settings.evolution
    stacked = stack_inputs([inputs[i] for i in sample_idx])
    truth_s = np.asarray(truth, np.float64)[np.asarray(sample_idx)]
    common = dict(use_rps=settings.rps, aggregate=settings.aggregate, backend=settings.backend,
                  n_unary=cfg.n_unary)
    out = {}
    t = time.perf_counter()
    plain = FitnessEvaluator(stacked, truth_s, **common)
    state = evolve(plain, cfg, log_every=10 ** 9)
    best = max(state.population, key=lambda g: plain(g).key())
    out["evolution"] = {"genomes": [str(best)], "fitness_on_sample": plain(best).rho,
                        "evaluated": plain.evaluated, "seconds": time.perf_counter() - t,
                        "values": genome_values(plain, best, inputs)}
    t = time.perf_counter()
    rand = FitnessEvaluator(stacked, truth_s, **common)
    text, rho, _ = random_search(rand, plain.evaluated, cfg.n_unary, cfg.seed)
    out["random"] = {"genomes": [text], "fitness_on_sample": rho, "evaluated": rand.evaluated,
                     "seconds": time.perf_counter() - t,
                     "values": (genome_values(rand, parse_genome(text), inputs) if text
                                else np.full(len(inputs), np.nan))}
    for options in settings.variants:
        t = time.perf_counter()
        options = dataclasses.replace(options, seed=cfg.seed)
        if options.estimate == "full" and not options.parsimony:
            ev = plain  # the plain run's candidates: only the answer differs
        else:
            ev = RobustFitnessEvaluator(stacked, truth_s, options, **common)
            evolve(ev, cfg, log_every=10 ** 9)
        chosen = top_genomes(ev, options.top_k)
        values = [genome_values(ev, g, inputs) for g in chosen]
        out[f"evolution_{options.label()}"] = {
            "genomes": [str(g) for g in chosen], "fitness_on_sample": ev(chosen[0]).rho,
            "evaluated": ev.evaluated, "seconds": time.perf_counter() - t,
            "values": values[0] if len(values) == 1 else rank_average(values)}
    return out


def parse_variants(text: str) -> List[FitnessOptions]:
    """'kfold:mean,bootstrap:q0.25,pars:0.01,top:5' -> FitnessOptions (one per comma item;
    'estimate:statistic', 'pars:<weight>' or 'top:<k>'); ValueError naming a malformed item."""
    out = []
    for item in (x.strip() for x in str(text).split(",") if x.strip()):
        key, _, value = item.partition(":")
        try:
            if key in ("kfold", "bootstrap"):
                out.append(FitnessOptions(estimate=key, statistic=value or "mean"))
            elif key == "pars":
                out.append(FitnessOptions(parsimony=float(value)))
            elif key == "top":
                out.append(FitnessOptions(top_k=int(value)))
            else:
                raise ValueError(f"unknown option {key!r}")
        except ValueError as e:
            raise ValueError(f"fitness variant {item!r}: {e}; expected kfold:<stat>, "
                             "bootstrap:<stat>, pars:<weight> or top:<k>") from None
    return out
