"""Full-tensor sweeps over the same stages (for the hand-crafted proxies and `passes`): nothing
compacted. A bucketed layer runs as its run module (the compact extraction's shared program) on
zero-padded parameters, and what it returns is cut back to the real shapes on the host (`Padding`).
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Dict, Hashable, Mapping, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lpzero_jax.engine.layout import pad_params, stage_shapes
from lpzero_jax.engine.staging import (
    Stages,
    apply_vjp,
    bounded,
    cached_jit,
    head_batch,
    layer_apply,
    module_key,
    run_module,
    split_params,
)
from lpzero_jax.models.init import path_names


@dataclasses.dataclass(frozen=True)
class Padding:
    """How a bucketed layer's real tensors lie in those of the module it runs as (`Stages.bucket`).

    run: the run module; real_params / run_params: parameter shape trees (real = run[:r0, :r1, ...]);
    real_inter: the real intermediates' shapes; strides: {intermediate name: per-axis factor}
    (`Stages.bucket_strides`); extra: run parameters the real layer lacks (`Stages.bucket_params`,
    constants: dropped from every cut)."""

    run: nn.Module
    real_params: Any
    run_params: Any
    real_inter: Any
    strides: Dict[str, Tuple[int, ...]]
    extra: Dict[str, Any]

    def pad(self, params, zero_extra: bool = False):
        """Real layer params (or tangents: zero_extra) zero-padded to the run module's."""
        extra = self.extra
        if zero_extra:
            extra = jax.tree_util.tree_map(lambda x: np.zeros(np.shape(x), np.float32), extra)
        return pad_params(params, self.run_params, extra)

    def cut_params(self, tree):
        """A run-shaped params tree (gradients, H v) -> the real layer's (padding and extras
        dropped; NumPy views where an axis is cut)."""
        def walk(real, run):
            if isinstance(real, Mapping):
                return {k: walk(real[k], run[k]) for k in real}
            return _cut(run, real.shape, None)

        return walk(self.real_params, tree)

    def cut_intermediates(self, inter):
        """Run intermediates -> the real layer's (padded units dropped, strided axes undone)."""
        real = jax.tree_util.tree_flatten_with_path(self.real_inter)
        run = jax.tree_util.tree_leaves(inter)
        if len(real[0]) != len(run):
            raise ValueError(f"bucketed layer has {len(run)} intermediates where the real one "
                             f"has {len(real[0])}")
        out = []
        for (path, shape), x in zip(real[0], run):
            names = [n for n in path_names(path) if n in self.strides]
            out.append(_cut(x, shape.shape, self.strides[names[0]] if names else None))
        return jax.tree_util.tree_unflatten(real[1], out)

    def cut_channels(self, path: Tuple[str, ...], vector):
        """A per-output-channel vector of the linear layer at `path` (module path inside the
        layer) cut to that layer's real output width."""
        kernel = self.real_params
        for k in path:
            kernel = kernel[k]
        return _cut(vector, kernel["kernel"].shape[-1:], None)


def _cut(x, real_shape: Tuple[int, ...], strides: Optional[Tuple[int, ...]]):
    """x[:r0, :r1, ...] (at strides[axis] where given); x itself when nothing is cut."""
    strides = tuple(strides) if strides is not None else (1,) * len(real_shape)
    if tuple(x.shape) == tuple(real_shape) and all(s == 1 for s in strides):
        return x
    return np.asarray(x)[tuple(slice(0, (r - 1) * s + 1 if r else 0, s)
                               for r, s in zip(real_shape, strides))]


_PADDINGS: "collections.OrderedDict[Hashable, Padding]" = collections.OrderedDict()


def padding(stages: Stages, module: nn.Module, x_shape: Tuple[int, ...]) -> Optional[Padding]:
    """The Padding of a layer run bucketed (bounded cache), None when it runs as itself."""
    run = run_module(stages, module)
    if run is module or module_key(run) == module_key(module):
        return None
    def build():
        real_p, real_i = stage_shapes(module, x_shape)
        run_p, _ = stage_shapes(run, x_shape)
        strides = dict(stages.bucket_strides(module, run)) if stages.bucket_strides else {}
        extra = stages.bucket_params(module, run) if stages.bucket_params else {}
        return Padding(run, real_p, run_p, real_i, strides, extra)

    return bounded(_PADDINGS, (module_key(module), module_key(run), tuple(x_shape)), build)


def _layer_forward_full(key: Hashable, module: nn.Module, with_vjp: bool):
    def build():
        f = layer_apply(module)
        if with_vjp:
            return jax.jit(lambda p, x: jax.vjp(f, p, x, has_aux=True))
        return jax.jit(f)

    return cached_jit(("layer_full", key, with_vjp), build)


def outer_full(key: Hashable, outer: nn.Module, prelude_args: Tuple[str, ...],
               ones_word: bool = False, objective: str = "head_loss"):
    """jitted (forward, head, head_loss) of the layer-less outer model: forward(params, batch) ->
    (first layer's input, VJP over (params, word embeds)); head -> (value, (d params, d hidden));
    ones_word: all-ones word embeddings (Synflow's data-free input) instead of the batch's;
    objective: the outer method (hidden, batch) -> scalar that head and head_loss evaluate
    ("head_loss", or e.g. GPT-2's "output_sum" for Synflow)."""

    def build():
        def forward(params, batch):
            word = outer.apply(params, batch["input_ids"], method="embed")
            if ones_word:
                word = jnp.ones_like(word)
            args = [batch[k] for k in prelude_args]
            return jax.vjp(lambda p, w: outer.apply(p, w, *args, method="prelude"), params, word)

        def head(params, hidden, batch):
            return jax.value_and_grad(
                lambda p, h: outer.apply(p, h, batch, method=objective), argnums=(0, 1))(params, hidden)

        def head_loss(params, hidden, batch):
            return outer.apply(params, hidden, batch, method=objective)

        return jax.jit(forward), jax.jit(head), jax.jit(head_loss)

    return cached_jit(("outer_full", key, prelude_args, ones_word, objective), build)




