"""Jacobian Cosine as the reference code computes it (Serianni & Kalita; LPZero's baseline).

J = d L / d(position-embedding table) [P, D] (`family.position_table_path`), summed over the batch
by backpropagation; its D embedding columns (vectors over the P positions) are compared:
S = 1 - mean_{i != j} |cos(J[:, i], J[:, j])|^(1/20). The reference also halves the pair sum,
which rescales the score without changing any ranking. Not applicable (NaN) to a model without a
learned position table. `jacobian_cosine` is the paper's per-input definition; this variant exists
to measure what the published figures measured.
"""

import jax.numpy as jnp

from lpzero_jax.proxies.base import GRADIENTS, ArchContext, register_proxy
from lpzero_jax.proxies.common import flat_params
from lpzero_jax.proxies.jacobian_cosine import jacobian_cosine_score


@register_proxy("jacobian_cosine_reference", passes=GRADIENTS)
def jacobian_cosine_reference(ctx: ArchContext) -> float:
    path = ctx.family.position_table_path
    if path is None or path not in flat_params(ctx.params):
        return float("nan")  # not applicable: no learned position table (e.g. rotary positions)
    table_grad = flat_params(ctx.grads())[path]
    return jacobian_cosine_score(jnp.transpose(table_grad))
