"""GraSP (Wang et al., 2020), as LPZero's baseline: S = sum over linear weights of -(H g) * W.

g = dL/dW and H = d^2L/dW^2 for the linear proxy weights W (the other parameters held fixed);
H g is computed exactly by forward-over-reverse differentiation (`jax.jvp` of `jax.grad`, see
`ArchContext.hessian_gradient_product`) instead of the reference's double backward through
`autograd.grad(create_graph=True)`. The sign follows LPZero ("accuracy seems to be negatively
correlated with this metric, so we add -ve sign"). As for SNIP, the reference BERT run kept only
the first layer's entry; we sum all layers.
"""

import numpy as np

from lpzero_jax.proxies.base import HESSIAN, ArchContext, register_proxy
from lpzero_jax.proxies.common import flat_params, host_sum


@register_proxy("grasp", needs_hvp=True, passes=HESSIAN)
def grasp(ctx: ArchContext) -> float:
    return grasp_score(ctx.hessian_gradient_product(), ctx.params)


def grasp_score(hg, params) -> float:
    """sum over the weights of H g (`hg`: {path: H g}) of -(H g) * W."""
    weights = flat_params(params)
    return host_sum(lambda h, w: -np.sum(h * w), list(hg.values()), [weights[p] for p in hg])
