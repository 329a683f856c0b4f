"""Train-mode dropout with fixed masks: the reference models' `nn.Module` default (train mode).

The PyTorch reference code scores freshly built models without calling `eval()`, so dropout is
active in every proxy pass. `TrainDropout` reproduces that as a pure function: each dropout site
draws its mask from `jax.random.fold_in(PRNGKey(seed), site ids)`, so a model config with a given
`TrainDropout` always gives the same values (no rng collection to thread through `apply`). Off by
default (`None` in the model configs): the proxies are then deterministic eval-mode passes.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class TrainDropout:
    """Dropout rates of the reference's train mode and the seed of its masks (hashable).

    hidden: dropout on hidden states (residual branches, embeddings); attention: on attention
    probabilities; seed: fixes every mask (`config.seed` in a run)."""

    hidden: float = 0.0
    attention: float = 0.0
    seed: int = 0

    def __post_init__(self):
        for name in ("hidden", "attention"):
            rate = getattr(self, name)
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"dropout rate {name}={rate} must be in [0, 1)")

    def apply(self, x: jax.Array, rate: float, *site: int) -> jax.Array:
        """x with inverted dropout at `rate` (kept values scaled by 1 / (1 - rate)); the mask is
        a function of (seed, site) only. rate 0 returns x unchanged."""
        if rate == 0.0:
            return x
        key = jax.random.PRNGKey(self.seed)
        for s in site:
            key = jax.random.fold_in(key, s)
        keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
        return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))
