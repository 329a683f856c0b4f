"""The zoo's gradient passes on the engine's stages: each distinct (bucketed) stage compiled once.

Same values as the whole-model programs of `lpzero_jax.proxies.whole_model`, but every architecture
runs the stages its family cuts it into (`Family.stages`, the ones the compact extraction
runs), so it costs its execution only, not seconds of XLA compilation per architecture:

- `backward`: loss, intermediates, grads, d loss / d word embeds, and Turner et al.'s per-channel
  Fisher of every linear layer (zero output perturbations differentiated inside each layer stage);
- `synflow_grads`: gradient of the family's Synflow objective at |params| and all-ones word
  embeddings (the outer's `head_loss` for "proxy_loss", its `output_sum` for "output_sum");
- `hessian_vector_product`: H v over layer weights by forward-over-reverse differentiation, stage
  by stage: a `jax.jvp` sweep forward through the layers, the jvp of the head's gradient, then the
  jvp of each layer's VJP backward (the chain rule of `jax.jvp(jax.grad(loss))`).

A bucketed layer (GPT-2: FFN width padded, heads run as fine heads mixed by the constant
`head_mix`) runs its shared program on zero-padded parameters (the HVP's vector zero-padded too);
gradients, intermediates, H v and Fisher vectors are cut back to the real shapes on the host
(`sweep.Padding`). Padded units are exact zeros, so the cut values are the real model's.

`stages_for` says whether they apply: the family is staged and no proxy weight lives outside its
layers (Fisher and the HVP see layers only); `synflow_stages_for` whether Synflow does (the outer
stage has the family's Synflow objective as a method).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

from lpzero_jax.engine import staging, sweep

Path = Tuple[str, ...]
LAYER = "layer_0"  # the name a layer's paths get inside its own (shared) stage


def stages_for(family, model_config, param_shapes) -> Optional[staging.Stages]:
    """The model's stages when the stage-wise passes give the whole-model values, else None."""
    stages = family.stages(model_config)
    if stages is None:
        return None
    layer_keys = {k for _, k in stages.layers}
    for path in traverse_util.flatten_dict(param_shapes):
        if path[1] not in layer_keys and family.is_proxy_weight(path):
            return None
    return stages


def synflow_objective(family) -> str:
    """The outer method Synflow's staged pass differentiates for `family.synflow_objective`."""
    return "head_loss" if family.synflow_objective == "proxy_loss" else family.synflow_objective


def synflow_stages_for(family, stages: Optional[staging.Stages]) -> Optional[staging.Stages]:
    """stages when the outer stage evaluates the family's Synflow objective, else None."""
    if stages is None or not callable(getattr(type(stages.outer), synflow_objective(family), None)):
        return None
    return stages


# --- linear layers' outputs and Fisher -------------------------------------------------------------

def _is_linear_call(family, context, prefix: Path) -> bool:
    module = context.module
    linear = isinstance(module, (nn.Dense, nn.DenseGeneral)) or getattr(type(module), "is_linear_layer", False)
    return (context.method_name == "__call__" and linear
            and family.is_proxy_weight(("params",) + prefix + tuple(module.path) + ("kernel",)))


def with_output_deltas(family, deltas, record, fn, prefix: Path = ()):
    """Runs fn() with deltas[path] added to each linear layer's output; outputs go to `record`.

    Paths are ("params",) + prefix + the module's path (prefix: where the applied module sits in
    the whole model, e.g. ("layer_0",) for a layer applied on its own)."""

    def interceptor(next_fun, args, kwargs, context):
        y = next_fun(*args, **kwargs)
        if _is_linear_call(family, context, prefix):
            key = ("params",) + prefix + tuple(context.module.path)
            if key in record:
                raise ValueError(f"linear layer {key} is called twice; Fisher needs one call each")
            record[key] = y
            if deltas is not None:
                y = y + deltas[key]
        return y

    with nn.intercept_methods(interceptor):
        return fn()


