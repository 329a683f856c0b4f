"""Jitted whole-model passes that several proxies share, beyond the plain forward/backward: the
reference the engine's stage-wise passes (`lpzero_jax.engine.passes`) are tested against, and the
path of families the engine cannot cut (`ArchContext(layer_by_layer=False)` forces it).

Each builder is cached per (family, model config) and returns one `jax.jit` function:
- `compiled_synflow`: gradient of the family's Synflow objective at |params| with all-ones word
  embeddings (Tanaka et al.'s data-free recipe).
- `compiled_hvp`: Hessian-vector product of the proxy loss w.r.t. a chosen set of weights, by
  forward-over-reverse differentiation (`jax.jvp` of `jax.grad`).
- `compiled_backward`: the forward/backward pass of the proxy loss (loss, intermediates, G, J),
  which also takes the gradient w.r.t. zero perturbations added to every linear layer's output and
  reduces it to Turner et al.'s Fisher per output channel, 0.5 * mean_rows (a * dL/da)^2.
- `compiled_backward_hvp`: both of the last two in one program (one primal pass for both).
"""

from __future__ import annotations

import functools
from typing import Dict, Hashable, Tuple

import jax
import jax.numpy as jnp
from flax import traverse_util

from lpzero_jax.engine.passes import channel_fisher, output_delta_function

Path = Tuple[str, ...]


def proxy_loss(model, params, batch) -> jax.Array:
    """The family's proxy loss on the batch (the loss behind G and J)."""
    embeds = model.apply(params, batch["input_ids"], method=model.embed)
    return model.apply(params, embeds, batch, method=model.proxy_loss)


@functools.lru_cache(maxsize=8)
def compiled_synflow(family, model_config: Hashable):
    """jit fn(params, batch) -> grads of R at |params| (R: `family.synflow_value`)."""
    model = family.build_model(model_config)

    def synflow_grads(params, batch):
        abs_params = jax.tree_util.tree_map(jnp.abs, params)

        def objective(p):
            embeds = model.apply(p, batch["input_ids"], method=model.embed)
            return family.synflow_value(model, p, jnp.ones_like(embeds), batch)

        return jax.grad(objective)(abs_params)

    return jax.jit(synflow_grads)


def hessian_vector_product(loss_fn, weights, vector):
    """H v for H the Hessian of `loss_fn` at `weights` (pytrees of the same structure)."""
    return jax.jvp(jax.grad(loss_fn), (weights,), (vector,))[1]


@functools.lru_cache(maxsize=8)
def compiled_hvp(family, model_config: Hashable):
    """jit fn(params, batch, vector {path: array}) -> {path: (H vector)} over those weights only."""
    model = family.build_model(model_config)

    def hvp(params, batch, vector: Dict[Path, jax.Array]):
        flat = traverse_util.flatten_dict(params)

        def loss_of(weights):
            merged = dict(flat)
            merged.update(weights)
            return proxy_loss(model, traverse_util.unflatten_dict(merged), batch)

        weights = {path: flat[path] for path in vector}
        return hessian_vector_product(loss_of, weights, vector)

    return jax.jit(hvp)


def _backward(family, model, params, batch):
    """(loss, intermediates, grads, d loss/d word embeds, fisher) of the proxy loss; see
    `compiled_backward`."""
    embeds = model.apply(params, batch["input_ids"], method=model.embed)

    def apply(p, e):
        loss, state = model.apply(p, e, batch, method=model.proxy_loss, mutable=["intermediates"])
        return loss, state.get("intermediates", {})

    fn, zeros_for = output_delta_function(family, apply)
    (loss, (inter, outputs)), (grads, d_embeds, d_outputs) = jax.value_and_grad(
        fn, argnums=(0, 1, 2), has_aux=True)(params, embeds, zeros_for(params, embeds))
    fisher = {k: channel_fisher(outputs[k], d_outputs[k]) for k in outputs}
    return loss, inter, grads, d_embeds, fisher


@functools.lru_cache(maxsize=8)
def compiled_backward(family, model_config: Hashable):
    """jit fn(params, batch) -> (loss, intermediates, grads, d loss/d word embeds, fisher).

    One forward and one backward pass of the proxy loss (the same quantities as
    `inputs.forward_backward`), plus the gradient w.r.t. a zero perturbation of every linear
    layer's output, reduced on the spot to Fisher per output channel: {layer path: [C]}.
    """
    model = family.build_model(model_config)
    return jax.jit(lambda params, batch: _backward(family, model, params, batch))


@functools.lru_cache(maxsize=8)
def compiled_backward_hvp(family, model_config: Hashable, paths: Tuple[Path, ...]):
    """jit fn(params, batch) -> `compiled_backward`'s five outputs + ({path: H g},).

    The backward pass and GraSP's Hessian-gradient product over the weights at `paths` in one
    program: `jax.linearize` of the gradient function evaluates forward and backward once, and its
    linear map (the `jax.jvp` of `jax.grad`) is applied to g = dL/dW itself. Saves the separate
    `compiled_hvp`'s second primal forward/backward and a compilation; same values.
    """
    model = family.build_model(model_config)

    def backward_hvp(params, batch):
        flat = traverse_util.flatten_dict(params)

        def grads_of(weights):
            merged = traverse_util.unflatten_dict({**flat, **weights})
            out = _backward(family, model, merged, batch)
            g = traverse_util.flatten_dict(out[2])
            return {path: g[path] for path in weights}, out

        g, linear_map, out = jax.linearize(grads_of, {path: flat[path] for path in paths},
                                           has_aux=True)
        return out + (linear_map(g),)

    return jax.jit(backward_hvp)
