"""W-PCA and Vanilla PCA (the W-PCA paper, 'Gradient-free proxy for efficient language model
search'): #params times the PCA dimension count of the FFN hidden states.

For every layer, take the hidden states after the FFN's first linear transformation (its first
activation tensor A, [B, S, D]); for each input i of the batch, PCA over its S token vectors:
PCA_dim(x_i, eta) = the number of principal components needed to explain a fraction eta = 0.99 of
the variance. S_f = mean_i PCA_dim(x_i, eta), S = sum over layers of S_f ('vanilla_pca'), and
W-PCA = #params x S ('wpca'). Forward pass only.

Choices the paper leaves open: the hidden state is taken after the activation (the FFN's first
`intermediate` output, where HF BERT models expose it); the PCA runs over each input's tokens
(equation 1 averages PCA_dim over the inputs x_i, so each x_i must be a set of vectors); the
count is the smallest k with cumulative explained-variance ratio >= eta; #params is the total
parameter count (the 'params' proxy).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lpzero_jax.inputs import group_by_layer
from lpzero_jax.models.init import count_params
from lpzero_jax.proxies.base import ACTIVATIONS, ArchContext, register_proxy

ETA = 0.99


def dims_from_variances(var: np.ndarray, eta: float = ETA) -> np.ndarray:
    """[..., K] PCA variances (any order) -> [...] components needed to explain `eta` of them.

    The count is the smallest k whose k largest variances reach the fraction eta of the total;
    0 when there is no variance at all.
    """
    var = np.sort(np.clip(np.asarray(var, np.float64), 0.0, None), axis=-1)[..., ::-1]
    total = var.sum(axis=-1, keepdims=True)
    ratio = np.cumsum(var, axis=-1) / np.where(total > 0, total, 1.0)
    k = np.sum(ratio < eta - 1e-6, axis=-1) + 1
    return np.where(total[..., 0] > 0, k, 0)


@jax.jit
def _centred_gram(samples: jax.Array) -> jax.Array:
    x = samples.astype(jnp.float32)
    x = x - jnp.mean(x, axis=-2, keepdims=True)
    return jnp.einsum("...sd,...td->...st", x, x)


def pca_dims(samples, eta: float = ETA) -> np.ndarray:
    """[..., S, D] -> [...]: components needed to explain `eta` of the variance of S samples of D.

    The non-zero PCA variances are the eigenvalues of the centred S x S Gram matrix (LAPACK,
    float64 on the float32 Gram).
    """
    gram = np.asarray(_centred_gram(jnp.asarray(samples)), np.float64)
    return dims_from_variances(np.linalg.eigvalsh(gram), eta)


def pca_score(ctx: ArchContext) -> float:
    """Sum over layers of the mean PCA dimension count of the first FFN activation (NaN if none).

    One cached stage per architecture, shared by 'vanilla_pca' and 'wpca'.
    """
    layers = group_by_layer(ctx.intermediates(), name="A")
    firsts = [acts[0] for acts in layers if acts]
    if not firsts:
        return float("nan")  # not applicable: no FFN activations

    def build():
        return float(sum(np.mean(pca_dims(a.reshape((a.shape[0], -1, a.shape[-1]))))
                         for a in firsts))
    return ctx.cached("ffn_pca", build)


@register_proxy("vanilla_pca", passes=ACTIVATIONS)
def vanilla_pca(ctx: ArchContext) -> float:
    return pca_score(ctx)


@register_proxy("wpca", passes=ACTIVATIONS)
def wpca(ctx: ArchContext) -> float:
    return float(count_params(ctx.param_shapes)) * pca_score(ctx)
