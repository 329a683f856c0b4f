"""Staged extraction of the six proxy inputs: compile per *layer*, not per architecture.

Compiling one forward+backward program per architecture costs seconds each, and a benchmark's
architectures are mostly unique. Their layers are not: the 500 FlexiBERT architectures have 1522
layers but only 96 distinct ones. So a family may cut its model into stages:

  outer   a module with `embed(input_ids)`, `prelude(word_embeds, *args)` (word embeddings -> input
          of the first layer) and `head_loss(hidden, batch)`; it carries no layers, so it is shared
          by every architecture with the same embedding side and head;
  layers  (module, params key) per layer, each module holding only what its layer depends on.

The forward pass runs stage by stage, each stage a jitted function returning its output, its
compacted intermediates and its VJP closure (residuals included); the backward pass feeds the loss
gradient back through those closures. Each distinct stage is compiled once and reused by every
architecture containing it. The results equal the whole-model path (`inputs.py`, tested).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Dict, Hashable, List, Mapping, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lpzero_jax import inputs as proxy_inputs
from lpzero_jax.models.init import path_names


@dataclasses.dataclass(frozen=True)
class Stages:
    """outer: the layer-less model (embed / prelude / head_loss); layers: (module, params key);
    prelude_args: batch keys passed to `prelude` after the word embeddings."""

    outer: nn.Module
    layers: List[Tuple[nn.Module, str]]
    prelude_args: Tuple[str, ...] = ()


def module_key(module: nn.Module) -> Hashable:
    """A hashable identity of a module's configuration (type and dataclass fields)."""
    fields = tuple((f.name, getattr(module, f.name)) for f in dataclasses.fields(module)
                   if f.name not in ("parent", "name"))
    return type(module).__module__, type(module).__qualname__, fields


def _compact_layer(tensors: Sequence[jax.Array], sample_size: int, seed: int):
    """One layer's tensors -> (rows [T, K], counts [T]) with the shared sampling rule."""
    values, counts = proxy_inputs.compact_tensors([list(tensors)], sample_size, seed)
    return values[0], counts[0]


def _kernels(tree, is_proxy_weight) -> List[jax.Array]:
    """Leaves of a layer's params (or grads) that are proxy weights, in flatten order."""
    return [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
            if is_proxy_weight(("layer_0",) + path_names(path))]


def _by_name(inter, name: str) -> List[jax.Array]:
    return [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(inter)[0]
            if name in path_names(path)]


_COMPILED: Dict[Hashable, Any] = {}


def cached_jit(key: Hashable, build):
    """Process-wide cache of jitted stage functions (modules themselves are not hashable)."""
    if key not in _COMPILED:
        _COMPILED[key] = build()
    return _COMPILED[key]


def _layer_forward(key: Hashable, module: nn.Module, is_proxy_weight, sample_size: int, seed: int):
    return cached_jit(("layer_fwd", key, is_proxy_weight, sample_size, seed),
                   lambda: _build_layer_forward(module, is_proxy_weight, sample_size, seed))


def _build_layer_forward(module: nn.Module, is_proxy_weight, sample_size: int, seed: int):
    def forward(params, x):
        def f(p, x):
            y, state = module.apply({"params": p}, x, mutable=["intermediates"])
            return y, state.get("intermediates", {})

        y, vjp_fn, inter = jax.vjp(f, params, x, has_aux=True)
        compact = {name: _compact_layer(_by_name(inter, name), sample_size, seed)
                   for name in ("A", "H", "S")}
        compact["W"] = _compact_layer(_kernels(params, is_proxy_weight), sample_size, seed)
        return y, compact, vjp_fn

    return jax.jit(forward)


@functools.lru_cache(maxsize=64)
def _layer_backward(is_proxy_weight, sample_size: int, seed: int):
    def backward(vjp_fn, g_y):
        g_params, g_x = vjp_fn(g_y)
        return g_x, _compact_layer(_kernels(g_params, is_proxy_weight), sample_size, seed)

    return jax.jit(backward)


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


