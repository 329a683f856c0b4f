"""Softmax Confidence (Serianni & Kalita, 2023): how peaked the mixers' softmax outputs are.

For every softmax output S of every layer ([B, heads, queries, keys] for attention; LT's softmax
over the head dimension): the maximum over the normalised (last) axis, averaged over batch, heads
and queries; summed over all softmax outputs.

Deviation from the reference: the authors reuse `attention_condfidence`, whose max over axis 1
is the sequence axis for head outputs but the *heads* axis for [B, heads, S, S] probabilities; the
intended quantity (the probability each query gives its most attended key) is the max over the
last axis. A model without softmax outputs gets NaN (not applicable).
"""

import jax.numpy as jnp

from lpzero_jax.inputs import group_by_layer
from lpzero_jax.proxies.base import ACTIVATIONS, ArchContext, register_proxy


@register_proxy("softmax_confidence", passes=ACTIVATIONS)
def softmax_confidence(ctx: ArchContext) -> float:
    probs = [t for layer in group_by_layer(ctx.intermediates(), name="S") for t in layer]
    if not probs:
        return float("nan")
    return float(sum(jnp.mean(jnp.max(p, axis=-1)) for p in probs))
