"""The proxy registry and the per-architecture context every proxy is computed from.

A proxy is `fn(ctx: ArchContext) -> float`, registered with `@register_proxy("name")`, one file per
proxy in this package. The context builds what proxies share lazily and once per architecture:
the model, its parameters (fixed init seed), the full-tensor forward intermediates, and the compact
six proxy inputs. It also records how long each shared stage took, so every proxy's
`seconds_per_arch` includes the stages it used, as if it had been computed alone.
"""

from __future__ import annotations

import functools
import time
from typing import Callable, Dict, Hashable, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from lpzero_jax.benchmarks.base import Arch
from lpzero_jax.registry import Registry

ProxyFn = Callable[["ArchContext"], float]
PROXIES: Registry[ProxyFn] = Registry("proxy")


def register_proxy(name: str):
    """Decorator: registers `fn(ctx) -> float` under `name`."""
    return PROXIES.register(name)


@functools.lru_cache(maxsize=8)
def _compiled_forward(family, model_config: Hashable):
    model = family.build_model(model_config)

    def forward(params, batch):
        embeds = model.apply(params, batch["input_ids"], method=model.embed)
        loss, state = model.apply(params, embeds, batch, method=model.proxy_loss,
                                  mutable=["intermediates"])
        return loss, state.get("intermediates", {})

    return jax.jit(forward)


@functools.lru_cache(maxsize=8)
def _compiled_forward_backward(family, model_config: Hashable):
    from lpzero_jax.inputs import forward_backward

    model = family.build_model(model_config)
    return jax.jit(lambda params, batch: forward_backward(model, params, batch))


class ArchContext:
    """Everything about one architecture that proxies may need, computed on first use."""

    def __init__(self, family, arch: Arch, config, batch: Mapping[str, np.ndarray],
                 inputs_loader: Optional[Callable[["ArchContext"], object]] = None):
        self.family = family
        self.arch = arch
        self.config = config
        self.batch = batch
        self.model_config = family.model_config(arch, config)
        self._inputs_loader = inputs_loader
        self._cache: Dict[str, object] = {}
        self.stage_seconds: Dict[str, float] = {}
        self._used: set = set()

    # --- stage bookkeeping ----------------------------------------------------------------------
    def _stage(self, name: str, build: Callable[[], object]):
        self._used.add(name)
        if name not in self._cache:
            t = time.perf_counter()
            value = build()
            jax.block_until_ready(value)
            self.stage_seconds[name] = time.perf_counter() - t
            self._cache[name] = value
        return self._cache[name]

    def timed_call(self, fn: ProxyFn):
        """Runs a proxy; returns (value, seconds incl. the shared stages it used)."""
        self._used = set()
        before = dict(self.stage_seconds)
        t = time.perf_counter()
        value = fn(self)
        elapsed = time.perf_counter() - t
        built_now = sum(v for k, v in self.stage_seconds.items() if k not in before)
        reused = sum(before[k] for k in self._used if k in before)
        return value, elapsed + reused

    # --- stages ---------------------------------------------------------------------------------
    @property
    def model(self):
        return self._stage("model", lambda: self.family.build_model(self.model_config))

    @property
    def param_shapes(self):
        return self._stage("param_shapes", lambda: self.family.param_shapes(self.model_config))

    @property
    def params(self):
        return self._stage("init", lambda: self.family.init_params(self.model_config,
                                                                   int(self.config.seed)))

    def device_batch(self) -> Dict[str, jax.Array]:
        return self._stage("batch", lambda: {k: jnp.asarray(v) for k, v in self.batch.items()})

    def intermediates(self):
        """Full-tensor forward intermediates {'layer_i': {...: {'A'|'H'|'S': (tensors,)}}}."""
        def build():
            stages = self.family.stages(self.model_config)
            if stages is not None:  # compiled per layer, shared across architectures
                from lpzero_jax.staged import forward_full

                return forward_full(stages, self.params, self.device_batch(), False)[1]
            fn = _compiled_forward(self.family, self.model_config)
            return fn(self.params, self.device_batch())[1]
        return self._stage("forward", build)

    def backward(self):
        """(loss, intermediates, grads, d loss / d word embeddings) of the family's proxy loss."""
        def build():
            stages = self.family.stages(self.model_config)
            if stages is not None:
                from lpzero_jax.staged import forward_full

                return forward_full(stages, self.params, self.device_batch(), True)
            fn = _compiled_forward_backward(self.family, self.model_config)
            return fn(self.params, self.device_batch())
        return self._stage("backward", build)

    def proxy_inputs(self, needed=None):
        """Compact proxy inputs (CompactInputs) covering `needed` (default: all six), from the
        run's loader (the disk cache) if given, else extracted here."""
        from lpzero_jax import inputs as proxy_inputs

        needed = tuple(sorted(needed or proxy_inputs.INPUT_NAMES))
        level = proxy_inputs.level_for(needed)
        for have in ("backward", "forward", "weights"):  # a richer level already computed serves
            if f"inputs_{have}" in self._cache and set(needed) <= set(proxy_inputs.LEVELS[have]):
                return self._stage(f"inputs_{have}", lambda: None)
            if have == level:
                break
        if self._inputs_loader is None:
            cfg = self.config.inputs
            build = lambda: proxy_inputs.extract_proxy_inputs(  # noqa: E731
                self.family, self.model_config, self.params, self.batch, int(cfg.sample_size),
                int(cfg.sample_seed), needed=needed)
        else:
            build = lambda: self._inputs_loader(self, needed)  # noqa: E731
        return self._stage(f"inputs_{level}", build)
