"""Model families; importing this package registers the built-in ones in FAMILIES."""

from lpzero_jax.families.base import FAMILIES, Family, get_family
from lpzero_jax.families import decoder, flexibert, gpt2, llama, smollm  # noqa: F401

__all__ = ["FAMILIES", "Family", "get_family"]
