"""EZNAS baseline of LPZero (their `compute_eznas`): sign -> Gram -> slogdet -> sigmoid -> Frobenius.

For every linear weight the reference reads (`family.eznas_roles`: FlexiBERT's token mixer,
`layer.operation.operation`; every Conv1D of GPT-2) with gradient G: s = sign(G) in the
reference's layout, t = log|det(s s^T)| (`g @ g.t()`: out x out for nn.Linear's [out, in], in x in
for GPT-2's Conv1D [in, out]; see `family.reference_weight_layout`), term = ||sigmoid(t)||_F =
sigmoid(t); S = sum of terms. A singular Gram (rank below its size, e.g. GPT-2's mlp c_proj whose
d_inner x d_inner Gram has rank <= d_model) gives t = -inf, term 0.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from scipy.special import expit

from lpzero_jax.proxies.base import GRADIENTS, ArchContext, register_proxy
from lpzero_jax.proxies.common import host_sum, pick, role_selector


def eznas_term(grad: jax.Array, layout: str = "out_in") -> jax.Array:
    """sigmoid(log|det(s s^T)|) for s = sign of the reference-layout gradient ([out, in] for
    "out_in"; a Flax [in, out] kernel gradient is transposed accordingly). The definition; the
    proxy evaluates `host_eznas_term`, its equal on the host."""
    s = jnp.sign(grad)
    gram = s.T @ s if layout == "out_in" else s @ s.T
    _, logabsdet = jnp.linalg.slogdet(gram)
    return jnp.linalg.norm(jnp.atleast_1d(jax.nn.sigmoid(logabsdet)))


def host_eznas_term(grad: np.ndarray, layout: str = "out_in") -> float:
    """`eznas_term` on the host: the same float32 LAPACK LU (sgetrf, which JAX's CPU slogdet
    calls) of the same Gram (integer-valued, so exact in float32), without an XLA program per weight
    shape. A Gram at least twice the size of its rank bound (the other side of s) is singular with
    half of its LU pivots rounding noise: log|det| is then hugely negative and the term 0 in
    float32, which is returned without the O(size^3) LU (GPT-2's mlp c_proj, d_inner x d_inner
    of rank <= d_model: 16 s of a 16-layer architecture)."""
    s = np.sign(np.asarray(grad, np.float32))
    if layout == "out_in":
        s = s.T  # the reference's [out, in] matrix; its Gram is s s^T in both layouts
    if s.shape[0] >= 2 * s.shape[1]:
        return 0.0
    with warnings.catch_warnings(), np.errstate(divide="ignore"):  # singular: log 0, term 0
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        lu, _ = scipy.linalg.lu_factor(s @ s.T, overwrite_a=True, check_finite=False)
        logabsdet = np.sum(np.log(np.abs(np.diagonal(lu))), dtype=np.float32)
    return float(expit(logabsdet))


@register_proxy("eznas", passes=GRADIENTS)
def eznas(ctx: ArchContext) -> float:
    roles = ctx.family.eznas_roles
    paths = ctx.linear_paths(None if roles is None else role_selector(ctx.family, *roles))
    if not paths:
        return float("nan")  # not applicable: no such weights
    layouts = [ctx.family.reference_weight_layout(p) for p in paths]
    return host_sum(host_eznas_term, pick(ctx.grads(), paths), layouts)
