"""Activation Distance, NWOT's log|K_H| (Mellor et al., 2021), on the FFN activations A.

For each input n of the batch, c_n is the binary code (A > 0) of all its FFN activations (every
token, every unit, every layer). K_H[i, j] = number of units on which c_i and c_j agree
= N_units - Hamming(c_i, c_j); S = log|det K_H|. K_H is accumulated per tensor with one matrix
product: K = 2 c c^T - |c_i| - |c_j| + N.

Deviation from the reference: Serianni & Kalita's `activation_distance` takes only the first
input's activations, treats its tokens as the inputs, and returns the sum of K's entries (no
determinant); LPZero's baseline reuses that function. We compute NWOT's score, as the paper's
Table 1 writes it. A singular K_H (two identical codes) gives -inf, reported as NaN.
"""

import numpy as np

from lpzero_jax.inputs import group_by_layer
from lpzero_jax.proxies.base import ACTIVATIONS, ArchContext, register_proxy
from lpzero_jax.proxies.common import finite_or_nan


def agreement_kernel(acts) -> np.ndarray:
    """K_H [N, N] (float64) for a list of [N, ...] activation tensors, with NumPy on the host:
    the codes are 0/1, so every product is an exact integer in float32 (below 2^24 agreements per
    tensor), as in a compiled program, without one program per architecture's tensor shapes."""
    n = acts[0].shape[0]
    kernel = np.zeros((n, n), np.float64)
    for a in acts:
        c = (np.reshape(np.asarray(a), (n, -1)) > 0).astype(np.float32)
        ones = np.sum(c, axis=1, dtype=np.float64)
        kernel += 2.0 * (c @ c.T) - ones[:, None] - ones[None, :] + c.shape[1]
    return kernel


def nwot_score(acts) -> float:
    """log|det K_H| for a list of [N, ...] activation tensors (NaN when K_H is singular)."""
    sign, logdet = np.linalg.slogdet(agreement_kernel(list(acts)))
    return finite_or_nan(logdet) if sign > 0 else float("nan")


@register_proxy("activation_distance", passes=ACTIVATIONS)
def activation_distance(ctx: ArchContext) -> float:
    acts = [t for layer in group_by_layer(ctx.intermediates(), name="A") for t in layer]
    if not acts:
        return float("nan")  # not applicable: no FFN activations
    return nwot_score(acts)