def channel_fisher(activation: jax.Array, grad: jax.Array) -> jax.Array:
    """Turner et al.'s per-channel Fisher 0.5 * mean_rows (a * dL/da)^2 of a [..., C] output."""
    width = activation.shape[-1]
    g_nk = activation.reshape(-1, width) * grad.reshape(-1, width)
    return 0.5 * jnp.mean(jnp.square(g_nk), axis=0)


def first_input_positives(output: jax.Array) -> jax.Array:
    """[C] int32: per output channel, how many entries of the FIRST input's output [S, ..., C]
    are positive (the counts `activation_distance_reference` needs)."""
    first = output[0]
    return jnp.sum(first.reshape(-1, first.shape[-1]) > 0, axis=0, dtype=jnp.int32)


def output_delta_function(family, apply, prefix: Path = ()):
    """Wraps apply(*args) -> (out, intermediates) for Fisher: returns
    fn(*args, deltas) -> (out, (intermediates, {linear layer path: output})), which adds
    deltas[path] to every linear layer's output, and zeros_for(*args) -> zero deltas of the right
    shapes (differentiating fn at zeros gives dL/d output per layer)."""

    def run(args, deltas, record):
        return with_output_deltas(family, deltas, record, lambda: apply(*args), prefix)

    def fn(*args_and_deltas):
        *args, deltas = args_and_deltas
        outputs: Dict[Path, jax.Array] = {}
        out, inter = run(args, deltas, outputs)
        return out, (inter, outputs)

    def zeros_for(*args):
        shapes: Dict[Path, jax.Array] = {}
        jax.eval_shape(lambda *a: run(a, None, shapes), *args)
        return {k: jnp.zeros(v.shape, v.dtype) for k, v in shapes.items()}

    return fn, zeros_for


# --- backward with Fisher --------------------------------------------------------------------------

def _fisher_forward(module, family):
    """jit (p, x) -> (y, VJP over (p, x, output deltas), intermediates, linear outputs)."""

    def build():
        fn, zeros_for = output_delta_function(family, staging.layer_apply(module), prefix=(LAYER,))

        def forward(p, x):
            y, vjp_fn, (inter, outputs) = jax.vjp(fn, p, x, zeros_for(p, x), has_aux=True)
            return y, vjp_fn, inter, outputs

        return jax.jit(forward)

    return staging.cached_jit(("zoo_fisher_fwd", staging.module_key(module), family), build)


@jax.jit
def _fisher_backward(vjp_fn, outputs, g_y):
    g_p, g_x, g_d = vjp_fn(g_y)
    return g_p, g_x, {k: (channel_fisher(outputs[k], g_d[k]), first_input_positives(outputs[k]))
                      for k in outputs}


def _cut_channels(pad: sweep.Padding, per_channel):
    """A bucketed layer's {linear path: (per-channel vectors [C_run])} cut to the real widths."""
    return {k: tuple(pad.cut_channels(k[2:], x) for x in v) for k, v in per_channel.items()}


def backward(family, stages: staging.Stages, params, batch, keep_bytes: Optional[int] = None):
    """(loss, intermediates, grads, d loss / d word embeds, fisher {layer path: [C]}), as
    `proxies.whole_model.compiled_backward`, then positives {layer path: [C]}: the linear layers'
    `first_input_positives`, from the same forward (no pass of their own). keep_bytes: see
    `sweep.backward_sweep`."""
    loss, inter, grads, g_word, extra = sweep.backward_sweep(
        stages, params, batch, lambda module: _fisher_forward(module, family), _fisher_backward,
        cut_extra=_cut_channels, keep_bytes=keep_bytes)
    per_channel = {("params", pkey) + k[2:]: v for _, pkey in stages.layers
                   for k, v in extra[pkey].items()}
    fisher = {k: v[0] for k, v in per_channel.items()}
    positives = {k: v[1] for k, v in per_channel.items()}
    return loss, inter, grads, g_word, fisher, positives


# --- Synflow ---------------------------------------------------------------------------------------

def synflow_grads(family, stages: staging.Stages, params, batch,
                  keep_bytes: Optional[int] = None):
    """d R / d params at |params| and all-ones word embeddings, R the family's Synflow objective
    (`synflow_objective`), as `proxies.whole_model.compiled_synflow`. keep_bytes: see
    `sweep.backward_sweep`."""
    abs_params = jax.tree_util.tree_map(jnp.abs, params)
    return sweep.backward_sweep(stages, abs_params, batch, sweep.plain_layer_forward,
                                sweep.plain_layer_backward, ones_word=True,
                                objective=synflow_objective(family), keep_bytes=keep_bytes)[2]


