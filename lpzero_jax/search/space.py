"""What the evolutionary loop (`search/evolution.py`) needs of a search space, and the proxy-genome space.

A search space gives random members, their mutation and crossover, a validity test with a repair for
draws that keep failing it, and a text form for files. Members themselves are hashable values (a
`Genome`, a subnet's choice tuple): populations and caches hold them, only files hold their text.
"""

from __future__ import annotations

from typing import Hashable, Optional, Protocol, TypeVar

import numpy as np

from lpzero_jax.expression.genome import Genome, crossover, mutate, parse_genome, random_genome

M = TypeVar("M", bound=Hashable)


class SearchSpace(Protocol[M]):
    """The operators the evolutionary loop draws and breeds members with (all randomness from `rng`)."""

    def random_member(self, rng: np.random.Generator) -> M:
        """A member drawn from the space's own distribution (not necessarily valid)."""

    def mutate(self, member: M, rng: np.random.Generator) -> M:
        """A variation of `member`."""

    def crossover(self, a: M, b: M, rng: np.random.Generator) -> M:
        """A child mixing the genes of `a` and `b`."""

    def is_valid(self, member: M) -> bool:
        """Whether the member may enter a population."""

    def repair(self, member: M, rng: np.random.Generator) -> Optional[M]:
        """A valid member close to an invalid draw, or None when the space cannot repair one."""

    def key(self, member: M) -> str:
        """The member's text form (what files hold)."""

    def parse(self, text: str) -> M:
        """The member of a `key` text."""


class GenomeSpace:
    """Proxy genomes of `n_unary` unary ops per branch (LPZero's Figure 1); valid: the evaluator's
    Rule-based Pruning Strategy accepts it (every genome when RPS is off). Validity is judged by
    evaluating, so the evaluator's cache then holds the genome's fitness."""

    def __init__(self, evaluator, n_unary: int):
        self.evaluator = evaluator
        self.n_unary = n_unary

    def random_member(self, rng: np.random.Generator) -> Genome:
        return random_genome(rng, self.n_unary)

    def mutate(self, member: Genome, rng: np.random.Generator) -> Genome:
        return mutate(member, rng)

    def crossover(self, a: Genome, b: Genome, rng: np.random.Generator) -> Genome:
        return crossover(a, b, rng)

    def is_valid(self, member: Genome) -> bool:
        return self.evaluator(member).valid or not self.evaluator.use_rps

    def repair(self, member: Genome, rng: np.random.Generator) -> Optional[Genome]:
        return None  # a genome RPS rejects is redrawn, never patched

    def key(self, member: Genome) -> str:
        return str(member)

    def parse(self, text: str) -> Genome:
        return parse_genome(text)
