"""#Params: the total number of parameters (paper Table 2 'No.Params.'), counted from shapes only."""

from lpzero_jax.proxies.base import NO_PASS, SHAPES_ONLY, ArchContext, register_proxy
from lpzero_jax.models.init import count_params


@register_proxy("params", factors=SHAPES_ONLY, passes=NO_PASS)
def params(ctx: ArchContext) -> float:
    return float(count_params(ctx.param_shapes))
