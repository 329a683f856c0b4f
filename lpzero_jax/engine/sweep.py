"""The engine's sweep: the six proxy inputs and the full-tensor passes, compiled per *layer*
(stage), not per architecture.

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

import collections
import dataclasses
from typing import Any, Callable, Dict, Hashable, List, Mapping, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lpzero_jax.models.init import path_names
from lpzero_jax.engine.dense import lean_dense
from lpzero_jax.engine.sampling import compact_numpy, compact_tensors, gather_samples, slot_positions


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
    host_prelude: None, or (outer params, batch) -> the first layer's input computed with NumPy on
    the host, when it is the word embeddings plus terms that do not depend on them (GPT-2: + the
    position table). J is then d loss / d that input, compacted on the host, and the compact
    extraction compiles no embedding or prelude program (the full-tensor sweeps, which need the
    outer parameters' gradients, run the outer's embed and prelude instead).
    head_module / head_params: None, or the module whose `head_loss` the compact extraction's head
    stage runs and outer params -> its params (host), when a form shared by more architectures
    gives the same loss and hidden-state gradient (GPT-2: tail clusters padded); default: outer.
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
    head_params: Optional[Callable[[Any], Any]] = None


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


def _kernels(tree, is_proxy_weight) -> List[jax.Array]:
    """Leaves of a layer's params (or grads) that are proxy weights, in flatten order."""
    return [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
            if is_proxy_weight(("layer_0",) + path_names(path))]


def _by_name(inter, name: str) -> List[jax.Array]:
    return [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(inter)[0]
            if name in path_names(path)]


_COMPILED: "collections.OrderedDict[Hashable, Any]" = collections.OrderedDict()
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


# --------------------------------------------------------------------------------------------------
# compact samples: positions drawn from the real tensor, read from the (possibly padded) one


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


def _shapes(module: nn.Module, x_shape: Tuple[int, ...]):
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
    real_p, real_i = _shapes(module, x_shape)
    run_p, run_i = (real_p, real_i) if run_module is module else _shapes(run_module, x_shape)
    tensors = {name: (_by_name(real_i, name), _by_name(run_i, name)) for name in ("A", "H", "S")}
    tensors["W"] = (_kernels(real_p, is_proxy_weight), _kernels(run_p, is_proxy_weight))
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


def _layer_forward(key: Hashable, module: nn.Module, is_proxy_weight):
    return cached_jit(("layer_fwd", key, is_proxy_weight),
                      lambda: _build_layer_forward(module, is_proxy_weight))


def _build_layer_forward(module: nn.Module, is_proxy_weight):
    def forward(params, x, positions, valid):
        with nn.intercept_methods(lean_dense):  # weight gradients wide operand first (dense.py)
            y, vjp_fn, inter = jax.vjp(layer_apply(module), params, x, has_aux=True)
        rows = {name: gather_samples(_by_name(inter, name), positions[name], valid[name])
                for name in ("A", "H", "S")}
        rows["W"] = gather_samples(_kernels(params, is_proxy_weight), positions["W"], valid["W"])
        return y, rows, vjp_fn

    return jax.jit(forward)


def _layer_backward(is_proxy_weight):
    """jit (layer VJP, d loss / d layer output, W positions, W valid) -> (d loss / d layer input,
    G rows [T, K])."""
    def build():
        def backward(vjp_fn, g_y, positions, valid):
            g_params, g_x = vjp_fn(g_y)
            return g_x, gather_samples(_kernels(g_params, is_proxy_weight), positions, valid)

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


class StageTimer:
    """Optional instrumentation of `extract_staged`: per stage kind ('outer', 'layer_fwd', 'head',
    'layer_bwd', 'prelude_bwd') the seconds (each call waited for) and the FLOPs of the very
    programs run (XLA cost analysis of each call's lowering, cached per program and shapes; loops
    are unrolled for the count, `models.softmax.unrolled`)."""

    def __init__(self):
        self.seconds: Dict[str, float] = collections.defaultdict(float)
        self.flops: Dict[str, float] = collections.defaultdict(float)
        self._cost: Dict[Hashable, float] = {}

    def host(self, kind: str, fn, *args):
        """Times a host (NumPy) step: seconds only, no compiled program, no FLOPs counted."""
        import time

        t = time.perf_counter()
        out = fn(*args)
        self.seconds[kind] += time.perf_counter() - t
        return out

    def __call__(self, kind: str, fn, *args):
        import time

        key = (kind, id(fn), jax.tree_util.tree_structure(args),
               tuple((tuple(x.shape), str(x.dtype)) for x in jax.tree_util.tree_leaves(args)))
        if key not in self._cost:
            # traced afresh with loops unrolled: XLA's cost analysis counts a loop body once
            from lpzero_jax.models.softmax import unrolled

            with unrolled():
                cost = jax.jit(lambda *a: fn.__wrapped__(*a)).lower(*args).cost_analysis()
            cost = cost[0] if isinstance(cost, (list, tuple)) else cost
            self._cost[key] = float(cost.get("flops", 0.0)) if cost else 0.0
        t = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        self.seconds[kind] += time.perf_counter() - t
        self.flops[kind] += self._cost[key]
        return out


def _call(kind: str, fn, *args, timer: Optional[StageTimer] = None):
    return fn(*args) if timer is None else timer(kind, fn, *args)


