"""Attention Confidence (Serianni & Kalita, 2023), as the authors compute it.

For every head output H of every layer (the query/key/value projections, WMA's weighted query,
LT's input projection; [B, S, width]): the maximum over the sequence axis, averaged over batch and
width; summed over all head outputs. This is the authors' `attention_condfidence(head_outputs)`
(their 'Head Confidence' column: rho 0.716 / tau 0.478 on the 500 FlexiBERT archs).
"""

import jax.numpy as jnp

from lpzero_jax.inputs import group_by_layer
from lpzero_jax.proxies.base import ACTIVATIONS, ArchContext, register_proxy


@register_proxy("attention_confidence", passes=ACTIVATIONS)
def attention_confidence(ctx: ArchContext) -> float:
    heads = [t for layer in group_by_layer(ctx.intermediates(), name="H") for t in layer]
    if not heads:
        return float("nan")
    return float(sum(jnp.mean(jnp.max(h, axis=1)) for h in heads))
