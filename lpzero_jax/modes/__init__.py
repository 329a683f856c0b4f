"""Modes of `lpzero_jax.main`, one file each, named as the mode: `Mode`s registered in MODES."""

from lpzero_jax.modes.base import MODES, Mode, register_mode
from lpzero_jax.modes import (bench, joint_search, rank, search, sensitivity, study,  # noqa: F401
                              subnet_search, transfer)

__all__ = ["MODES", "Mode", "register_mode"]
