"""Decoder (non-embedding) parameters: parameters inside the `layer_<i>` blocks (Table 3's
'Decoder.Params', Javaheripi et al. 2022), counted from shapes only."""

import numpy as np

from lpzero_jax.inputs import group_by_layer
from lpzero_jax.proxies.base import ArchContext, register_proxy


@register_proxy("decoder_params")
def decoder_params(ctx: ArchContext) -> float:
    leaves = [x for layer in group_by_layer(ctx.param_shapes) for x in layer]
    return float(sum(np.prod(x.shape, dtype=np.int64) for x in leaves))
