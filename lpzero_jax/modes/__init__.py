"""Modes of `lpzero_jax.main`: thin functions of (config, workdir), registered in MODES."""

from lpzero_jax.modes.base import MODES, register_mode
from lpzero_jax.modes import bench, few_shot, multi, rank, search, study, subnet_search  # noqa: F401

__all__ = ["MODES", "register_mode"]
