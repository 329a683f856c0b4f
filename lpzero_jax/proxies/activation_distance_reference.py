"""Activation Distance as the reference code computes it (Serianni & Kalita; LPZero's baseline).

For each hooked tensor (`family.reference_activations`: the FFN activation A of every layer for
FlexiBERT, ELECTRA's `intermediate_act_fn` output; the output of every Conv1D for GPT-2) the
reference takes the FIRST input only, x = (y[0] > 0) as a [S, C] code of its S tokens, and sums the
entries of K = x x^T + (1 - x)(1 - x)^T. With p_c the number of tokens on which unit c is positive,
that sum is sum_c p_c^2 + (S - p_c)^2, computed here without the S x S matrix. S = the sum over
tensors. No determinant: it grows with width and depth, unlike NWOT's log|K_H|
(`activation_distance`, the paper's definition). This variant measures what the published figures
measured. (The reference runs the model in train mode; our forward has no dropout.)
"""

import functools
from typing import Hashable

import jax
import jax.numpy as jnp
import numpy as np

from lpzero_jax.engine.passes import with_output_deltas
from lpzero_jax.inputs import group_by_layer
from lpzero_jax.proxies import whole_model
from lpzero_jax.proxies.base import ACTIVATIONS, ArchContext, register_proxy


def kernel_entry_sum(first_input: jax.Array) -> jax.Array:
    """Sum of K's entries for one input's activations [S, ...] (trailing axes flattened)."""
    x = jnp.reshape(first_input, (first_input.shape[0], -1)) > 0
    positive = jnp.sum(x, axis=0, dtype=jnp.float32)
    return jnp.sum(positive ** 2 + (x.shape[0] - positive) ** 2)


def entry_sum_from_positives(positives, tokens: int) -> float:
    """`kernel_entry_sum` from the per-channel positive counts p_c of S = `tokens` tokens:
    sum_c p_c^2 + (S - p_c)^2 (float64 on the host; exact integers)."""
    p = np.asarray(positives, np.float64)
    return float(np.sum(p ** 2 + (tokens - p) ** 2))


@functools.lru_cache(maxsize=8)
def _compiled_linear_output_sums(family, model_config: Hashable):
    """jit fn(params, batch) -> {linear layer path: kernel_entry_sum of its output for input 0}."""
    model = family.build_model(model_config)

    def sums(params, batch):
        outputs = {}
        with_output_deltas(family, None, outputs,
                                  lambda: whole_model.proxy_loss(model, params, batch))
        return {path: kernel_entry_sum(y[0]) for path, y in outputs.items()}

    return jax.jit(sums)


@register_proxy("activation_distance_reference",
                passes=ACTIVATIONS | {"linear_output_sums"})
def activation_distance_reference(ctx: ArchContext) -> float:
    source = ctx.family.reference_activations
    if source == "ffn_activation":
        acts = [t for layer in group_by_layer(ctx.intermediates(), name="A") for t in layer]
        if not acts:
            return float("nan")  # not applicable: no FFN activations
        return float(sum(kernel_entry_sum(a[0]) for a in acts))
    if source == "linear_outputs":
        positives = ctx.linear_output_positives()
        if positives is not None:  # the engine's backward pass counted them
            tokens = int(ctx.batch["input_ids"].shape[1])
            return float(sum(entry_sum_from_positives(p, tokens) for p in positives.values()))
        fn = _compiled_linear_output_sums(ctx.family, ctx.model_config)
        params, batch = ctx.params, ctx.device_batch()
        per_layer = ctx.cached("linear_output_sums", lambda: fn(params, batch))
        return float(sum(per_layer.values()))
    raise ValueError(f"family {ctx.family.name}: unknown reference_activations {source!r} "
                     "(expected 'ffn_activation' or 'linear_outputs')")
