"""Compact samples of a (possibly bucketed) stage: positions drawn from the real tensor and read
from the padded one (`SampleLayout`), and parameters zero-padded to the bucket's run shapes."""

from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Any, Dict, Hashable, List, Mapping, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

from lpzero_jax.engine.placement import host_steps_on_device
from lpzero_jax.engine.sampling import slot_positions
from lpzero_jax.transfer import to_device, to_host
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
    parameter shapes (the real parameters are zero-padded to them); device_positions /
    device_valid: the same arrays on the device, copied once when the layout is made (the layout
    is cached, so architectures sharing a layer reuse them without a copy)."""

    positions: Dict[str, np.ndarray]
    valid: Dict[str, np.ndarray]
    counts: Dict[str, np.ndarray]
    run_params: Any
    padded: bool
    device_positions: Dict[str, jax.Array]
    device_valid: Dict[str, jax.Array]


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
    return SampleLayout(pos, valid, counts, run_p, padded, to_device(pos), to_device(valid))


def pad_params(params, run_shapes, extra: Optional[Mapping[str, Any]] = None):
    """A layer's real parameters zero-padded at the end of each axis to the run module's shapes; a
    run parameter the real layer lacks is taken from `extra` (`Stages.bucket_params`). The tensors
    that need padding are padded with NumPy on host copies (one copy for the layer: no per-shape
    compilation) on the CPU, by device programs (one per shape pair) on an accelerator
    (`placement.host_steps_on_device`); the others are returned as they are."""
    real, shapes = flatten_dict(params), flatten_dict(run_shapes)
    more = flatten_dict(extra) if extra else {}
    out = {}
    for k, shape in shapes.items():
        if k in real:
            continue
        if k not in more:
            raise ValueError(f"bucketed layer parameter {'/'.join(k)} is neither in the real "
                             "layer nor in Stages.bucket_params")
        if tuple(np.shape(more[k])) != tuple(shape.shape):
            raise ValueError(f"Stages.bucket_params gives {'/'.join(k)} the shape "
                             f"{np.shape(more[k])}, the run layer needs {tuple(shape.shape)}")
        out[k] = np.asarray(more[k], shape.dtype)
    widths = {k: tuple((0, q - r) for r, q in zip(real[k].shape, shape.shape))
              for k, shape in shapes.items() if k in real and tuple(real[k].shape) != tuple(shape.shape)}
    if host_steps_on_device():
        out.update({k: _pad_on_device(real[k], w) for k, w in widths.items()})
    else:
        host = to_host({k: real[k] for k in widths})
        out.update({k: np.pad(host[k], w) for k, w in widths.items()})
    out.update({k: real[k] for k in shapes if k not in out})
    return unflatten_dict(out)


@functools.partial(jax.jit, static_argnums=1)
def _pad_on_device(x: jax.Array, widths) -> jax.Array:
    return jnp.pad(x, widths)