# --- Hessian-vector product ------------------------------------------------------------------------

def _output_only(module):
    apply = staging.layer_apply(module)
    return lambda p, x: apply(p, x)[0]


def _hvp_forward(module):
    """jit (p, x, v, x_dot) -> (y, y_dot): the layer's jvp along (v, x_dot)."""
    f = _output_only(module)
    return staging.cached_jit(("zoo_hvp_fwd", staging.module_key(module)),
                            lambda: jax.jit(lambda p, x, v, x_dot: jax.jvp(f, (p, x), (v, x_dot))))


def _hvp_backward(module):
    """jit (p, x, g_y, v, x_dot, g_y_dot) -> (g_x, g_x_dot, g_p_dot): jvp of the layer's VJP."""
    f = _output_only(module)

    def build():
        def vjp_of(p, x, g_y):
            return jax.vjp(f, p, x)[1](g_y)

        def step(p, x, g_y, v, x_dot, g_y_dot):
            (_, g_x), (g_p_dot, g_x_dot) = jax.jvp(vjp_of, (p, x, g_y), (v, x_dot, g_y_dot))
            return g_x, g_x_dot, g_p_dot

        return jax.jit(step)

    return staging.cached_jit(("zoo_hvp_bwd", staging.module_key(module)), build)


def _hvp_head(outer):
    """jit (params, h, h_dot, batch) -> (d loss / d h, its jvp along h_dot)."""

    def build():
        def head(params, h, h_dot, batch):
            grad_h = jax.grad(lambda h: outer.apply(params, h, batch, method="head_loss"))
            return jax.jvp(grad_h, (h,), (h_dot,))

        return jax.jit(head)

    return staging.cached_jit(("zoo_hvp_head", staging.module_key(outer)), build)


def hessian_vector_product(stages: staging.Stages, params, batch,
                           vector: Dict[Path, jax.Array]) -> Dict[Path, jax.Array]:
    """{path: (H vector)} for H the Hessian of the proxy loss w.r.t. the layer weights at the
    paths of `vector` (every other parameter held fixed), as `proxies.whole_model.compiled_hvp`."""
    p, outer_params = staging.split_params(stages, params)
    by_layer: Dict[str, Dict[Path, jax.Array]] = {}
    for path, v in vector.items():
        by_layer.setdefault(path[1], {})[path[2:]] = v
    forward, _, _ = sweep.outer_full(staging.module_key(stages.outer), stages.outer,
                                     stages.prelude_args)
    x, _ = forward(outer_params, batch)
    x_dot = jnp.zeros_like(x)
    saved = []
    for module, pkey in stages.layers:
        flat = traverse_util.flatten_dict(p[pkey])
        v = traverse_util.unflatten_dict(
            {k: by_layer.get(pkey, {}).get(k, jnp.zeros_like(leaf)) for k, leaf in flat.items()})
        run, layer_params, pad = sweep.run_layer(stages, module, p[pkey], tuple(x.shape))
        if pad is not None:
            v = pad.pad(v, zero_extra=True)
        saved.append((run, pkey, layer_params, x, x_dot, v, pad))
        x, x_dot = _hvp_forward(run)(layer_params, x, v, x_dot)
    g, g_dot = _hvp_head(stages.outer)(outer_params, x, x_dot, staging.head_batch(stages, batch))
    out: Dict[Path, jax.Array] = {}
    for run, pkey, layer_params, x_l, x_dot_l, v, pad in reversed(saved):
        g, g_dot, hv = _hvp_backward(run)(layer_params, x_l, g, v, x_dot_l, g_dot)
        if pad is not None:
            hv = pad.cut_params(hv)
        hv = traverse_util.flatten_dict(hv)
        out.update({("params", pkey) + k: hv[k] for k in by_layer.get(pkey, {})})
    return {path: out[path] for path in vector}
