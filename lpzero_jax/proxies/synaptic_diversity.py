"""Synaptic Diversity (Zhou et al., 2022), as Serianni & Kalita compute it for Transformers.

S = sum over the token mixer's linear weights (its projections and its output projection:
`family.weight_role` "attention" or "attention_output", the reference's `layer.operation`) of
||W||_nuc * ||dL/dW||_nuc. Nuclear norms come from the singular values (float32 eigenvalues of the Gram matrix).
"""

from lpzero_jax.proxies.base import GRADIENTS, ArchContext, register_proxy
from lpzero_jax.proxies.common import nuclear_norm, pick, role_selector


@register_proxy("synaptic_diversity", passes=GRADIENTS)
def synaptic_diversity(ctx: ArchContext) -> float:
    paths = ctx.linear_paths(role_selector(ctx.family, "attention", "attention_output"))
    if not paths:
        return float("nan")  # not applicable: no attention block
    weights, grads = pick(ctx.params, paths), pick(ctx.grads(), paths)
    return float(sum(nuclear_norm(w) * nuclear_norm(g) for w, g in zip(weights, grads)))
