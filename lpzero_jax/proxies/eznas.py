"""EZNAS baseline of LPZero (their `compute_eznas`): sign -> Gram -> slogdet -> sigmoid -> Frobenius.

For every linear weight the reference reads (`family.eznas_roles`: FlexiBERT's token mixer,
`layer.operation.operation`; every Conv1D of GPT-2) with gradient G: s = sign(G) in the
reference's layout, t = log|det(s s^T)| (`g @ g.t()`: out x out for nn.Linear's [out, in], in x in
for GPT-2's Conv1D [in, out]; see `family.reference_weight_layout`), term = ||sigmoid(t)||_F =
sigmoid(t); S = sum of terms. A singular Gram (rank below its size, e.g. GPT-2's mlp c_proj whose
d_inner x d_inner Gram has rank <= d_model) gives t = -inf, term 0.
"""

import functools
from typing import Tuple

import jax
import jax.numpy as jnp

from lpzero_jax.proxies.base import ArchContext, register_proxy
from lpzero_jax.proxies.common import pick, role_selector


def eznas_term(grad: jax.Array, layout: str = "out_in") -> jax.Array:
    """sigmoid(log|det(s s^T)|) for s = sign of the reference-layout gradient ([out, in] for
    "out_in"; a Flax [in, out] kernel gradient is transposed accordingly)."""
    s = jnp.sign(grad)
    gram = s.T @ s if layout == "out_in" else s @ s.T
    _, logabsdet = jnp.linalg.slogdet(gram)
    return jnp.linalg.norm(jnp.atleast_1d(jax.nn.sigmoid(logabsdet)))


@functools.partial(jax.jit, static_argnums=1)
def _eznas_sum(grads: Tuple[jax.Array, ...], layouts: Tuple[str, ...]) -> jax.Array:
    """Sum of eznas_term over the weights, as one program (eager ops would compile per shape)."""
    return jnp.sum(jnp.stack([eznas_term(g, layout) for g, layout in zip(grads, layouts)]))


@register_proxy("eznas")
def eznas(ctx: ArchContext) -> float:
    roles = ctx.family.eznas_roles
    paths = ctx.linear_paths(None if roles is None else role_selector(ctx.family, *roles))
    if not paths:
        return float("nan")  # not applicable: no such weights
    layouts = tuple(ctx.family.reference_weight_layout(p) for p in paths)
    return float(_eznas_sum(tuple(pick(ctx.grads(), paths)), layouts))
