"""The proxy registry and the per-architecture context every proxy is computed from.

A proxy is `fn(ctx: ArchContext) -> float`, registered with `@register_proxy("name")` (which records
what it needs, e.g. `needs_hvp=True`), one file per proxy in this package. The context builds what proxies share lazily and once per architecture:
the model, its parameters (fixed init seed), the full-tensor forward intermediates, the backward
pass (G, J and per-channel Fisher of every linear layer), the Hessian-gradient product, the
data-free Synflow gradients, proxy-defined shared passes (`cached`), and the compact six proxy inputs.
It also records how long each shared pass took, so every proxy's `seconds_per_arch` includes the
passes it used, as if it had been computed alone (XLA compilation of the architecture included).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import (
    Callable,
    Dict,
    FrozenSet,
    Hashable,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)

import jax
import jax.numpy as jnp
import numpy as np

from lpzero_jax import inputs as proxy_inputs
from lpzero_jax import runtime
from lpzero_jax.benchmarks.base import Arch
from lpzero_jax.engine import passes, sweep
from lpzero_jax.families.base import check_fits, check_token_ids
from lpzero_jax.proxies import common, whole_model
from lpzero_jax.registry import Registry

ProxyFn = Callable[["ArchContext"], float]

# The random factors of a zero-cost score: the initial weights (drawn from config.seed) and the
# mini-batch (also drawn from config.seed in a run; the sensitivity study varies them apart).
FACTORS: FrozenSet[str] = frozenset(("init", "batch"))
WEIGHTS_ONLY: FrozenSet[str] = frozenset(("init",))  # reads the initial weights, not the batch
SHAPES_ONLY: FrozenSet[str] = frozenset()  # counted from shapes: neither factor


def data_free_pass_factors(family) -> FrozenSet[str]:
    """Factors of the data-free Synflow pass (|params|, all-ones word embeddings): the batch
    enters only through its shape when the family's objective is the sum of the outputs, and
    through the loss's targets when it is the proxy loss."""
    return WEIGHTS_ONLY if family.synflow_objective == "output_sum" else FACTORS


# The shared passes an ArchContext may release once no proxy still to be scored reads them
# (`ArchContext.release`): the ones that hold per-architecture tensors of the size of the
# activations or of the parameters. The rest (model, shapes, parameters, batch, small per-proxy
# stages) stay until the architecture is done.
RELEASABLE: FrozenSet[str] = frozenset((
    "backward", "forward", "hvp", "synflow", "linear_output_sums",
    "inputs_weights", "inputs_forward", "inputs_backward"))
# What proxies declare as `Proxy.passes` (a subset of RELEASABLE each):
NO_PASS: FrozenSet[str] = frozenset()  # shapes, initial weights, or small stages of its own
GRADIENTS: FrozenSet[str] = frozenset(("backward",))  # G, J, Fisher, positives
ACTIVATIONS: FrozenSet[str] = frozenset(("backward", "forward"))  # the intermediates: the backward's, else a forward
HESSIAN: FrozenSet[str] = frozenset(("backward", "hvp"))
SYNFLOW: FrozenSet[str] = frozenset(("synflow",))
COMPACT_INPUTS: FrozenSet[str] = frozenset(("inputs_weights", "inputs_forward", "inputs_backward"))


@dataclasses.dataclass(frozen=True)
class Proxy:
    """A proxy as registered: `fn(ctx) -> float` and what it needs beyond the plain passes.

    needs_hvp: it calls `ctx.hessian_gradient_product()`; when one is scored, the backward pass and
    the HVP are compiled as one program (see `ArchContext.fuse_hvp`).
    factors: which of the run's random factors its value depends on besides the architecture:
    "init" (the initial weights of config.seed) and "batch" (the mini-batch): a subset of
    FACTORS, or a function of the family giving one (e.g. a data-free pass that reads the batch
    only for its shape in some families). The sensitivity study computes a proxy once per value
    of the factors it reads; tests/proxies/test_factors.py checks the declarations.
    passes: the RELEASABLE shared passes it may read (None: not declared, so no pass is released
    while it is still to be scored); the rank loop scores an architecture's proxies grouped by
    pass and releases each pass after its last reader (`release_plan`); tests/proxies/test_passes.py
    checks the declarations."""

    fn: ProxyFn
    needs_hvp: bool = False
    factors: Union[FrozenSet[str], Callable[[object], FrozenSet[str]]] = FACTORS
    passes: Optional[FrozenSet[str]] = None

    def __call__(self, ctx: "ArchContext") -> float:
        """fn(ctx), with the host's BLAS/LAPACK single-threaded (`common.single_threaded_blas`)."""
        with common.single_threaded_blas():
            return self.fn(ctx)

    def factors_for(self, family) -> FrozenSet[str]:
        """The factors this proxy's value depends on for architectures of `family`."""
        out = frozenset(self.factors(family) if callable(self.factors) else self.factors)
        if not out <= FACTORS:
            raise ValueError(f"proxy factors {sorted(out)}: expected a subset of {sorted(FACTORS)}")
        return out


