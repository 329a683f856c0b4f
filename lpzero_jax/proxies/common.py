"""Helpers shared by the hand-crafted proxies: weight selection and small numeric kernels.

Weights are addressed by their path in the flattened parameter tree, e.g.
('params', 'layer_0', 'operation', 'query', 'kernel'). The "linear" weights of a model are its
proxy weights (`family.is_proxy_weight`) that are 2-D matrices, i.e. the nn.Linear / Conv1D
layers the reference implementations iterate over (convolution kernels are left out, as there).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import jax
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
    return host_sum(abs_product_sum, pick(ctx.params, paths), pick(ctx.grads(), paths))


def abs_product_sum(w: np.ndarray, g: np.ndarray) -> np.ndarray:
    """sum |w * g| of one weight and its gradient (SNIP's and Synflow's per-weight term)."""
    return np.sum(np.abs(w * g))


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


def host_sum(term: Callable[..., object], *lists) -> float:
    """Sum over the zipped `lists` of term(*items) (a scalar each), evaluated with NumPy: array
    items (jax or NumPy) are passed as float32 host arrays (zero-copy on CPU), others as they are.
    No XLA program per weight shape: eager jnp ops compile one small program per op and shape, and
    an architecture's weight shapes are mostly its own (GPT-2: ~5 s of a large architecture's
    proxies). NaN for empty lists ("not applicable")."""
    def host(x):
        return np.asarray(x, np.float32) if isinstance(x, (jax.Array, np.ndarray)) else x

    values = [term(*(host(x) for x in group)) for group in zip(*lists)]
    if not values:
        return float("nan")
    return float(np.sum(np.asarray(values, np.float32)))


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limits the host BLAS/LAPACK (NumPy's and SciPy's OpenBLAS; JAX's CPU eigen/LU/slogdet calls
    go through SciPy's) to one thread inside the block; XLA's own thread pool is untouched.

    The proxies' LAPACK calls are small (Gram matrices of a layer's width): with its 2 threads on
    this 2-core machine, busy with XLA or another process, OpenBLAS's eigvalsh of a 512 x 512
    float32 matrix took 3.5 s instead of 0.017 s single-threaded (synaptic_diversity: 20 s on a
    two-layer GPT-2, measured while another job shared the cores)."""
    import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS first, so that it is limited too)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
