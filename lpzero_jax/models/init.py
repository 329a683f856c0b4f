"""Deterministic parameter initialisation by rule, without tracing or compiling the model.

Flax's own `init` of a whole model is traced and compiled per architecture (seconds each on this
CPU). The reference implementations re-initialise every module by type after construction anyway
(HF `post_init` / `_init_weights`), so we do the same: the shapes come from `jax.eval_shape` (no
compilation) and each leaf is filled by a family rule from a NumPy generator seeded with
(seed, path). Values are therefore independent of traversal order and identical across runs.
"""

from __future__ import annotations

import zlib
from typing import Callable, Optional, Tuple

import jax
import numpy as np

from lpzero_jax.transfer import to_device

Path = Tuple[str, ...]
# A rule returns the initial value of one leaf, or None to fall through to the default rule.
InitRule = Callable[[Path, Tuple[int, ...], np.random.Generator], Optional[np.ndarray]]


def path_names(path) -> Path:
    """jax key path -> tuple of plain names."""
    out = []
    for k in path:
        out.append(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))))
    return tuple(out)


def default_rule(std: float) -> InitRule:
    """BERT/GPT-2 style: kernels and embeddings N(0, std), biases 0, norm scales 1."""

    def rule(path: Path, shape, rng: np.random.Generator) -> np.ndarray:
        leaf = path[-1]
        if leaf in ("bias",) or leaf.endswith("_bias"):
            return np.zeros(shape, np.float32)
        if leaf in ("scale", "weight_norm"):
            return np.ones(shape, np.float32)
        return (std * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)

    return rule


def leaf_rng(seed: int, names: Path) -> np.random.Generator:
    """The generator a leaf's initial value is drawn from: seeded with (seed, its path), so values
    do not depend on the order leaves are visited in."""
    return np.random.default_rng([seed, zlib.crc32("/".join(names).encode())])


def init_from_shapes(shapes, seed: int, rule: InitRule, fallback: Optional[InitRule] = None):
    """Fills a pytree of ShapeDtypeStructs: `rule` first, then `fallback`; returns jax arrays."""

    def fill(path, leaf):
        names = path_names(path)
        rng = leaf_rng(seed, names)
        value = rule(names, tuple(leaf.shape), rng)
        if value is None and fallback is not None:
            value = fallback(names, tuple(leaf.shape), rng)
        if value is None:
            raise ValueError(f"no init rule for parameter {'/'.join(names)}")
        if value.shape != tuple(leaf.shape):
            raise ValueError(f"init rule gave {value.shape} for {'/'.join(names)} {leaf.shape}")
        return np.asarray(value, dtype=leaf.dtype)

    return to_device(jax.tree_util.tree_map_with_path(fill, shapes))  # one explicit copy


def count_params(shapes) -> int:
    """Total number of scalars in a pytree of arrays or ShapeDtypeStructs."""
    return int(sum(np.prod(x.shape, dtype=np.int64) for x in jax.tree_util.tree_leaves(shapes)))
