"""The mode registry: each mode is `run(config, workdir)`."""

from lpzero_jax.registry import Registry

MODES = Registry("mode")


def register_mode(name: str):
    return MODES.register(name)
