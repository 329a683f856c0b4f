"""Joint search: one evolution whose fitness is the lowest of the rho values on each benchmark's S
sample, so the proxy it finds must rank every benchmark (Algorithm 1 otherwise unchanged)."""

from __future__ import annotations

from typing import Dict, Mapping

from lpzero_jax.expression.genome import Genome
from lpzero_jax.search.fitness import Fitness, FitnessEvaluator


class JointEvaluator:
    """Fitness = min over benchmarks of each benchmark's FitnessEvaluator rho; invalid if invalid on
    any (reason prefixed with that benchmark's name). Counts a candidate as evaluated once, when
    it passed the static rules (every evaluator applies the same ones)."""

    def __init__(self, evaluators: Mapping[str, FitnessEvaluator]):
        if not evaluators:
            raise ValueError("a joint search needs at least one benchmark")
        rps = {ev.use_rps for ev in evaluators.values()}
        if len(rps) != 1:
            raise ValueError("the benchmarks' evaluators disagree on RPS")
        self.evaluators: Dict[str, FitnessEvaluator] = dict(evaluators)
        self.use_rps = rps.pop()
        self.cache: Dict[str, Fitness] = {}
        self.evaluated = 0

    def per_benchmark(self, genome: Genome) -> Dict[str, Fitness]:
        """Each benchmark's fitness of the genome (every one evaluated, cached)."""
        return {name: ev(genome) for name, ev in self.evaluators.items()}

    def __call__(self, genome: Genome) -> Fitness:
        text = str(genome)
        if text in self.cache:
            return self.cache[text]
        if next(iter(self.evaluators.values())).static_check(genome) is None:
            self.evaluated += 1
        fits = self.per_benchmark(genome)
        bad = [(name, f) for name, f in fits.items() if not f.valid]
        if bad:
            fit = Fitness(False, float("nan"), f"{bad[0][0]}:{bad[0][1].reason}")
        else:
            fit = Fitness(True, float(min(f.rho for f in fits.values())))
        self.cache[text] = fit
        return fit

    def rho_per_benchmark(self, genome: Genome) -> Dict[str, float]:
        """name -> rho on that benchmark's sample (NaN where invalid)."""
        return {n: (f.rho if f.valid else float("nan")) for n, f in self.per_benchmark(genome).items()}

