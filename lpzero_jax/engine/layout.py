"""Compact samples of a (possibly bucketed) stage: positions drawn from the real tensor and read
from the padded one (`SampleLayout`), and parameters zero-padded to the bucket's run shapes."""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Dict, Hashable, List, Mapping, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lpzero_jax.engine.sampling import slot_positions
from lpzero_jax.engine.staging import (
    bounded,
    layer_apply,
    module_key,
    sown_values,
    weight_kernels,
)


@dataclasses.dataclass(frozen=True)
class SampleLayout:
    """Where one layer's compact samples lie in the tensors of the module it runs as.

    positions[name] [T, K] int32: flat positions in the run module's tensors (slot t's draw from
    its REAL element count, `sampling.slot_positions`, mapped into the padded layout); valid[name]
    [T, K] bool: False past the end of a tensor with <= K elements (stored in order, zero-filled);
    counts[name] [T] int64: real element counts (0: empty slot); run_params: the run module's
    parameter shapes (the real parameters are zero-padded to them)."""

    positions: Dict[str, np.ndarray]
    valid: Dict[str, np.ndarray]
    counts: Dict[str, np.ndarray]
    run_params: Any
    padded: bool


def stage_shapes(module: nn.Module, x_shape: Tuple[int, ...]):
    """(param shapes, intermediate shapes) of a layer module on an input of x_shape."""
    x = jax.ShapeDtypeStruct(x_shape, jnp.float32)
    params = jax.eval_shape(lambda x: module.init(jax.random.PRNGKey(0), x), x)["params"]
    inter = jax.eval_shape(lambda p, x: layer_apply(module)(p, x)[1], params, x)
    return params, inter


def _layout_for(real: List, run: List, sample_size: int, seed: int,
                strides: Optional[Tuple[int, ...]] = None):
    """One input name's (positions [T, K], valid [T, K], counts [T]) over its tensor slots."""
    if len(real) != len(run):
        raise ValueError(f"bucketed layer has {len(run)} tensors where the real one has {len(real)}")
    t = max(len(real), 1)
    pos = np.zeros((t, sample_size), np.int32)
    valid = np.zeros((t, sample_size), bool)
    counts = np.zeros(t, np.int64)
    for i, (r, q) in enumerate(zip(real, run)):
        pos[i], valid[i], counts[i] = slot_positions(tuple(r.shape), tuple(q.shape), i,
                                                     sample_size, seed, strides)
    return pos, valid, counts


_LAYOUTS: "collections.OrderedDict[Hashable, SampleLayout]" = collections.OrderedDict()


def sample_layout(module: nn.Module, run_module: nn.Module, x_shape: Tuple[int, ...],
                  is_proxy_weight, sample_size: int, seed: int,
                  strides: Optional[Mapping[str, Tuple[int, ...]]] = None) -> SampleLayout:
    """The SampleLayout of a layer `module` run as `run_module` (bounded cache); strides: see
    `Stages.bucket_strides`."""
    strides = dict(strides or {})
    key = (module_key(module), module_key(run_module), tuple(x_shape), is_proxy_weight,
           sample_size, seed, tuple(sorted(strides.items())))
    return bounded(_LAYOUTS, key, lambda: _sample_layout(module, run_module, x_shape,
                                                          is_proxy_weight, sample_size, seed,
                                                          strides))


def _sample_layout(module, run_module, x_shape, is_proxy_weight, sample_size, seed, strides):
    real_p, real_i = stage_shapes(module, x_shape)
    run_p, run_i = (real_p, real_i) if run_module is module else stage_shapes(run_module, x_shape)
    tensors = {name: (sown_values(real_i, name), sown_values(run_i, name)) for name in ("A", "H", "S")}
    tensors["W"] = (weight_kernels(real_p, is_proxy_weight), weight_kernels(run_p, is_proxy_weight))
    pos, valid, counts = {}, {}, {}
    for name, (real, run) in tensors.items():
        pos[name], valid[name], counts[name] = _layout_for(real, run, sample_size, seed,
                                                           strides.get(name))
    padded = jax.tree_util.tree_structure(real_p) != jax.tree_util.tree_structure(run_p) or any(
        a.shape != b.shape for a, b in zip(jax.tree_util.tree_leaves(real_p),
                                           jax.tree_util.tree_leaves(run_p)))
    return SampleLayout(pos, valid, counts, run_p, padded)


def pad_params(params, run_shapes, extra: Optional[Mapping[str, Any]] = None):
    """A layer's real parameters zero-padded at the end of each axis to the run module's shapes
    (NumPy on the host: no per-shape compilation); a run parameter the real layer lacks is taken
    from `extra` (`Stages.bucket_params`)."""
    def pad(x, shape):
        if tuple(x.shape) == tuple(shape.shape):
            return x
        x = np.asarray(x)
        return np.pad(x, [(0, q - r) for r, q in zip(x.shape, shape.shape)])

    def walk(real, shape, more, where):
        if isinstance(shape, Mapping):
            return {k: walk(None if real is None else real.get(k), shape[k],
                            None if more is None else more.get(k), where + (k,)) for k in shape}
        if real is not None:
            return pad(real, shape)
        if more is None:
            raise ValueError(f"bucketed layer parameter {'/'.join(where)} is neither in the real "
                             "layer nor in Stages.bucket_params")
        if tuple(np.shape(more)) != tuple(shape.shape):
            raise ValueError(f"Stages.bucket_params gives {'/'.join(where)} the shape "
                             f"{np.shape(more)}, the run layer needs {tuple(shape.shape)}")
        return np.asarray(more, shape.dtype)

    return walk(params, run_shapes, extra, ())
