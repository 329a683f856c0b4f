"""#Params of the feed-forward layers (LTS params_summary column 'FFN').

c_fc and c_proj (kernels and biases) of every block: 2 d_model d_inner + d_inner + d_model per layer.

Counted from parameter shapes only (no forward pass) by the family's `param_group_counts`.
Families without such a parameter group (FlexiBERT) give NaN: rank mode logs it and leaves the
architecture out of the correlation instead of stopping the run (e.g. with --config.proxies=all).
"""

from lpzero_jax.proxies.base import ArchContext, register_proxy
from lpzero_jax.proxies.param_groups import param_group_count


@register_proxy("params_ffn")
def params_ffn(ctx: ArchContext) -> float:
    return param_group_count(ctx, "FFN")
