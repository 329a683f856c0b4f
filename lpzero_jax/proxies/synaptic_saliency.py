"""Synaptic Saliency, as Serianni & Kalita compute it: sum over FFN weights of |dL/dW * W|.

Their `synaptic_saliency(model)` sums |W * W.grad| over the Linear layers of every layer's
`intermediate` and `output` blocks, i.e. the feed-forward network; here the weights whose
`family.weight_role` is "ffn". (The LPZero/Abdelfattah formula is the same product over all
parameters; this file follows the Transformer-specific original the paper's Table 1 cites.)
"""

from lpzero_jax.proxies.base import GRADIENTS, ArchContext, register_proxy
from lpzero_jax.proxies.common import role_selector, weight_saliency


@register_proxy("synaptic_saliency", passes=GRADIENTS)
def synaptic_saliency(ctx: ArchContext) -> float:
    return weight_saliency(ctx, role_selector(ctx.family, "ffn"))