def _host(kind: str, fn, *args, timer: Optional[StageTimer] = None):
    return fn(*args) if timer is None else timer.host(kind, fn, *args)


def split_params(stages: Stages, params):
    """(layer params {key: tree}, outer params {"params": everything else})."""
    p = params["params"]
    layer_keys = {k for _, k in stages.layers}
    return p, {"params": {k: v for k, v in p.items() if k not in layer_keys}}


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
        x = _host("outer", lambda: jnp.asarray(stages.host_prelude(outer_params, batch)),
                  timer=timer)
        prelude_vjp = None
    else:
        x, prelude_vjp = _call("outer", _outer_forward(okey, stages.outer, stages.prelude_args),
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
        x, rows, vjp_fn = _call("layer_fwd", fwd, layer_params, x, layout.positions, layout.valid,
                                timer=timer)
        fwd_out.append({name: (rows[name], layout.counts[name]) for name in rows})
        saved.append((vjp_fn, layout))
    head = head_stage(stages)
    head_params = outer_params
    if stages.head_params is not None:
        head_params = _host("head", stages.head_params, outer_params, timer=timer)
    loss, g = _call("head", _head_grad(module_key(head), head), head_params, x,
                    head_batch(stages, batch), timer=timer)
    out: Dict[str, Tuple[np.ndarray, np.ndarray]] = {
        name: _assemble([c[name] for c in fwd_out], sample_size) for name in ("A", "H", "S", "W")}
    if not backward:
        return {k: v[0] for k, v in out.items()}, {k: v[1] for k, v in out.items()}, float(loss)
    layer_backward = _layer_backward(is_proxy_weight)
    grads = []
    for vjp_fn, layout in reversed(saved):
        g, rows_g = _call("layer_bwd", layer_backward, vjp_fn, g, layout.positions["W"],
                          layout.valid["W"], timer=timer)
        grads.append((rows_g, layout.counts["W"]))
    grads.reverse()
    if prelude_vjp is None:  # d loss / d word embeddings = d loss / d first layer input
        j = _host("prelude_bwd", lambda: tuple(a[0] for a in compact_numpy(
            [[np.asarray(g)]], sample_size, sample_seed)), timer=timer)
    else:
        j = _call("prelude_bwd", _prelude_backward(sample_size, sample_seed), prelude_vjp, g,
                  timer=timer)
    out["G"] = _assemble(grads, sample_size)
    out["J"] = _assemble([j], sample_size)
    return {k: v[0] for k, v in out.items()}, {k: v[1] for k, v in out.items()}, float(loss)


# --------------------------------------------------------------------------------------------------
# full tensors (for hand-crafted proxies): the same stages, nothing compacted. A bucketed layer runs
# as its run module (the compact extraction's shared program) on zero-padded parameters, and what
# it returns is cut back to the real shapes on the host (`Padding`).


def layer_apply(module: nn.Module):
    """f(layer params, x) -> (y, intermediates) of a layer module applied on its own."""

    def f(p, x):
        y, state = module.apply({"params": p}, x, mutable=["intermediates"])
        return y, state.get("intermediates", {})

    return f


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
        real_p, real_i = _shapes(module, x_shape)
        run_p, _ = _shapes(run, x_shape)
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


apply_vjp = jax.jit(lambda vjp_fn, g: vjp_fn(g))


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


def backward_sweep(stages: Stages, params, batch, layer_forward, layer_backward,
                   ones_word: bool = False, objective: str = "head_loss", cut_extra=None):
    """Forward through the stages keeping each layer's VJP, then back from the head's objective.

    layer_forward(module) -> fn(layer params, x) -> (y, vjp_fn, intermediates, aux);
    layer_backward(vjp_fn, aux, g_y) -> (g_params, g_x, extra). A bucketed layer runs as its run
    module on padded params; its intermediates and g_params are cut to the real shapes, its extra
    by cut_extra(Padding, extra) (default: kept as run). objective: see `outer_full`.
    Returns (value, intermediates, grads, d value / d word embeds, {layer key: extra})."""
    p, outer_params = split_params(stages, params)
    forward, head, _ = outer_full(module_key(stages.outer), stages.outer, stages.prelude_args,
                                  ones_word, objective)
    x, prelude_vjp = forward(outer_params, batch)
    inter, saved = {}, []
    for module, pkey in stages.layers:
        run, layer_params, pad = run_layer(stages, module, p[pkey], tuple(x.shape))
        x, vjp_fn, inter_l, aux = layer_forward(run)(layer_params, x)
        inter[pkey] = inter_l if pad is None else pad.cut_intermediates(inter_l)
        saved.append((pkey, vjp_fn, aux, pad))
    loss, (g_outer, g) = head(outer_params, x, head_batch(stages, batch))
    grads, extra = {}, {}
    for pkey, vjp_fn, aux, pad in reversed(saved):
        g_params, g, extra[pkey] = layer_backward(vjp_fn, aux, g)
        grads[pkey] = g_params if pad is None else pad.cut_params(g_params)
        if pad is not None and cut_extra is not None:
            extra[pkey] = cut_extra(pad, extra[pkey])
    g_outer_prelude, g_word = apply_vjp(prelude_vjp, g)
    g_outer = jax.tree_util.tree_map(jnp.add, g_outer, g_outer_prelude)
    grads.update(g_outer["params"])
    return loss, inter, {"params": {k: grads[k] for k in p}}, g_word, extra
