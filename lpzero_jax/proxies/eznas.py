"""EZNAS baseline of LPZero (their `compute_eznas`): sign -> Gram -> slogdet -> sigmoid -> Frobenius.

For every linear weight of the token mixer (`family.weight_role` "attention", the reference's
`layer.operation.operation`) with gradient G (kernel layout [in, out]): s = sign(G),
t = log|det(s^T s)| (the out x out Gram, as `g @ g.t()` on torch's [out, in] weights),
term = ||sigmoid(t)||_F = sigmoid(t); S = sum of terms. A singular Gram gives t = -inf, term 0.
"""

import jax
import jax.numpy as jnp

from lpzero_jax.proxies.base import ArchContext, register_proxy
from lpzero_jax.proxies.common import pick, role_selector, sum_of


def eznas_term(grad: jax.Array) -> jax.Array:
    s = jnp.sign(grad)
    _, logabsdet = jnp.linalg.slogdet(s.T @ s)
    return jnp.linalg.norm(jnp.atleast_1d(jax.nn.sigmoid(logabsdet)))


@register_proxy("eznas")
def eznas(ctx: ArchContext) -> float:
    grads = pick(ctx.grads(), ctx.linear_paths(role_selector(ctx.family, "attention")))
    return sum_of(eznas_term(g) for g in grads)
