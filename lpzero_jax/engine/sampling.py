"""Compact samples of tensors: which positions of a tensor are kept, and reading them.

A proxy input tensor is stored as `sample_size` values drawn uniformly with replacement from its N
elements (all of them, in order and zero-filled, when N <= sample_size) plus N (see `inputs`).
Positions depend on (sample seed, slot within the layer, N) only, so W and G of one matrix are
sampled at the same positions and equal layers of different architectures draw the same ones.

Two readers: `compact_tensors` draws positions at trace time (the whole-model program); the staged
engine draws them in NumPy (`slot_positions`, from the REAL shape, mapped into a padded layout when
a layer runs bucketed) and reads them at run time (`gather_samples`), so a layer's program does not
depend on its real widths.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np


def sample_indices(seed: int, slot: int, n: int, sample_size: int) -> np.ndarray:
    """The positions (with replacement) drawn from a tensor of n > sample_size elements.

    They depend on (seed, slot within the layer, n) only, not on the layer index, so that equal
    layers of different architectures compile to the same program (see engine/staging.py).
    """
    rng = np.random.default_rng([seed, slot, n])
    return rng.integers(0, n, size=sample_size, dtype=np.int64).astype(np.int32)


def compact_tensors(layers: List[List[jax.Array]], sample_size: int,
                    seed: int) -> Tuple[jax.Array, np.ndarray]:
    """Per-layer lists of tensors -> (values [L, T, K], counts [L, T]) (traceable).

    Sample positions are drawn with NumPy at trace time (shapes are static), so the compiled
    program holds one gather per tensor and no random-number kernels.
    """
    n_layers = max(len(layers), 1)
    t_max = max([len(ts) for ts in layers] + [1])
    counts = np.zeros((n_layers, t_max), np.int64)
    zero = jnp.zeros((sample_size,), jnp.float32)
    rows = []
    for l in range(n_layers):
        tensors = layers[l] if l < len(layers) else []
        for t in range(t_max):
            if t >= len(tensors):
                rows.append(zero)
                continue
            flat = jnp.ravel(tensors[t]).astype(jnp.float32)
            n = flat.shape[0]
            counts[l, t] = n
            if n <= sample_size:
                rows.append(jnp.pad(flat, (0, sample_size - n)))
            else:
                rows.append(flat[sample_indices(seed, t, n, sample_size)])
    values = jnp.stack(rows).reshape(n_layers, t_max, sample_size)
    return values, counts


def compact_numpy(layers: List[List[np.ndarray]], sample_size: int,
                  seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """`compact_tensors` on the host: per-layer lists of NumPy tensors -> (values [L, T, K] f32,
    counts [L, T] i64), the same positions."""
    n_layers, t_max = max(len(layers), 1), max([len(l) for l in layers] + [1])
    values = np.zeros((n_layers, t_max, sample_size), np.float32)
    counts = np.zeros((n_layers, t_max), np.int64)
    for l, tensors in enumerate(layers):
        for t, x in enumerate(tensors):
            flat = np.asarray(x, np.float32).ravel()
            counts[l, t] = flat.size
            if flat.size <= sample_size:
                values[l, t, :flat.size] = flat
            else:
                values[l, t] = flat[sample_indices(seed, t, flat.size, sample_size)]
    return values, counts


def slot_positions(real_shape: Tuple[int, ...], run_shape: Tuple[int, ...], slot: int,
                   sample_size: int, seed: int,
                   strides: Optional[Tuple[int, ...]] = None) -> Tuple[np.ndarray, np.ndarray, int]:
    """(positions [K] int32 in the run tensor, valid [K] bool, real count) of one tensor slot.

    Positions are drawn as the unpadded model draws them (from the real count n); a padded run
    tensor holds the real one at its start along every axis (real index i at run index i, or at
    i * strides[axis] where given), so they are mapped by (real multi-index -> run flat index)."""
    strides = tuple(strides) if strides is not None else (1,) * len(real_shape)
    if len(real_shape) != len(run_shape) or len(strides) != len(real_shape) or any(
            (r - 1) * s >= q and r for r, q, s in zip(real_shape, run_shape, strides)):
        raise ValueError(f"bucketed tensor {run_shape} does not contain the real {real_shape} "
                         f"at strides {strides} (Stages.bucket must only pad axes at their end, "
                         "Stages.bucket_strides spread them)")
    n = int(np.prod(real_shape, dtype=np.int64))
    if n <= sample_size:
        idx, valid = np.arange(n), np.arange(sample_size) < n
        idx = np.pad(idx, (0, sample_size - n))
    else:
        idx = sample_indices(seed, slot, n, sample_size)
        valid = np.ones(sample_size, bool)
    if (tuple(real_shape) != tuple(run_shape) or any(s != 1 for s in strides)) and n:
        multi = np.unravel_index(idx, real_shape)
        idx = np.ravel_multi_index(tuple(i * s for i, s in zip(multi, strides)), run_shape)
    return idx.astype(np.int32), valid, n


def gather_samples(tensors: Sequence[jax.Array], positions: jax.Array, valid: jax.Array) -> jax.Array:
    """One layer's tensors -> rows [T, K] read at runtime positions (traceable; see SampleLayout)."""
    if not tensors:
        return jnp.zeros(positions.shape, jnp.float32)
    rows = [jnp.where(valid[t], jnp.ravel(x).astype(jnp.float32)[positions[t]], 0.0)
            for t, x in enumerate(tensors)]
    return jnp.stack(rows)
