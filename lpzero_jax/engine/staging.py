"""A family's model cut into stages (`Stages`: an outer stage and one stage per layer), the keys
that let architectures share a stage's compiled program, and the bounded cache of those programs.

Compiling one forward+backward program per architecture costs seconds each, and a benchmark's
architectures are mostly unique. Their layers are not: the 500 FlexiBERT architectures have 1522
layers but only 96 distinct ones. So a family may cut its model into stages:

  outer   a module with `embed(input_ids)`, `prelude(word_embeds, *args)` (word embeddings -> input
          of the first layer) and `head_loss(hidden, batch)`; it carries no layers, so it is shared
          by every architecture with the same embedding side and head;
  layers  (module, params key) per layer, each module holding only what its layer depends on.

Each distinct stage is compiled once (`cached_jit`) and reused by every architecture containing it.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Callable, Dict, Hashable, List, Mapping, Optional, Tuple

import flax.linen as nn
import jax
import numpy as np

from lpzero_jax.models.init import path_names


@dataclasses.dataclass(frozen=True)
class Stages:
    """outer: the layer-less model (embed / prelude / head_loss); layers: (module, params key);
    prelude_args: batch keys passed to `prelude` after the word embeddings.

    bucket: None, or a map from a layer module to the wider module the compact extraction runs it
    as (`extract_staged`), so that layers of nearby widths share one compiled program. The wider
    module must have the same parameter and intermediate names, each tensor the real one padded
    at the END of its axes (the real tensor = padded[:r0, :r1, ...]), and must give exact zeros in
    every padded entry of its outputs, intermediates and gradients when its padded parameters are
    zero (e.g. extra FFN units: zero weights in and out). The full-tensor sweeps run it too and
    cut what it returns back to the real shapes (`Padding`).
    head_inputs: None, or batch -> extra batch entries computed on the host (NumPy) that
    `head_loss` reads to skip work (GPT-2: which rows each adaptive-softmax tail needs); every
    sweep passes them to the head.

    bucket_params: None, or (layer module, run module) -> parameters the run module has and the
    real one lacks (nested dict of NumPy arrays, e.g. GPT-2's `head_mix`), added to the padded ones.
    bucket_strides: None, or (layer module, run module) -> {input name: per-axis factor}: along such
    an axis real index i lies at run index i * factor instead of i (GPT-2: real head g of h at fine
    head g * run_heads / h); default 1 on every axis.
    host_prelude: None, or (host outer params, host batch) -> the first layer's input computed
    with NumPy on the host, when it is the word embeddings plus terms that do not depend on them
    (GPT-2: + the position table). On the CPU (`placement.host_steps_on_device()` False) J is then
    d loss / d that input, compacted on the host, and the compact extraction compiles no embedding
    or prelude program; on an accelerator the outer's embed and prelude run as device programs
    instead (as for the full-tensor sweeps, which need the outer parameters' gradients).
    head_module / head_params: None, or the module whose `head_loss` the compact extraction's head
    stage runs and (outer params, array namespace) -> its params, when a form shared by more
    architectures gives the same loss and hidden-state gradient (GPT-2: tail clusters padded);
    default: outer. It runs with NumPy on host copies on the CPU, with jax.numpy as a device
    program (one per outer stage) on an accelerator.
    The full-tensor sweeps run the outer itself (its parameters' gradients are read)."""

    outer: nn.Module
    layers: List[Tuple[nn.Module, str]]
    prelude_args: Tuple[str, ...] = ()
    bucket: Optional[Callable[[nn.Module], nn.Module]] = None
    head_inputs: Optional[Callable[[Mapping[str, Any]], Dict[str, Any]]] = None
    bucket_params: Optional[Callable[[nn.Module, nn.Module], Dict[str, Any]]] = None
    bucket_strides: Optional[Callable[[nn.Module, nn.Module], Dict[str, Tuple[int, ...]]]] = None
    host_prelude: Optional[Callable[[Any, Mapping[str, Any]], np.ndarray]] = None
    head_module: Optional[nn.Module] = None
    head_params: Optional[Callable[..., Any]] = None


def head_stage(stages: Stages) -> nn.Module:
    """The module whose `head_loss` the compact extraction runs (`Stages.head_module` or outer)."""
    return stages.outer if stages.head_module is None else stages.head_module


def run_module(stages: Stages, module: nn.Module) -> nn.Module:
    """The module a layer runs as in the compact extraction (`Stages.bucket`, else itself)."""
    return stages.bucket(module) if stages.bucket is not None else module


def head_batch(stages: Stages, batch: Mapping[str, Any]) -> Mapping[str, Any]:
    """The batch plus the host-computed entries the head reads (`Stages.head_inputs`)."""
    return batch if stages.head_inputs is None else dict(batch, **stages.head_inputs(batch))


def module_key(module: nn.Module) -> Hashable:
    """A hashable identity of a module's configuration (type and dataclass fields)."""
    fields = tuple((f.name, getattr(module, f.name)) for f in dataclasses.fields(module)
                   if f.name not in ("parent", "name"))
    return type(module).__module__, type(module).__qualname__, fields


def weight_kernels(tree, is_proxy_weight) -> List[jax.Array]:
    """Leaves of a layer's params (or grads) that are proxy weights, in flatten order."""
    return [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
            if is_proxy_weight(("layer_0",) + path_names(path))]


def sown_values(inter, name: str) -> List[jax.Array]:
    return [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(inter)[0]
            if name in path_names(path)]


_COMPILED: "collections.OrderedDict[Hashable, Any]" = collections.OrderedDict()
def layer_apply(module: nn.Module):
    """f(layer params, x) -> (y, intermediates) of a layer module applied on its own."""

    def f(p, x):
        y, state = module.apply({"params": p}, x, mutable=["intermediates"])
        return y, state.get("intermediates", {})

    return f


def split_params(stages: Stages, params):
    """(layer params {key: tree}, outer params {"params": everything else})."""
    p = params["params"]
    layer_keys = {k for _, k in stages.layers}
    return p, {"params": {k: v for k, v in p.items() if k not in layer_keys}}


apply_vjp = jax.jit(lambda vjp_fn, g: vjp_fn(g))  # one program for every stage's VJP closure


MAX_COMPILED = 4096  # stage functions kept per process (each holds its compiled programs)


def bounded(cache: "collections.OrderedDict", key: Hashable, build):
    """cache[key], from build() on first use; the least recently used entry is dropped past
    MAX_COMPILED (every process-wide cache of the engine is one of these)."""
    if key in cache:
        cache.move_to_end(key)
    else:
        cache[key] = build()
        if len(cache) > MAX_COMPILED:
            cache.popitem(last=False)
    return cache[key]


def cached_jit(key: Hashable, build):
    """Process-wide bounded cache of jitted stage functions (modules themselves are not
    hashable)."""
    return bounded(_COMPILED, key, build)


def clear_programs() -> None:
    """Drops every compiled program of this process: the stage functions kept here and JAX's own
    caches (`jax.clear_caches`). Programs compiled again come from the persistent compilation
    cache when it holds them."""
    _COMPILED.clear()
    jax.clear_caches()


def compiled_programs() -> int:
    """Distinct XLA programs compiled so far by the stage functions of this module (each jitted
    function counts once per distinct argument structure it has run on)."""
    fns = list(_COMPILED.values()) + [apply_vjp]
    total = 0
    for fn in fns:
        for f in (fn if isinstance(fn, tuple) else (fn,)):
            size = getattr(f, "_cache_size", None)
            total += size() if callable(size) else 0
    return total