PROXIES: Registry[Proxy] = Registry("proxy")


def register_proxy(name: str, needs_hvp: bool = False,
                   factors: Union[FrozenSet[str], Callable[[object], FrozenSet[str]]] = FACTORS,
                   passes: Optional[FrozenSet[str]] = None):
    """Decorator: registers `fn(ctx) -> float` under `name` as a `Proxy` with its needs, the
    random factors and the releasable passes it reads (see `Proxy`); returns `fn` unchanged."""
    if passes is not None and not set(passes) <= RELEASABLE:
        raise ValueError(f"proxy {name}: passes {sorted(set(passes) - RELEASABLE)} are not "
                         f"among {sorted(RELEASABLE)}")

    def decorator(fn: ProxyFn) -> ProxyFn:
        PROXIES.register(name)(Proxy(fn, needs_hvp, factors,
                                     None if passes is None else frozenset(passes)))
        return fn

    return decorator


# The order in which `release_plan` groups proxies by the passes they read: the HVP's readers
# first (the backward is built with it), then the backward's and the forward's, then the
# data-free Synflow pass, then the compact inputs, then the proxies that read none of them. A
# pass is built when its first reader runs, so the big ones are alive one group at a time.
PASS_ORDER: Tuple[str, ...] = ("hvp", "backward", "forward", "linear_output_sums", "synflow",
                               "inputs_backward", "inputs_forward", "inputs_weights")


def release_plan(proxies: Mapping[str, Proxy], names: List[str]) -> List[Tuple[str, Tuple[str, ...]]]:
    """[(proxy name, passes to release after it)] for scoring `names` (keys of `proxies`) on one
    architecture: the HVP's readers first (`needs_hvp`), then grouped by the first pass of
    PASS_ORDER they read (undeclared ones first, in the given order within a group); a RELEASABLE
    pass is released after its last declared reader, unless a proxy still to come is undeclared
    (it may read anything). Values do not depend on the order: each pass is computed once, from
    the same parameters and batch, whoever reads it first."""
    def group(name: str) -> int:
        passes = proxies[name].passes
        if passes is None:
            return -1
        return min((PASS_ORDER.index(p) for p in passes), default=len(PASS_ORDER))

    order = sorted(names, key=lambda n: (not proxies[n].needs_hvp, group(n)))  # stable
    plan, read, released = [], set(), set()
    for i, name in enumerate(order):
        passes = proxies[name].passes
        read |= RELEASABLE if passes is None else passes  # an undeclared one may read any
        later = [proxies[n].passes for n in order[i + 1:]]
        if any(p is None for p in later):
            plan.append((name, ()))
            continue
        still = set().union(*later)
        now = tuple(sorted(read - still - released))
        released.update(now)
        plan.append((name, now))
    return plan


# A derived proxy is computed after every architecture has been scored, from other proxies'
# columns and the ground truth (e.g. ZeroLM with alpha fitted on a sample of the benchmark):
# fn(columns {proxy: scores [N]}, truth [N], config) -> {row name: (scores [N], note)}.
DerivedFn = Callable[[Dict[str, np.ndarray], np.ndarray, object], Dict[str, Tuple[np.ndarray, str]]]
DERIVED: Registry[DerivedFn] = Registry("derived proxy")


def register_derived(name: str):
    """Decorator: registers a derived-proxy function (see `DerivedFn`)."""
    return DERIVED.register(name)


@functools.lru_cache(maxsize=8)
def _compiled_forward(family, model_config: Hashable):
    model = family.build_model(model_config)

    def forward(params, batch):
        embeds = model.apply(params, batch["input_ids"], method=model.embed)
        loss, state = model.apply(params, embeds, batch, method=model.proxy_loss,
                                  mutable=["intermediates"])
        return loss, state.get("intermediates", {})

    return jax.jit(forward)


