"""Synflow (Tanaka et al., 2020), data-free: S = sum over linear weights of |W * dR/dW| at |params|.

Every parameter is replaced by its absolute value, the word embeddings by ones, and R is the
family's `synflow_objective` (FlexiBERT: sum of the last hidden states; LPZero uses the sum of the
logits for GPT-2). This is the original data-free recipe, which LPZero applies to GPT-2; its BERT
code kept real tokens (with |params|) and, like the other pruning proxies, only the first layer.
Computed in float32 (the reference switches to float64): the models here are post-LayerNorm, so
activations stay bounded; a non-finite value would be reported as NaN.
"""

from lpzero_jax.proxies.base import SYNFLOW, ArchContext, data_free_pass_factors, register_proxy
from lpzero_jax.proxies.common import abs_product_sum, finite_or_nan, host_sum, pick


@register_proxy("synflow", factors=data_free_pass_factors, passes=SYNFLOW)
def synflow(ctx: ArchContext) -> float:
    paths = ctx.linear_paths()
    return finite_or_nan(host_sum(abs_product_sum, pick(ctx.params, paths),
                                  pick(ctx.synflow_grads(), paths)))
