"""lpzero_jax: LPZero zero-cost proxy search for language models, in JAX/Flax."""

__version__ = "0.1.0"
