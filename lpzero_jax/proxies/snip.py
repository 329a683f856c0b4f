"""SNIP (Lee et al., 2019), as LPZero's baseline computes it for language models.

S = sum over the linear proxy weights of |dL/dW * W| (the gradient w.r.t. a multiplicative
all-ones mask is dL/dW * W). L is the family's proxy loss (FlexiBERT: sum of the last hidden
states, the reference's `output.backward(ones_like(output))`; causal LMs: the LM loss).

Deviation from the reference run: LPZero's `eval_searched_bert.py` kept only the first entry of
the per-layer list (`zc = zc[0]`, the embedding projection) before summing; we sum every layer, as
the measure is defined.
"""

from lpzero_jax.proxies.base import GRADIENTS, ArchContext, register_proxy
from lpzero_jax.proxies.common import weight_saliency


@register_proxy("snip", passes=GRADIENTS)
def snip(ctx: ArchContext) -> float:
    return weight_saliency(ctx)