@functools.lru_cache(maxsize=64)
def _prelude_backward(sample_size: int, seed: int):
    def backward(vjp_fn, g):
        (g_word,) = vjp_fn(g)
        return _compact_layer([g_word], sample_size, seed)

    return jax.jit(backward)


def _assemble(per_layer: List[Tuple[jax.Array, np.ndarray]], sample_size: int):
    """Per-layer (rows [T_l, K], counts [T_l]) -> (values [L, T, K], counts [L, T]) as NumPy."""
    t_max = max([r.shape[0] for r, _ in per_layer] + [1])
    values = np.zeros((max(len(per_layer), 1), t_max, sample_size), np.float32)
    counts = np.zeros((max(len(per_layer), 1), t_max), np.int64)
    for l, (rows, c) in enumerate(per_layer):
        values[l, :rows.shape[0]] = np.asarray(rows)
        counts[l, :len(c)] = np.asarray(c)
    return values, counts


def split_params(stages: Stages, params):
    """(layer params {key: tree}, outer params {"params": everything else})."""
    p = params["params"]
    layer_keys = {k for _, k in stages.layers}
    return p, {"params": {k: v for k, v in p.items() if k not in layer_keys}}


def extract_staged(stages: Stages, params: Mapping[str, Any], batch: Mapping[str, jax.Array],
                   is_proxy_weight, sample_size: int, sample_seed: int, backward: bool = True):
    """The six inputs of one architecture, stage by stage; returns (CompactInputs, loss).

    backward=False stops after the forward pass (A, H, S, W only; the loss is still computed)."""
    p, outer_params = split_params(stages, params)
    okey = module_key(stages.outer)
    x, prelude_vjp = _outer_forward(okey, stages.outer, stages.prelude_args)(outer_params, batch)
    fwd_out, vjps = [], []
    for module, pkey in stages.layers:
        fwd = _layer_forward(module_key(module), module, is_proxy_weight, sample_size, sample_seed)
        x, compact, vjp_fn = fwd(p[pkey], x)
        fwd_out.append(compact)
        vjps.append(vjp_fn)
    loss, g = _head_grad(okey, stages.outer)(outer_params, x, batch)
    out: Dict[str, Tuple[np.ndarray, np.ndarray]] = {
        name: _assemble([c[name] for c in fwd_out], sample_size) for name in ("A", "H", "S", "W")}
    if not backward:
        return proxy_inputs.CompactInputs({k: v[0] for k, v in out.items()},
                                          {k: v[1] for k, v in out.items()}), float(loss)
    layer_backward = _layer_backward(is_proxy_weight, sample_size, sample_seed)
    grads = []
    for vjp_fn in reversed(vjps):
        g, compact_g = layer_backward(vjp_fn, g)
        grads.append(compact_g)
    grads.reverse()
    j = _prelude_backward(sample_size, sample_seed)(prelude_vjp, g)
    out["G"] = _assemble(grads, sample_size)
    out["J"] = _assemble([j], sample_size)
    return proxy_inputs.CompactInputs({k: v[0] for k, v in out.items()},
                                      {k: v[1] for k, v in out.items()}), float(loss)


# --------------------------------------------------------------------------------------------------
# full tensors (for hand-crafted proxies): the same stages, nothing compacted


def layer_apply(module: nn.Module):
    """f(layer params, x) -> (y, intermediates) of a layer module applied on its own."""

    def f(p, x):
        y, state = module.apply({"params": p}, x, mutable=["intermediates"])
        return y, state.get("intermediates", {})

    return f


def _layer_forward_full(key: Hashable, module: nn.Module, with_vjp: bool):
    def build():
        f = layer_apply(module)
        if with_vjp:
            return jax.jit(lambda p, x: jax.vjp(f, p, x, has_aux=True))
        return jax.jit(f)

    return cached_jit(("layer_full", key, with_vjp), build)


