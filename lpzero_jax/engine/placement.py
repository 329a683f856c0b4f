"""Where the extraction's small "host steps" run: NumPy on the host, or device programs.

On the CPU some steps of the per-architecture extraction are fastest in NumPy (GPT-2's embedding
and positions, J's compaction, the head's padded tables: no XLA program per embedding shape). On
an accelerator the same steps would copy whole embedding tables device->host->device for every
architecture, so they run as device programs there. Each such step asks `host_steps_on_device()`
once and takes one of its two implementations; the choice follows the backend
(`jax.default_backend() != "cpu"`) unless a `host_steps(...)` block forces it (tests run the
device path on the CPU and compare values). No global state: the forced choice is a context
variable, reset when the block ends.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator, Optional

import jax

PLACES = ("host", "device")

_FORCED: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar(
    "lpzero_jax_host_steps", default=None)


def host_steps_on_device() -> bool:
    """True when the host steps should run as device programs: forced by `host_steps("device")`,
    else whenever the default backend is not the CPU."""
    forced = _FORCED.get()
    if forced is not None:
        return forced == "device"
    return jax.default_backend() != "cpu"


@contextlib.contextmanager
def host_steps(place: str) -> Iterator[None]:
    """Runs the host steps inside the block on `place` ('host': NumPy, 'device': device programs)
    whatever the backend."""
    if place not in PLACES:
        raise ValueError(f"host steps run on one of {PLACES}, not {place!r}")
    token = _FORCED.set(place)
    try:
        yield
    finally:
        _FORCED.reset(token)
