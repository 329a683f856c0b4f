"""Modes of `lpzero_jax.main`, one file each, named as the mode: `Mode`s registered in MODES."""

from lpzero_jax.modes import (  # noqa: F401
                              bench,
                              few_shot,
                              fit_ranker,
                              joint_search,
                              predict,
                              rank,
                              search,
                              sensitivity,
                              study,
                              subnet_search,
                              train_adapter,
                              transfer,
)
from lpzero_jax.modes.base import MODES, Mode, register_mode

__all__ = ["MODES", "Mode", "register_mode"]
