"""The six compact proxy inputs, stage by stage (`extract_staged`).

The forward pass runs stage by stage, each stage a jitted function returning its output, its
compacted intermediates and its VJP closure (residuals included); the backward pass feeds the loss
gradient back through those closures. The results equal the whole-model path (`inputs.py`, tested).
"""

from __future__ import annotations

from typing import Any, Dict, Hashable, List, Mapping, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lpzero_jax.engine.dense import lean_dense
from lpzero_jax.engine.layout import pad_params, sample_layout
from lpzero_jax.engine.sampling import compact_numpy, compact_tensors, gather_samples
from lpzero_jax.engine.staging import (
    Stages,
    cached_jit,
    head_batch,
    head_stage,
    layer_apply,
    module_key,
    run_module,
    sown_values,
    split_params,
    weight_kernels,
)
from lpzero_jax.engine.timing import StageTimer, call_host, call_stage


def _layer_forward(key: Hashable, module: nn.Module, is_proxy_weight):
    return cached_jit(("layer_fwd", key, is_proxy_weight),
                      lambda: _build_layer_forward(module, is_proxy_weight))


def _build_layer_forward(module: nn.Module, is_proxy_weight):
    def forward(params, x, positions, valid):
        with nn.intercept_methods(lean_dense):  # weight gradients wide operand first (dense.py)
            y, vjp_fn, inter = jax.vjp(layer_apply(module), params, x, has_aux=True)
        rows = {name: gather_samples(sown_values(inter, name), positions[name], valid[name])
                for name in ("A", "H", "S")}
        rows["W"] = gather_samples(weight_kernels(params, is_proxy_weight), positions["W"], valid["W"])
        return y, rows, vjp_fn

    return jax.jit(forward)


def _layer_backward(is_proxy_weight):
    """jit (layer VJP, d loss / d layer output, W positions, W valid) -> (d loss / d layer input,
    G rows [T, K])."""
    def build():
        def backward(vjp_fn, g_y, positions, valid):
            g_params, g_x = vjp_fn(g_y)
            return g_x, gather_samples(weight_kernels(g_params, is_proxy_weight), positions, valid)

        return jax.jit(backward)

    return cached_jit(("layer_bwd", is_proxy_weight), build)


def _outer_forward(key: Hashable, outer: nn.Module, prelude_args: Tuple[str, ...]):
    return cached_jit(("outer_fwd", key, prelude_args), lambda: _build_outer_forward(outer, prelude_args))


def _build_outer_forward(outer: nn.Module, prelude_args: Tuple[str, ...]):
    def forward(params, batch):
        word = outer.apply(params, batch["input_ids"], method="embed")
        args = [batch[k] for k in prelude_args]
        x0, vjp_fn = jax.vjp(lambda w: outer.apply(params, w, *args, method="prelude"), word)
        return x0, vjp_fn

    return jax.jit(forward)


def _head_grad(key: Hashable, outer: nn.Module):
    return cached_jit(("head", key), lambda: _build_head_grad(outer))


def _build_head_grad(outer: nn.Module):
    def grad(params, hidden, batch):
        return jax.value_and_grad(lambda h: outer.apply(params, h, batch, method="head_loss"))(hidden)

    return jax.jit(grad)


def _prelude_backward(sample_size: int, seed: int):
    """jit (prelude VJP, d loss / d first layer input) -> J's (rows [1, K], counts [1])."""
    def build():
        def backward(vjp_fn, g):
            (g_word,) = vjp_fn(g)
            values, counts = compact_tensors([[g_word]], sample_size, seed)
            return values[0], counts[0]

        return jax.jit(backward)

    return cached_jit(("prelude_bwd", sample_size, seed), build)


def _assemble(per_layer: List[Tuple[jax.Array, np.ndarray]], sample_size: int):
    """Per-layer (rows [T_l, K], counts [T_l]) -> (values [L, T, K], counts [L, T]) as NumPy."""
    t_max = max([r.shape[0] for r, _ in per_layer] + [1])
    values = np.zeros((max(len(per_layer), 1), t_max, sample_size), np.float32)
    counts = np.zeros((max(len(per_layer), 1), t_max), np.int64)
    for l, (rows, c) in enumerate(per_layer):
        values[l, :rows.shape[0]] = np.asarray(rows)
        counts[l, :len(c)] = np.asarray(c)
    return values, counts