class ArchContext:
    """Everything about one architecture that proxies may need, computed on first use."""

    def __init__(self, family, arch: Arch, config, batch: Mapping[str, np.ndarray],
                 inputs_loader: Optional[Callable[["ArchContext"], object]] = None,
                 fuse_hvp: bool = False, layer_by_layer: bool = True):
        """fuse_hvp: compute the backward pass and the Hessian-gradient product as one program
        (set it when an HVP proxy will be scored; each then shares that program's seconds).
        layer_by_layer: run the forward and gradient passes on the engine's stages where
        `engine.passes.stages_for` allows (compiled once per distinct (bucketed) stage; fuse_hvp
        does not apply there); False: one whole-model program per architecture (the reference)."""
        self.family = family
        self.fuse_hvp = fuse_hvp
        self.layer_by_layer = layer_by_layer
        self.arch = arch
        self.config = config
        self.batch = batch
        self.model_config = family.model_config(arch, config)
        check_token_ids(family, (batch or {}).get("input_ids"), family.vocab_size(self.model_config),
                        f"architecture {arch.arch_id}")
        self._inputs_loader = inputs_loader
        self._cache: Dict[str, object] = {}
        self.pass_seconds: Dict[str, float] = {}  # shared pass -> its own seconds
        self.own_seconds = 0.0  # the last timed_call's seconds outside the shared passes
        self._used: set = set()

    # --- shared-pass bookkeeping ----------------------------------------------------------------------
    def _shared(self, name: str, build: Callable[[], object]):
        """The shared pass `name`, built once; its seconds exclude the passes built inside it."""
        self._used.add(name)
        if name not in self._cache:
            if name in RELEASABLE:  # freed heap handed back first: a big pass then adds its own
                runtime.release_host_memory(growth=1.0)  # tensors to what is live, not to freed pages
            nested_before = sum(self.pass_seconds.values())
            t = time.perf_counter()
            value = build()
            jax.block_until_ready(value)
            nested = sum(self.pass_seconds.values()) - nested_before
            self.pass_seconds[name] = time.perf_counter() - t - nested
            self._cache[name] = value
        return self._cache[name]

    def timed_call(self, fn: ProxyFn):
        """Runs a proxy; returns (value, seconds incl. the shared passes it used). Its exclusive
        seconds (the call minus the shared passes built during it) go to `own_seconds`."""
        self._used = set()
        before = dict(self.pass_seconds)
        t = time.perf_counter()
        value = fn(self)
        elapsed = time.perf_counter() - t
        reused = sum(before[k] for k in self._used if k in before)
        built = sum(v for k, v in self.pass_seconds.items() if k not in before)
        self.own_seconds = max(elapsed - built, 0.0)
        return value, elapsed + reused

    def release(self, names) -> None:
        """Drops these shared passes' values (a later use builds them again, with the same values);
        their recorded seconds stay."""
        for name in names:
            self._cache.pop(name, None)

    def cached(self, name: str, build: Callable[[], object]):
        """A proxy-defined shared pass: `build()` once per architecture, timed and shared like the others."""
        return self._shared(name, build)

    # --- shared passes -----------------------------------------------------------------------------
    @property
    def model(self):
        return self._shared("model", lambda: self.family.build_model(self.model_config))

    @property
    def param_shapes(self):
        return self._shared("param_shapes", lambda: self.family.param_shapes(self.model_config))

    @property
    def params(self):
        def allocate():
            check_fits(self.family, self.model_config, self.config, self.batch,
                       f"architecture {self.arch.arch_id}")
            return self.family.arch_params(self.model_config, self.config)

        return self._shared("init", allocate)

    def device_batch(self) -> Dict[str, jax.Array]:
        return self._shared("batch", lambda: {k: jnp.asarray(v) for k, v in self.batch.items()})

    # Dependencies are fetched before a pass's timer starts, so a pass's seconds are its own.
    def intermediates(self):
        """Full-tensor forward intermediates {'layer_i': {...: {'A'|'H'|'S': (tensors,)}}}: the
        backward pass's when it has run (its forward gives the same tensors; no second forward),
        else a forward pass of their own."""
        if "backward" in self._cache:
            self._used.add("backward")
            return self._cache["backward"][1]
        params, batch = self.params, self.device_batch()
        staged_model = (self.family.stages(self.model_config) if self.layer_by_layer
                        else None)
        if staged_model is not None:  # compiled per (bucketed) layer, shared across architectures
            return self._shared("forward",
                               lambda: sweep.forward_full(staged_model, params, batch, False)[1])
        fn = _compiled_forward(self.family, self.model_config)
        return self._shared("forward", lambda: fn(params, batch)[1])

    def keep_residual_bytes(self) -> Optional[int]:
        """How many bytes of layer VJP residuals the staged gradient passes keep before they
        recompute layers (`config.rank.keep_residuals_gb`; None or absent: all kept)."""
        gb = (self.config.get("rank") or {}).get("keep_residuals_gb")
        return None if gb is None else int(float(gb) * 2 ** 30)

    def _layerwise(self):
        """The model's stages when the zoo's gradient passes run on the engine
        (`engine.passes`: compiled once per distinct stage), else None."""
        if "layerwise" not in self._cache:
            self._cache["layerwise"] = (passes.stages_for(self.family, self.model_config,
                                                          self.param_shapes)
                                        if self.layer_by_layer else None)
        return self._cache["layerwise"]

    def _backward_pass(self):
        """compiled_backward's five outputs, then on the engine's stages the linear layers'
        positives (`passes.backward`), on the whole-model path {path: H g} when fused with the
        HVP."""
        params, batch = self.params, self.device_batch()
        staged_model = self._layerwise()
        if staged_model is not None:
            return self._shared("backward", lambda: passes.backward(
                self.family, staged_model, params, batch, self.keep_residual_bytes()))
        if self.fuse_hvp:
            paths = tuple(self.linear_paths())
            fn = whole_model.compiled_backward_hvp(self.family, self.model_config, paths)
        else:
            fn = whole_model.compiled_backward(self.family, self.model_config)
        return self._shared("backward", lambda: fn(params, batch))

    def backward(self):
        """(loss, intermediates, grads, d loss / d word embeddings) of the family's proxy loss."""
        return self._backward_pass()[:4]

    def grads(self):
        """d proxy loss / d params (the G tree of `backward`)."""
        return self.backward()[2]

    def linear_paths(self, select=None) -> List[Tuple[str, ...]]:
        """Paths of the 2-D proxy weights (the reference's Linear layers), optionally filtered."""
        return common.linear_weight_paths(self.family, self.param_shapes, select)

    def synflow_grads(self):
        """Gradient of the family's Synflow objective at |params| and all-ones word embeddings."""
        params, batch = self.params, self.device_batch()
        staged_model = passes.synflow_stages_for(self.family, self._layerwise())
        if staged_model is not None:
            return self._shared("synflow", lambda: passes.synflow_grads(
                self.family, staged_model, params, batch, self.keep_residual_bytes()))
        fn = whole_model.compiled_synflow(self.family, self.model_config)
        return self._shared("synflow", lambda: fn(params, batch))

    def hessian_gradient_product(self) -> Dict[Tuple[str, ...], jax.Array]:
        """{path: H g} over the linear proxy weights W, g = dL/dW (GraSP's Hessian-gradient product).

        H is the Hessian of the proxy loss w.r.t. those weights (the rest held fixed), as the
        reference's autograd.grad over the Linear weights.
        """
        staged_model = self._layerwise()
        if self.fuse_hvp and staged_model is None:
            return self._backward_pass()[5]
        paths = self.linear_paths()
        grads = common.flat_params(self.grads())
        vector = {p: jax.lax.stop_gradient(grads[p]) for p in paths}
        params, batch = self.params, self.device_batch()
        if staged_model is not None:
            return self._shared("hvp", lambda: passes.hessian_vector_product(
                staged_model, params, batch, vector))
        fn = whole_model.compiled_hvp(self.family, self.model_config)
        return self._shared("hvp", lambda: fn(params, batch, vector))

    def linear_fisher(self) -> Dict[Tuple[str, ...], jax.Array]:
        """{path of linear layer: Fisher information per output channel}, from the backward pass."""
        return self._backward_pass()[4]

    def linear_output_positives(self) -> Optional[Dict[Tuple[str, ...], np.ndarray]]:
        """{path of linear layer: [C] positive entries per output channel of the batch's first
        input} from the engine's backward pass; None on the whole-model path (no such output)."""
        if self._layerwise() is None:
            return None
        return self._backward_pass()[5]

    def proxy_inputs(self, needed=None):
        """Compact proxy inputs (CompactInputs) covering `needed` (default: all six), from the
        run's loader (the disk cache) if given, else extracted here."""

        needed = tuple(sorted(needed or proxy_inputs.INPUT_NAMES))
        level = proxy_inputs.level_for(needed)
        for have in ("backward", "forward", "weights"):  # a richer level already computed serves
            if f"inputs_{have}" in self._cache and set(needed) <= set(proxy_inputs.LEVELS[have]):
                return self._shared(f"inputs_{have}", lambda: None)
            if have == level:
                break
        if self._inputs_loader is None:
            cfg = self.config.inputs
            build = lambda: proxy_inputs.extract_proxy_inputs(  # noqa: E731
                self.family, self.model_config, self.params, self.batch, int(cfg.sample_size),
                int(cfg.sample_seed), needed=needed)
        else:
            build = lambda: self._inputs_loader(self, needed)  # noqa: E731
        return self._shared(f"inputs_{level}", build)
