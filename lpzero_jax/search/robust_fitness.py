"""Fitness options of Algorithm 1 that aim at the held-out rho rather than the rho on S.

The plain fitness (`search/fitness.py`) is Spearman's rho of a genome's scores over the S sampled
architectures; with thousands of candidates the best of them overfits S. The options here, each a
`FitnessOptions` field, change only how a genome's scores on S become one number, and what the
search answers:

  estimate:   "full" (rho over S, the plain fitness), "kfold" (rho on each of `folds` disjoint
              parts of S; nothing is fitted, so a fold is a subsample) or "bootstrap" (rho on
              `resamples` draws of S with replacement);
  statistic:  "mean" of those rhos, or "q<p>" their p-quantile (e.g. "q0.25": a lower quantile,
              which prefers a genome whose rho holds on every part of S);
  parsimony:  subtracted from the estimate per unary op of the genome that is not `identity`;
  top_k:      the answer is the rank-average of the top-k distinct genomes' scores (distinct: not
              the same ranking of S) instead of the single best genome (`top_genomes`,
              `rank_average`).

The resamples are drawn once from `seed`, so a genome's fitness is a fixed function of its scores
on S; every option reads S only.
"""

from __future__ import annotations

import dataclasses
from typing import List, Sequence

import numpy as np
from scipy import stats

from lpzero_jax.expression.genome import Genome
from lpzero_jax.search.fitness import FitnessEvaluator

ESTIMATES = ("full", "kfold", "bootstrap")


@dataclasses.dataclass(frozen=True)
class FitnessOptions:
    """See the module docstring. The defaults are the plain fitness."""

    estimate: str = "full"
    folds: int = 5
    resamples: int = 30
    statistic: str = "mean"
    parsimony: float = 0.0
    top_k: int = 1
    seed: int = 0

    def __post_init__(self):
        if self.estimate not in ESTIMATES:
            raise ValueError(f"unknown fitness estimate {self.estimate!r}; expected one of {ESTIMATES}")
        quantile(self.statistic)  # validates
        if self.top_k < 1 or self.folds < 2 or self.resamples < 2 or self.parsimony < 0:
            raise ValueError(f"fitness options out of range: top_k {self.top_k} (>= 1), folds "
                             f"{self.folds} (>= 2), resamples {self.resamples} (>= 2), parsimony "
                             f"{self.parsimony} (>= 0)")

    def label(self) -> str:
        """A short name of the non-default options, e.g. 'bootstrap_q0.25+pars0.01+top5'."""
        parts = [] if self.estimate == "full" else [f"{self.estimate}_{self.statistic}"]
        if self.parsimony:
            parts.append(f"pars{self.parsimony:g}")
        if self.top_k > 1:
            parts.append(f"top{self.top_k}")
        return "+".join(parts) or "plain"


def quantile(statistic: str) -> float:
    """'mean' -> NaN (take the mean); 'q<p>' -> p in [0, 1]; ValueError otherwise."""
    if statistic == "mean":
        return float("nan")
    try:
        p = float(statistic[1:]) if statistic.startswith("q") else float("nan")
    except ValueError:
        p = float("nan")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"fitness statistic {statistic!r}: expected 'mean' or 'q<p>' with p in [0, 1]")
    return p


def genome_size(genome: Genome) -> int:
    """Unary ops of the genome other than `identity` (what parsimony counts)."""
    return sum(op != "identity" for chain in genome.unary for op in chain)


def resample_indices(n: int, options: FitnessOptions) -> List[np.ndarray]:
    """The index sets of S the estimate takes rho over (one set, all of S, for 'full')."""
    rng = np.random.default_rng(options.seed)
    if options.estimate == "full":
        return [np.arange(n)]
    if options.estimate == "kfold":
        return [np.sort(f) for f in np.array_split(rng.permutation(n), min(options.folds, n // 3))]
    return [np.sort(rng.integers(0, n, size=n)) for _ in range(options.resamples)]


def resampled_rhos(scores: np.ndarray, truth: np.ndarray, sets: Sequence[np.ndarray]) -> np.ndarray:
    """Spearman rho of scores vs truth on each index set (NaN where constant)."""
    out = []
    for idx in sets:
        s, t = scores[idx], truth[idx]
        if np.all(s == s[0]) or np.all(t == t[0]):
            out.append(np.nan)
            continue
        rs, rt = stats.rankdata(s), stats.rankdata(t)
        out.append(float(np.corrcoef(rs, rt)[0, 1]))
    return np.asarray(out)


class RobustFitnessEvaluator(FitnessEvaluator):
    """A FitnessEvaluator whose fitness is the `FitnessOptions` estimate (module docstring);
    validity (RPS) is the plain one's. `Fitness.rho` holds the estimate; `full_rho` keeps each
    genome's plain rho over S."""

    def __init__(self, stacked, truth, options: FitnessOptions, **kwargs):
        super().__init__(stacked, truth, **kwargs)
        self.options = options
        self.sets = resample_indices(len(self.truth), options)
        self.full_rho = {}

    def fitness_value(self, genome: Genome, scores: np.ndarray) -> float:
        """The options' estimate (NaN when the plain rho over S is undefined: constant scores)."""
        value, full = self.estimate(genome, np.asarray(scores, np.float64))
        if not np.isfinite(full):
            return float("nan")
        self.full_rho[genome] = full
        return float(value)

    def estimate(self, genome: Genome, scores: np.ndarray):
        """(fitness estimate, plain rho over S) of a genome's scores on S."""
        full = resampled_rhos(scores, self.truth, [np.arange(len(self.truth))])[0]
        if self.options.estimate == "full":
            value = full
        else:
            rhos = resampled_rhos(scores, self.truth, self.sets)
            rhos = np.where(np.isfinite(rhos), rhos, 0.0)
            p = quantile(self.options.statistic)
            value = float(np.mean(rhos)) if np.isnan(p) else float(np.quantile(rhos, p))
        return value - self.options.parsimony * genome_size(genome), full


def top_genomes(evaluator: FitnessEvaluator, k: int) -> List[Genome]:
    """The k best valid genomes the evaluator has scored (by fitness; first scored first among
    equals) whose rankings of S differ (a genome ranking S as a better one does adds nothing)."""
    ranked = sorted(((g, f) for g, f in evaluator.cache.items() if f.valid),
                    key=lambda gf: -gf[1].rho)
    out, seen = [], set()
    for genome, _ in ranked:
        key = tuple(stats.rankdata(evaluator.scores(genome)).tolist())
        if key in seen:
            continue
        seen.add(key)
        out.append(genome)
        if len(out) == k:
            break
    return out


def rank_average(score_rows: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over rows of each row's ranks scaled to [0, 1] (NaN scores rank as the median)."""
    out = []
    for row in score_rows:
        row = np.asarray(row, np.float64)
        r = np.full(row.shape, 0.5)
        finite = np.isfinite(row)
        if finite.sum() > 1:
            r[finite] = (stats.rankdata(row[finite]) - 1) / (finite.sum() - 1)
        out.append(r)
    return np.mean(out, axis=0)
