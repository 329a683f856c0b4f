"""Readers of ground-truth benchmarks; each returns a list of `Arch`."""

from lpzero_jax.benchmarks.base import Arch, BenchmarkFormatError

__all__ = ["Arch", "BenchmarkFormatError"]
