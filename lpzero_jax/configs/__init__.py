"""The run configs shipped with the package: `get_config()` of each family's main job, and the
defaults every config starts from (`base_config`).

`lpzero --config=gpt2` (or flexibert, llama, smollm) runs one of them from any directory; the
repository's `experiments/<name>.py` files are the same configs (they import these).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ml_collections import ConfigDict

from lpzero_jax.configs.base import base_config, subnet_search_config

NAMES = ("flexibert", "gpt2", "llama", "smollm")

__all__ = ["NAMES", "base_config", "config_path", "shipped_config", "subnet_search_config"]


def config_path(name: str) -> Path:
    """The file of a shipped config by family name; KeyError naming the known ones otherwise."""
    if name not in NAMES:
        raise KeyError(f"no shipped config {name!r}; known: {', '.join(NAMES)}")
    return Path(__file__).resolve().parent / f"{name}.py"


def shipped_config(name: str) -> ConfigDict:
    """`get_config()` of the shipped config `name` (what `lpzero --config=<name>` runs)."""
    config_path(name)  # KeyError naming the known ones
    return importlib.import_module(f"lpzero_jax.configs.{name}").get_config()
