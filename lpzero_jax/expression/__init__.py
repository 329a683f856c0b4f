"""LPZero's proxy search space: ops (Table 7), genomes, the compiler, and the pruning rules (Table 11)."""

from lpzero_jax.expression.compile import compile_genome
from lpzero_jax.expression.genome import Genome, GenomeSyntaxError, parse_genome
from lpzero_jax.expression.published import PUBLISHED

__all__ = ["Genome", "GenomeSyntaxError", "PUBLISHED", "compile_genome", "parse_genome"]
