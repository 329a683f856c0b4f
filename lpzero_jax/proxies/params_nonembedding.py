"""#Params of the decoder blocks (LTS 'nonembedding', the paper's Decoder.Params baseline).

Attention + FFN + LayerNorm parameters of every block, plus the final LayerNorm; embeddings and the
adaptive softmax are excluded (LTS's params_summary column `nonembedding`).

Counted from parameter shapes only (no forward pass) by the family's `param_group_counts`.
Families without such a parameter group (FlexiBERT) give NaN: rank mode logs it and leaves the
architecture out of the correlation instead of stopping the run (e.g. with --config.proxies=all).
"""

from lpzero_jax.proxies.base import ArchContext, register_proxy
from lpzero_jax.proxies.param_groups import param_group_count


@register_proxy("params_nonembedding")
def params_nonembedding(ctx: ArchContext) -> float:
    return param_group_count(ctx, "nonembedding")
