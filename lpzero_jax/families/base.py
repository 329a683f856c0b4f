"""The glue between a benchmark and its model: what a mode asks a family for.

A mode never knows which family it runs on. It asks the family (looked up by `config.family` in
`FAMILIES`) for the architectures, a model per architecture, initial parameters, the text batch,
and which parameters count as the proxy inputs W and G.

Model contract (every family's Flax module):
  embed(input_ids) -> word embeddings: the tensor the Jacobian J is taken against;
  proxy_loss(word_embeds, batch) -> scalar: the loss whose gradients are G (and J);
  init_all(input_ids): touches every submodule (used to obtain parameter shapes);
  intermediates A, H, S sown into the `intermediates` collection under modules named `layer_<i>`.
"""

from __future__ import annotations

import functools
from typing import Any, Dict, Hashable, List, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from lpzero_jax.benchmarks.base import Arch
from lpzero_jax.models import init as model_init
from lpzero_jax.registry import Registry


class Family:
    """Base class; subclasses set `name` and implement the abstract methods."""

    name: str = ""
    init_std: float = 0.02

    # --- abstract -----------------------------------------------------------------------------
    def load_benchmark(self, config: ConfigDict) -> List[Arch]:
        raise NotImplementedError

    def model_config(self, arch: Arch, config: ConfigDict) -> Hashable:
        """The hashable model configuration of an architecture under this run's config."""
        raise NotImplementedError

    def build_model(self, model_config: Hashable) -> nn.Module:
        raise NotImplementedError

    def make_batch(self, config: ConfigDict) -> Dict[str, np.ndarray]:
        """The real-text mini-batch the proxies see: at least `input_ids` [B, S] int32."""
        raise NotImplementedError

    def is_proxy_weight(self, path: Tuple[str, ...]) -> bool:
        """Whether the parameter at `path` is one of the weight matrices W (and its gradient G)."""
        raise NotImplementedError

    def stages(self, model_config: Hashable):
        """The model cut into compile-once stages (lpzero_jax.staged.Stages), or None to compile
        the whole model per architecture."""
        return None

    # --- shared -------------------------------------------------------------------------------
    def init_rule(self, path, shape, rng):
        """Family-specific initial value of a leaf, or None for the default N(0, init_std)/0/1."""
        return None

    def param_shapes(self, model_config: Hashable):
        """Parameter shapes (ShapeDtypeStruct pytree) without running or compiling the model."""
        return _param_shapes(self, model_config)

    def init_params(self, model_config: Hashable, seed: int):
        """Deterministic initial parameters: same seed, same values, whatever the order of archs."""
        shapes = self.param_shapes(model_config)
        return model_init.init_from_shapes(shapes, seed, self.init_rule,
                                           model_init.default_rule(self.init_std))

    def count_params(self, model_config: Hashable) -> int:
        return model_init.count_params(self.param_shapes(model_config))


@functools.lru_cache(maxsize=64)
def _param_shapes(family: Family, model_config: Hashable):
    model = family.build_model(model_config)
    ids = jnp.zeros((1, 8), jnp.int32)
    return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), ids, method=model.init_all))


FAMILIES: Registry[Family] = Registry("family")


def get_family(name: str) -> Family:
    """The registered family instance (importing the family modules registers them)."""
    import lpzero_jax.families  # noqa: F401  (registers the built-in families)

    return FAMILIES.get(name)
