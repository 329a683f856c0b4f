"""Helpers shared by the hand-crafted proxies: weight selection and small numeric kernels.

Weights are addressed by their path in the flattened parameter tree, e.g.
('params', 'layer_0', 'operation', 'query', 'kernel'). The "linear" weights of a model are its
proxy weights (`family.is_proxy_weight`) that are 2-D matrices, i.e. the nn.Linear / Conv1D
layers the reference implementations iterate over (convolution kernels are left out, as there).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

Path = Tuple[str, ...]


def flat_params(tree) -> Dict[Path, jax.Array]:
    """{path: leaf} of a parameter (or gradient) tree, paths as tuples of names."""
    return traverse_util.flatten_dict(tree)


def linear_weight_paths(family, shapes, select: Optional[Callable[[Path], bool]] = None) -> List[Path]:
    """Paths of the 2-D proxy weights (optionally filtered by `select(path)`), in tree order."""
    out = []
    for path, leaf in flat_params(shapes).items():
        if len(leaf.shape) != 2 or not family.is_proxy_weight(path):
            continue
        if select is None or select(path):
            out.append(path)
    return out


def pick(tree, paths: List[Path]) -> List[jax.Array]:
    """The leaves of `tree` at `paths`, in that order."""
    flat = flat_params(tree)
    return [flat[p] for p in paths]


def weight_saliency(ctx, select: Optional[Callable[[Path], bool]] = None) -> float:
    """Sum over the linear proxy weights (those `select` keeps) of |dL/dW * W|: SNIP's measure, and
    Head Importance's and Synaptic Saliency's on their sub-blocks."""
    paths = ctx.linear_paths(select)
    weights, grads = pick(ctx.params, paths), pick(ctx.grads(), paths)
    return sum_of(jnp.sum(jnp.abs(w * g)) for w, g in zip(weights, grads))


def role_selector(family, *roles: str) -> Callable[[Path], bool]:
    """select(path) that keeps weights whose `family.weight_role` is one of `roles`."""
    return lambda path: family.weight_role(path) in roles


def singular_values(matrix, dtype=np.float32) -> np.ndarray:
    """Singular values of a 2-D matrix (descending), via the eigenvalues of its smaller Gram matrix.

    float32 by default: relative error ~1e-6 of the largest value, ample for norms used to rank.
    """
    m = np.asarray(matrix, dtype=dtype)
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    return np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None))[::-1]


def nuclear_norm(matrix) -> float:
    """||M||_* = sum of singular values."""
    return float(np.sum(singular_values(matrix)))


def finite_or_nan(value) -> float:
    """float(value), with +-inf mapped to NaN (a proxy value that cannot be ranked)."""
    v = float(value)
    return v if np.isfinite(v) else float("nan")


def sum_of(values) -> float:
    """Sum of scalars (jax or numpy) as a Python float; NaN for an empty list ("not applicable")."""
    values = list(values)
    if not values:
        return float("nan")
    return float(jnp.sum(jnp.stack([jnp.asarray(v, jnp.float32) for v in values])))
