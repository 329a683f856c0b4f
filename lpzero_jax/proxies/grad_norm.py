"""GradNorm (Abdelfattah et al., 2021): sum over the linear proxy weights of ||dL/dW||_F.

Per-layer Frobenius norms, summed, as LPZero's `get_grad_norm_arr` (there: every nn.Linear /
Conv1D; here: the family's 2-D proxy weights). L is the family's proxy loss. As for SNIP, the
reference BERT run kept only the first layer's entry; we sum all layers.
"""

import jax.numpy as jnp

from lpzero_jax.proxies.base import ArchContext, register_proxy
from lpzero_jax.proxies.common import pick, sum_of


@register_proxy("grad_norm")
def grad_norm(ctx: ArchContext) -> float:
    return sum_of(jnp.linalg.norm(g) for g in pick(ctx.grads(), ctx.linear_paths()))
