"""Head Importance, as Serianni & Kalita compute it: sum over head projections of |dL/dW * W|.

Their `head_importance(model)` sums |W * W.grad| over the Linear layers of the token mixer
(`layer.operation.operation`) with at least 128 outputs, which drops DSC's kernel generator; here
the weights `family.is_head_projection` accepts. (Michel et al.'s importance is defined on head
outputs; the authors' weight-saliency version is what their and LPZero's numbers measure.)
"""

from lpzero_jax.proxies.base import GRADIENTS, ArchContext, register_proxy
from lpzero_jax.proxies.common import weight_saliency


@register_proxy("head_importance", passes=GRADIENTS)
def head_importance(ctx: ArchContext) -> float:
    return weight_saliency(ctx, ctx.family.is_head_projection)
