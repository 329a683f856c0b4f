"""Jacobian Score Cosine (Celotti et al., 2020), per input as the paper defines it.

J_n = d L / d(word embeddings of input n) flattened, for the N inputs of the batch (the J input;
examples do not interact, so row n depends on input n only). With c_ij the cosine similarity of
J_i and J_j: S = 1 - mean_{i != j} |c_ij|^(1/20).

Deviation from the reference: Serianni & Kalita (and LPZero for BERT) take the gradient of the
position-embedding table, summed over the batch, and compare its 128 embedding columns (each a
vector over the 512 positions) instead of per-input Jacobians; they also halve the pair sum, which
only rescales the score. We compute the intended per-input version.
"""

import jax.numpy as jnp

from lpzero_jax.proxies.base import GRADIENTS, ArchContext, register_proxy


def jacobian_cosine_score(jacobians: jnp.ndarray) -> float:
    """S for a [N, ...] stack of per-input Jacobians (NaN for fewer than 2 inputs)."""
    n = jacobians.shape[0]
    if n < 2:
        return float("nan")
    flat = jnp.reshape(jacobians, (n, -1)).astype(jnp.float32)
    norms = jnp.linalg.norm(flat, axis=1, keepdims=True)
    unit = flat / jnp.where(norms > 0, norms, 1.0)
    cos = jnp.abs(unit @ unit.T)
    off_diagonal = jnp.sum(jnp.power(cos, 1.0 / 20)) - jnp.sum(jnp.power(jnp.diag(cos), 1.0 / 20))
    return float(1.0 - off_diagonal / (n * n - n))


@register_proxy("jacobian_cosine", passes=GRADIENTS)
def jacobian_cosine(ctx: ArchContext) -> float:
    return jacobian_cosine_score(ctx.backward()[3])
