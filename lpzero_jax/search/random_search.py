"""Random search, the baseline evolution must beat: uniform genomes, the same evaluation budget."""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from lpzero_jax.expression.genome import random_genome
from lpzero_jax.search.fitness import FitnessEvaluator


def random_search(evaluator: FitnessEvaluator, budget: int, n_unary: int,
                  seed: int) -> Tuple[str, float, List[dict]]:
    """Draws genomes until `budget` candidates were evaluated (RPS rejections are free when RPS
    is on, as in evolution). Returns (best genome, its fitness, best-so-far history)."""
    rng = np.random.default_rng(seed)
    start = evaluator.evaluated
    best, best_rho = None, -np.inf
    history = []
    draws = 0
    while evaluator.evaluated - start < budget:
        draws += 1
        if draws > 1000 * max(budget, 1):
            break
        g = random_genome(rng, n_unary)
        before = evaluator.evaluated
        fit = evaluator(g)
        if evaluator.evaluated == before:  # cached or statically pruned: no budget spent
            continue
        if fit.valid and fit.rho > best_rho:
            best, best_rho = str(g), fit.rho
        history.append({"evaluated": evaluator.evaluated - start,
                        "best_fitness": best_rho if best is not None else float("nan")})
    return best, float(best_rho), history