def run_layer(stages: Stages, module: nn.Module, layer_params, x_shape):
    """(module to run, its params, Padding or None) of one layer in the full-tensor sweeps."""
    pad = padding(stages, module, x_shape)
    return (module, layer_params, None) if pad is None else (pad.run, pad.pad(layer_params), pad)


def forward_full(stages: Stages, params, batch, with_grads: bool, ones_word: bool = False):
    """Stage-by-stage equivalent of `inputs.forward_only` (with_grads=False: (loss, intermediates))
    and `inputs.forward_backward` (True: (loss, intermediates, grads, d loss / d word embeds)).
    ones_word: the word embeddings replaced by ones (with |params|: Synflow's pass). Bucketed
    layers run padded and their intermediates (and grads) are cut to the real shapes."""
    if with_grads:
        return backward_sweep(stages, params, batch, plain_layer_forward, plain_layer_backward,
                              ones_word)[:4]
    p, outer_params = split_params(stages, params)
    forward, _, head_loss = outer_full(module_key(stages.outer), stages.outer,
                                       stages.prelude_args, ones_word)
    x, _ = forward(outer_params, batch)
    inter = {}
    for module, pkey in stages.layers:
        run, layer_params, pad = run_layer(stages, module, p[pkey], tuple(x.shape))
        x, inter_l = _layer_forward_full(module_key(run), run, False)(layer_params, x)
        inter[pkey] = inter_l if pad is None else pad.cut_intermediates(inter_l)
    return head_loss(outer_params, x, head_batch(stages, batch)), inter


def plain_layer_forward(module: nn.Module):
    """`backward_sweep`'s layer_forward for a plain gradient: fn(p, x) -> (y, VJP, inter, None)."""
    fwd = _layer_forward_full(module_key(module), module, True)
    return lambda p, x: fwd(p, x) + (None,)


def plain_layer_backward(vjp_fn, aux, g):
    """`backward_sweep`'s layer_backward for a plain gradient: (g_params, g_x, None)."""
    return apply_vjp(vjp_fn, g) + (None,)


def tree_bytes(tree) -> int:
    """Bytes of the arrays in a pytree (a VJP's residuals: `jax.tree_util.Partial` is one)."""
    return sum(int(getattr(x, "nbytes", 0)) for x in jax.tree_util.tree_leaves(tree))


def backward_sweep(stages: Stages, params, batch, layer_forward, layer_backward,
                   ones_word: bool = False, objective: str = "head_loss", cut_extra=None,
                   keep_bytes: Optional[int] = None):
    """Forward through the stages keeping each layer's VJP, then back from the head's objective.

    layer_forward(module) -> fn(layer params, x) -> (y, vjp_fn, intermediates, aux);
    layer_backward(vjp_fn, aux, g_y) -> (g_params, g_x, extra). A bucketed layer runs as its run
    module on padded params; its intermediates and g_params are cut to the real shapes, its extra
    by cut_extra(Padding, extra) (default: kept as run). objective: see `outer_full`.
    keep_bytes: None keeps every layer's VJP residuals (and aux) until its backward step; a number
    keeps them only while their running total stays within it: each later layer keeps its input
    instead, and its backward step runs the same forward program on it again (the same residuals,
    so the same values) — peak memory bounded by keep_bytes plus one layer, for one more forward of
    those layers.
    Returns (value, intermediates, grads, d value / d word embeds, {layer key: extra})."""
    p, outer_params = split_params(stages, params)
    forward, head, _ = outer_full(module_key(stages.outer), stages.outer, stages.prelude_args,
                                  ones_word, objective)
    x, prelude_vjp = forward(outer_params, batch)
    inter, saved, kept = {}, [], 0
    for module, pkey in stages.layers:
        run, layer_params, pad = run_layer(stages, module, p[pkey], tuple(x.shape))
        fwd, x_in = layer_forward(run), x
        x, vjp_fn, inter_l, aux = fwd(layer_params, x_in)
        inter[pkey] = inter_l if pad is None else pad.cut_intermediates(inter_l)
        if keep_bytes is not None:
            kept += tree_bytes((vjp_fn, aux))
            if kept > keep_bytes:  # recomputed in the backward step
                vjp_fn = aux = None
        rerun = None if vjp_fn is not None else (fwd, layer_params, x_in)
        saved.append((pkey, vjp_fn, aux, pad, rerun))
    loss, (g_outer, g) = head(outer_params, x, head_batch(stages, batch))
    grads, extra = {}, {}
    for pkey, vjp_fn, aux, pad, rerun in reversed(saved):
        if rerun is not None:
            fwd, layer_params, x_in = rerun
            _, vjp_fn, _, aux = fwd(layer_params, x_in)
        g_params, g, extra[pkey] = layer_backward(vjp_fn, aux, g)
        grads[pkey] = g_params if pad is None else pad.cut_params(g_params)
        if pad is not None and cut_extra is not None:
            extra[pkey] = cut_extra(pad, extra[pkey])
    g_outer_prelude, g_word = apply_vjp(prelude_vjp, g)
    g_outer = jax.tree_util.tree_map(jnp.add, g_outer, g_outer_prelude)
    grads.update(g_outer["params"])
    return loss, inter, {"params": {k: grads[k] for k in p}}, g_word, extra
