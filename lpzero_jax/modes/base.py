"""The mode registry: each mode is a `Mode`, callable as `mode(config, workdir)`, with its own checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

from lpzero_jax.registry import Registry

MODES = Registry("mode")


def _nothing(*_args) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class Mode:
    """A mode of `lpzero_jax.main`: `run(config, workdir)` and the checks made before any work.

    validate(config): the mode's own settings alone (cheap; reads no data file);
    check_archs(config, archs): the loaded benchmark against those settings.
    """

    name: str
    run: Callable[[Any, Path], Any]
    validate: Callable[[Any], None] = _nothing
    check_archs: Callable[[Any, Sequence], None] = _nothing

    def __call__(self, config, workdir: Path):
        return self.run(config, workdir)


def register_mode(name: str, validate: Callable[[Any], None] = _nothing,
                  check_archs: Callable[[Any, Sequence], None] = _nothing):
    """Decorator: registers `run(config, workdir)` as mode `name` with its checks."""
    def decorate(run):
        MODES.register(name)(Mode(name, run, validate, check_archs))
        return run

    return decorate
