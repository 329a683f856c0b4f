"""The GPT-2 proxy LPZero's released code actually evaluates (`measures/lpzero.py`, "current best").

Its genotype {'input_geno': ['weight', 'grad'], 'op_geno': [[3, 10], [11, 3], 0]} decodes, with the
code's UNARY_KEYS / BINARY_KEYS, to INPUT (W, G), TREE (element_wise_pow | l1_norm | softmax |
element_wise_pow), BINARY element_wise_sum: for every linear weight W (every Conv1D for GPT-2) with
gradient G, term = mean|W^2| + mean(softmax(G, dim=0)^2), and the score is the MEAN of the terms
(the code's `convert_to_float` of the list). This is not the Appendix B formula
(|normalize(G)| + log|mean(W)|, our `lpzero_gpt2`); it is computed here exactly, on full tensors,
with softmax over the reference layout's first axis (Conv1D [in, out]: the inputs; nn.Linear
[out, in]: the outputs), to measure which of the two produced the published GPT-2 figure.
"""

import functools
from typing import Tuple

import jax
import jax.numpy as jnp

from lpzero_jax.proxies.base import ArchContext, register_proxy
from lpzero_jax.proxies.common import pick


def reference_genotype_term(weight: jax.Array, grad: jax.Array, layout: str) -> jax.Array:
    """mean|W^2| + mean(softmax(G over the reference's dim 0)^2) for one Flax [in, out] kernel."""
    axis = 0 if layout == "in_out" else 1
    return jnp.mean(jnp.abs(weight ** 2)) + jnp.mean(jax.nn.softmax(grad, axis=axis) ** 2)


@functools.partial(jax.jit, static_argnums=2)
def _mean_term(weights: Tuple[jax.Array, ...], grads: Tuple[jax.Array, ...],
               layouts: Tuple[str, ...]) -> jax.Array:
    """Mean of the per-weight terms, as one program (eager ops would compile per shape)."""
    return jnp.mean(jnp.stack([reference_genotype_term(w, g, layout)
                               for w, g, layout in zip(weights, grads, layouts)]))


@register_proxy("lpzero_gpt2_reference")
def lpzero_gpt2_reference(ctx: ArchContext) -> float:
    paths = ctx.linear_paths()
    if not paths:
        return float("nan")
    layouts = tuple(ctx.family.reference_weight_layout(p) for p in paths)
    return float(_mean_term(tuple(pick(ctx.params, paths)), tuple(pick(ctx.grads(), paths)),
                            layouts))
