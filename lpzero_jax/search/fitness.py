"""Fitness of candidate proxies: Spearman rho of their scores on the sampled architectures.

Holds the stacked compact inputs of the S sampled architectures (computed once, reused by every
candidate), caches fitness per genome, applies the Rule-based Pruning Strategy (static rules before
evaluation, runtime checks after), and keeps the time split between compilation and evaluation.
Invalid candidates are marked explicitly (`valid=False` with a reason), never with a value that is
also a legal correlation.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Dict, Optional, Sequence

import numpy as np

from lpzero_jax import evaluation
from lpzero_jax.expression import rps
from lpzero_jax.expression.compile import genome_function
from lpzero_jax.expression.genome import Genome, parse_genome
from lpzero_jax.expression.program import GenomeProgram
from lpzero_jax.inputs import StackedInputs
from lpzero_jax.transfer import to_device, to_host


@dataclasses.dataclass(frozen=True)
class Fitness:
    """valid: usable; rho: Spearman rho (NaN when invalid); reason: why invalid (rule id)."""

    valid: bool
    rho: float
    reason: Optional[str] = None

    def key(self) -> float:
        """Sort key: invalid candidates rank below every valid one."""
        return self.rho if self.valid else -np.inf


class FitnessEvaluator:
    """Evaluates genomes on fixed inputs; counts evaluations, prunes and seconds."""

    BACKENDS = ("program", "compiled")

    def __init__(self, stacked: StackedInputs, truth: Sequence[float], use_rps: bool = True,
                 aggregate: str = "sum", backend: str = "program", n_unary: int = 2,
                 mesh=None):
        """backend: 'program' (one compiled evaluator, genomes as data; see expression/program.py)
        or 'compiled' (one XLA program per genome; see expression/compile.py). mesh: shard the
        program's evaluation over devices (parallel.arch_mesh), results unchanged."""
        if backend not in self.BACKENDS:
            raise ValueError(f"unknown evaluator backend {backend!r}; expected one of {self.BACKENDS}")
        self.stacked = stacked
        self.truth = np.asarray(truth, dtype=np.float64)
        self.use_rps = use_rps
        self.aggregate = aggregate
        self.backend = backend
        self.cache: Dict[Genome, Fitness] = {}
        self.pruned = rps.PruneCounter()
        self.evaluated = 0  # candidates whose scores were computed (cache misses past static RPS)
        self.compile_seconds = 0.0
        self.eval_seconds = 0.0
        self._compiled: Dict[tuple, object] = {}
        self.program = None
        if backend == "program":
            t = time.perf_counter()
            self.program = GenomeProgram(stacked, n_unary, aggregate, mesh=mesh)
            self.program.compile()
            self.compile_seconds += time.perf_counter() - t

    def static_check(self, genome: Genome) -> Optional[str]:
        """The static RPS rule the genome breaks (None if none, or if RPS is disabled)."""
        return rps.static_violation(genome) if self.use_rps else None

    def scores(self, genome: Genome, stacked: Optional[StackedInputs] = None) -> np.ndarray:
        """Proxy scores of every architecture in `stacked` (default: the sampled ones)."""
        if stacked is None and self.program is not None and genome.n_unary <= self.program.n_unary:
            t = time.perf_counter()
            out = self.program.scores([genome])[0]
            self.eval_seconds += time.perf_counter() - t
            return out
        stacked = self.stacked if stacked is None else stacked
        x1, x2 = genome.inputs
        args = (stacked.values[x1], stacked.counts[x1], stacked.values[x2], stacked.counts[x2],
                stacked.layer_mask)
        key = (genome, tuple(a.shape for a in args))
        compiled = self._compiled.get(key)
        if compiled is None:
            import jax

            t = time.perf_counter()
            compiled = jax.jit(genome_function(genome, self.aggregate)).lower(*args).compile()
            self.compile_seconds += time.perf_counter() - t
            self._compiled[key] = compiled
        t = time.perf_counter()
        out = to_host(compiled(*to_device(args)))
        self.eval_seconds += time.perf_counter() - t
        if len(self._compiled) > 256:  # bounded: executables are only reused for re-scoring
            self._compiled.pop(next(iter(self._compiled)))
        return out

    def fitness_value(self, genome: Genome, scores: np.ndarray) -> float:
        """The fitness of a genome's valid scores on the sample: Spearman rho (NaN if constant)."""
        return evaluation.spearman_rho(scores, self.truth)

    def __call__(self, genome: Genome) -> Fitness:
        """Fitness of a genome (cached); static RPS violations are counted and not evaluated."""
        if genome in self.cache:
            return self.cache[genome]
        reason = self.static_check(genome)
        if reason is None:
            self.evaluated += 1
            scores = self.scores(genome)
            reason = rps.runtime_violation(scores)
            rho = self.fitness_value(genome, scores) if reason is None else float("nan")
            if reason is None and not np.isfinite(rho):
                reason = "constant_scores"
        if reason is not None:
            self.pruned.add(reason)
            fit = Fitness(False, float("nan"), reason)
        else:
            fit = Fitness(True, float(rho))
        self.cache[genome] = fit
        return fit

    def state(self) -> dict:
        """JSON-able counters and cache (for checkpoints; genomes as their text)."""
        return {"cache": {str(g): [f.valid, f.rho, f.reason] for g, f in self.cache.items()},
                "pruned": dict(self.pruned.counts), "evaluated": self.evaluated,
                "compile_seconds": self.compile_seconds, "eval_seconds": self.eval_seconds}

    def restore(self, state: dict) -> None:
        """Counters and cache of a `state()` payload."""
        self.cache = {parse_genome(k): Fitness(bool(v[0]), float(v[1]) if v[1] is not None
                                               else float("nan"), v[2])
                      for k, v in state["cache"].items()}
        self.pruned.counts.update(state["pruned"])
        self.evaluated = int(state["evaluated"])
        self.compile_seconds = float(state["compile_seconds"])
        self.eval_seconds = float(state["eval_seconds"])
