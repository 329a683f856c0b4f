"""LogSynflow (Cavagnero et al., 2023): S = sum over linear weights of |W| * |log |dR/dW||.

Same data-free pass as Synflow (|params|, all-ones word embeddings, R the family's synflow
objective); the formula is LPZero's `logsynflow` (weights already made absolute there). Weights
whose gradient is exactly zero carry no signal and contribute 0 (the reference would produce
|log 0| = inf and a useless score).
"""

import jax.numpy as jnp

from lpzero_jax.proxies.base import ArchContext, data_free_pass_factors, register_proxy
from lpzero_jax.proxies.common import finite_or_nan, pick, sum_of


def _log_saliency(w, g):
    mag = jnp.abs(g)
    safe = jnp.where(mag > 0, mag, 1.0)
    return jnp.sum(jnp.where(mag > 0, jnp.abs(w) * jnp.abs(jnp.log(safe)), 0.0))


@register_proxy("logsynflow", factors=data_free_pass_factors)
def logsynflow(ctx: ArchContext) -> float:
    paths = ctx.linear_paths()
    weights, grads = pick(ctx.params, paths), pick(ctx.synflow_grads(), paths)
    return finite_or_nan(sum_of(_log_saliency(w, g) for w, g in zip(weights, grads)))
