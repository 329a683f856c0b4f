"""GradNorm (Abdelfattah et al., 2021): sum over the linear proxy weights of ||dL/dW||_F.

Per-layer Frobenius norms, summed, as LPZero's `get_grad_norm_arr` (there: every nn.Linear /
Conv1D; here: the family's 2-D proxy weights). L is the family's proxy loss. As for SNIP, the
reference BERT run kept only the first layer's entry; we sum all layers.
"""

import numpy as np

from lpzero_jax.proxies.base import GRADIENTS, ArchContext, register_proxy
from lpzero_jax.proxies.common import host_sum, pick


@register_proxy("grad_norm", passes=GRADIENTS)
def grad_norm(ctx: ArchContext) -> float:
    return host_sum(np.linalg.norm, pick(ctx.grads(), ctx.linear_paths()))