def extract_staged(stages: Stages, params: Mapping[str, Any], batch: Mapping[str, jax.Array],
                   is_proxy_weight, sample_size: int, sample_seed: int, backward: bool = True,
                   timer: Optional[StageTimer] = None):
    """The six inputs of one architecture, stage by stage; returns (values {name: [L, T, K]},
    counts {name: [L, T]}, loss) (`inputs.CompactInputs` fields).

    Each layer runs as `stages.bucket(layer)` when the stages bucket their layers (parameters
    zero-padded, samples read at the real entries' positions, so every value equals the unpadded
    model's); its compiled program takes the sample positions as arrays, so it depends on the run
    module only, not on the real widths. backward=False stops after the forward pass (A, H, S, W
    only; the loss is still computed). timer: time each stage and count its FLOPs (bench)."""
    p, outer_params = split_params(stages, params)
    okey = module_key(stages.outer)
    if stages.host_prelude is not None:
        x = call_host("outer", lambda: jnp.asarray(stages.host_prelude(outer_params, batch)),
                  timer=timer)
        prelude_vjp = None
    else:
        x, prelude_vjp = call_stage("outer", _outer_forward(okey, stages.outer, stages.prelude_args),
                               outer_params, batch, timer=timer)
    fwd_out, saved = [], []
    for module, pkey in stages.layers:
        run = run_module(stages, module)
        strides = stages.bucket_strides(module, run) if stages.bucket_strides else None
        layout = sample_layout(module, run, tuple(x.shape), is_proxy_weight, sample_size,
                               sample_seed, strides)
        extra = stages.bucket_params(module, run) if stages.bucket_params else None
        layer_params = pad_params(p[pkey], layout.run_params, extra) if layout.padded else p[pkey]
        fwd = _layer_forward(module_key(run), run, is_proxy_weight)
        x, rows, vjp_fn = call_stage("layer_fwd", fwd, layer_params, x, layout.positions, layout.valid,
                                timer=timer)
        fwd_out.append({name: (rows[name], layout.counts[name]) for name in rows})
        saved.append((vjp_fn, layout))
    head = head_stage(stages)
    head_params = outer_params
    if stages.head_params is not None:
        head_params = call_host("head", stages.head_params, outer_params, timer=timer)
    loss, g = call_stage("head", _head_grad(module_key(head), head), head_params, x,
                    head_batch(stages, batch), timer=timer)
    out: Dict[str, Tuple[np.ndarray, np.ndarray]] = {
        name: _assemble([c[name] for c in fwd_out], sample_size) for name in ("A", "H", "S", "W")}
    if not backward:
        return {k: v[0] for k, v in out.items()}, {k: v[1] for k, v in out.items()}, float(loss)
    layer_backward = _layer_backward(is_proxy_weight)
    grads = []
    for vjp_fn, layout in reversed(saved):
        g, rows_g = call_stage("layer_bwd", layer_backward, vjp_fn, g, layout.positions["W"],
                          layout.valid["W"], timer=timer)
        grads.append((rows_g, layout.counts["W"]))
    grads.reverse()
    if prelude_vjp is None:  # d loss / d word embeddings = d loss / d first layer input
        j = call_host("prelude_bwd", lambda: tuple(a[0] for a in compact_numpy(
            [[np.asarray(g)]], sample_size, sample_seed)), timer=timer)
    else:
        j = call_stage("prelude_bwd", _prelude_backward(sample_size, sample_seed), prelude_vjp, g,
                  timer=timer)
    out["G"] = _assemble(grads, sample_size)
    out["J"] = _assemble([j], sample_size)
    return {k: v[0] for k, v in out.items()}, {k: v[1] for k, v in out.items()}, float(loss)