def outer_full(key: Hashable, outer: nn.Module, prelude_args: Tuple[str, ...],
               ones_word: bool = False):
    """jitted (forward, head, head_loss) of the layer-less outer model: forward(params, batch) ->
    (first layer's input, VJP over (params, word embeds)); head -> (loss, (d params, d hidden));
    ones_word: all-ones word embeddings (Synflow's data-free input) instead of the batch's."""

    def build():
        def forward(params, batch):
            word = outer.apply(params, batch["input_ids"], method="embed")
            if ones_word:
                word = jnp.ones_like(word)
            args = [batch[k] for k in prelude_args]
            return jax.vjp(lambda p, w: outer.apply(p, w, *args, method="prelude"), params, word)

        def head(params, hidden, batch):
            return jax.value_and_grad(
                lambda p, h: outer.apply(p, h, batch, method="head_loss"), argnums=(0, 1))(params, hidden)

        def head_loss(params, hidden, batch):
            return outer.apply(params, hidden, batch, method="head_loss")

        return jax.jit(forward), jax.jit(head), jax.jit(head_loss)

    return cached_jit(("outer_full", key, prelude_args, ones_word), build)


apply_vjp = jax.jit(lambda vjp_fn, g: vjp_fn(g))


def forward_full(stages: Stages, params, batch, with_grads: bool, ones_word: bool = False):
    """Stage-by-stage equivalent of `inputs.forward_only` (with_grads=False: (loss, intermediates))
    and `inputs.forward_backward` (True: (loss, intermediates, grads, d loss / d word embeds)).
    ones_word: the word embeddings replaced by ones (with |params|: Synflow's pass)."""
    if with_grads:
        return backward_sweep(stages, params, batch, _plain_layer_forward, _plain_layer_backward,
                              ones_word)[:4]
    p, outer_params = split_params(stages, params)
    forward, _, head_loss = outer_full(module_key(stages.outer), stages.outer,
                                       stages.prelude_args, ones_word)
    x, _ = forward(outer_params, batch)
    inter = {}
    for module, pkey in stages.layers:
        x, inter[pkey] = _layer_forward_full(module_key(module), module, False)(p[pkey], x)
    return head_loss(outer_params, x, batch), inter


def _plain_layer_forward(module: nn.Module):
    fwd = _layer_forward_full(module_key(module), module, True)
    return lambda p, x: fwd(p, x) + (None,)


def _plain_layer_backward(vjp_fn, aux, g):
    return apply_vjp(vjp_fn, g) + (None,)


def backward_sweep(stages: Stages, params, batch, layer_forward, layer_backward,
                   ones_word: bool = False):
    """Forward through the stages keeping each layer's VJP, then back from the head's loss.

    layer_forward(module) -> fn(layer params, x) -> (y, vjp_fn, intermediates, aux);
    layer_backward(vjp_fn, aux, g_y) -> (g_params, g_x, extra).
    Returns (loss, intermediates, grads, d loss / d word embeds, {layer key: extra})."""
    p, outer_params = split_params(stages, params)
    forward, head, _ = outer_full(module_key(stages.outer), stages.outer, stages.prelude_args,
                                  ones_word)
    x, prelude_vjp = forward(outer_params, batch)
    inter, saved = {}, []
    for module, pkey in stages.layers:
        x, vjp_fn, inter[pkey], aux = layer_forward(module)(p[pkey], x)
        saved.append((pkey, vjp_fn, aux))
    loss, (g_outer, g) = head(outer_params, x, batch)
    grads, extra = {}, {}
    for pkey, vjp_fn, aux in reversed(saved):
        grads[pkey], g, extra[pkey] = layer_backward(vjp_fn, aux, g)
    g_outer_prelude, g_word = apply_vjp(prelude_vjp, g)
    g_outer = jax.tree_util.tree_map(jnp.add, g_outer, g_outer_prelude)
    grads.update(g_outer["params"])
    return loss, inter, {"params": {k: grads[k] for k in p}}, g_word, extra
