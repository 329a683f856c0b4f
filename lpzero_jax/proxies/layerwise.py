"""The zoo's gradient passes compiled per layer, for families cut into stages (lpzero_jax/engine/sweep.py).

Same values as the whole-model programs of `proxies/stages.py`, but each distinct layer is compiled
once and reused by every architecture that contains it (500 FlexiBERT architectures have 96
distinct layers), so an architecture costs its execution only, not seconds of XLA compilation:

- `backward`: loss, intermediates, grads, d loss / d word embeds, and Turner et al.'s per-channel
  Fisher of every linear layer (zero output perturbations differentiated inside each layer stage);
- `synflow_grads`: gradient of the proxy loss at |params| and all-ones word embeddings;
- `hessian_vector_product`: H v over layer weights by forward-over-reverse differentiation, stage
  by stage: a `jax.jvp` sweep forward through the layers, the jvp of the head's gradient, then the
  jvp of each layer's VJP backward (the chain rule of `jax.jvp(jax.grad(loss))`).

`stages_for` says whether they apply: the family is staged, no proxy weight lives outside its
layers (Fisher and the HVP see layers only), and its Synflow objective is its proxy loss.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp
from flax import traverse_util

from lpzero_jax.engine import sweep as staged
from lpzero_jax.proxies.stages import channel_fisher, output_delta_function

Path = Tuple[str, ...]
LAYER = "layer_0"  # the name a layer's paths get inside its own (shared) stage


def stages_for(family, model_config, param_shapes) -> Optional[staged.Stages]:
    """The model's stages when the layer-wise passes give the whole-model values, else None."""
    stages = family.stages(model_config)
    if stages is None or family.synflow_objective != "proxy_loss":
        return None
    layer_keys = {k for _, k in stages.layers}
    for path in traverse_util.flatten_dict(param_shapes):
        if path[1] not in layer_keys and family.is_proxy_weight(path):
            return None
    return stages


# --- backward with Fisher --------------------------------------------------------------------------

def _fisher_forward(module, family):
    """jit (p, x) -> (y, VJP over (p, x, output deltas), intermediates, linear outputs)."""

    def build():
        fn, zeros_for = output_delta_function(family, staged.layer_apply(module), prefix=(LAYER,))

        def forward(p, x):
            y, vjp_fn, (inter, outputs) = jax.vjp(fn, p, x, zeros_for(p, x), has_aux=True)
            return y, vjp_fn, inter, outputs

        return jax.jit(forward)

    return staged.cached_jit(("zoo_fisher_fwd", staged.module_key(module), family), build)


@jax.jit
def _fisher_backward(vjp_fn, outputs, g_y):
    g_p, g_x, g_d = vjp_fn(g_y)
    return g_p, g_x, {k: channel_fisher(outputs[k], g_d[k]) for k in outputs}


def backward(family, stages: staged.Stages, params, batch):
    """(loss, intermediates, grads, d loss / d word embeds, fisher {layer path: [C]}), as
    `stages.compiled_backward`."""
    loss, inter, grads, g_word, fisher_of = staged.backward_sweep(
        stages, params, batch, lambda module: _fisher_forward(module, family), _fisher_backward)
    fisher = {("params", pkey) + k[2:]: v for _, pkey in stages.layers
              for k, v in fisher_of[pkey].items()}
    return loss, inter, grads, g_word, fisher


# --- Synflow ---------------------------------------------------------------------------------------

def synflow_grads(stages: staged.Stages, params, batch):
    """d proxy loss / d params at |params| and all-ones word embeddings, as
    `stages.compiled_synflow` for a family whose Synflow objective is its proxy loss."""
    abs_params = jax.tree_util.tree_map(jnp.abs, params)
    return staged.forward_full(stages, abs_params, batch, True, ones_word=True)[2]


# --- Hessian-vector product ------------------------------------------------------------------------

def _output_only(module):
    apply = staged.layer_apply(module)
    return lambda p, x: apply(p, x)[0]


def _hvp_forward(module):
    """jit (p, x, v, x_dot) -> (y, y_dot): the layer's jvp along (v, x_dot)."""
    f = _output_only(module)
    return staged.cached_jit(("zoo_hvp_fwd", staged.module_key(module)),
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

    return staged.cached_jit(("zoo_hvp_bwd", staged.module_key(module)), build)


def _hvp_head(outer):
    """jit (params, h, h_dot, batch) -> (d loss / d h, its jvp along h_dot)."""

    def build():
        def head(params, h, h_dot, batch):
            grad_h = jax.grad(lambda h: outer.apply(params, h, batch, method="head_loss"))
            return jax.jvp(grad_h, (h,), (h_dot,))

        return jax.jit(head)

    return staged.cached_jit(("zoo_hvp_head", staged.module_key(outer)), build)


def hessian_vector_product(stages: staged.Stages, params, batch,
                           vector: Dict[Path, jax.Array]) -> Dict[Path, jax.Array]:
    """{path: (H vector)} for H the Hessian of the proxy loss w.r.t. the layer weights at the
    paths of `vector` (every other parameter held fixed), as `stages.compiled_hvp`."""
    p, outer_params = staged.split_params(stages, params)
    by_layer: Dict[str, Dict[Path, jax.Array]] = {}
    for path, v in vector.items():
        by_layer.setdefault(path[1], {})[path[2:]] = v
    forward, _, _ = staged.outer_full(staged.module_key(stages.outer), stages.outer,
                                      stages.prelude_args)
    x, _ = forward(outer_params, batch)
    x_dot = jnp.zeros_like(x)
    saved = []
    for module, pkey in stages.layers:
        flat = traverse_util.flatten_dict(p[pkey])
        v = traverse_util.unflatten_dict(
            {k: by_layer.get(pkey, {}).get(k, jnp.zeros_like(leaf)) for k, leaf in flat.items()})
        saved.append((module, pkey, x, x_dot, v))
        x, x_dot = _hvp_forward(module)(p[pkey], x, v, x_dot)
    g, g_dot = _hvp_head(stages.outer)(outer_params, x, x_dot, batch)
    out: Dict[Path, jax.Array] = {}
    for module, pkey, x_l, x_dot_l, v in reversed(saved):
        g, g_dot, hv = _hvp_backward(module)(p[pkey], x_l, g, v, x_dot_l, g_dot)
        hv = traverse_util.flatten_dict(hv)
        out.update({("params", pkey) + k: hv[k] for k in by_layer.get(pkey, {})})
    return {path: out[path] for path in vector}
