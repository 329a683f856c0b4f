"""Fisher (Turner et al., 2020), as LPZero's baseline computes it per linear layer.

For every linear layer (the family's 2-D proxy weights) with output activations a [rows, C] and
their gradients g = dL/da: Delta_k = 0.5 * mean_rows (a_k * g_k)^2 per output channel k;
S = sum over layers and channels of Delta_k. L is the family's proxy loss.

Deviations from the reference run: LPZero broadcasts each channel's value over the channel's
fan-in before summing (a compatibility hack for its pruning code, which weights every layer by its
input width) and its BERT run kept only the first layer; we sum the per-channel values of every
layer, which is Turner et al.'s saliency.
"""

import numpy as np

from lpzero_jax.proxies.base import GRADIENTS, ArchContext, register_proxy
from lpzero_jax.proxies.common import host_sum


@register_proxy("fisher", passes=GRADIENTS)
def fisher(ctx: ArchContext) -> float:
    return host_sum(np.sum, list(ctx.linear_fisher().values()))
