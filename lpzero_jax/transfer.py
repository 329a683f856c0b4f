"""Explicit host<->device copies of the hot loops, counted per block of work.

Every copy the per-architecture extraction and the candidate evaluation make goes through
`to_device` (`jax.device_put`) or `to_host` (`jax.device_get`), so that they run under
`jax.transfer_guard("disallow")` (tested) and a `Transfers` counter can say how many copies and
bytes one architecture costs (`bench`). On an accelerator an implicit copy (a NumPy array passed
to a jitted function, `np.asarray` of a device array, `float()` of a device scalar) is a hidden
synchronous round trip; here each one is visible and counted.

The counter is not global state: `counting()` binds a fresh `Transfers` to a context variable for
the duration of a `with` block (nested blocks each count their own copies, the outer ones too).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from typing import Any, Iterator, Tuple

import jax
import numpy as np


@dataclasses.dataclass
class Transfers:
    """Copies made inside one `counting()` block: host->device (`to_device`) and device->host
    (`to_host`) calls, the arrays they moved and their bytes."""

    to_device_calls: int = 0
    to_device_arrays: int = 0
    to_device_bytes: int = 0
    to_host_calls: int = 0
    to_host_arrays: int = 0
    to_host_bytes: int = 0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


_ACTIVE: contextvars.ContextVar[Tuple[Transfers, ...]] = contextvars.ContextVar(
    "lpzero_jax_transfers", default=())


@contextlib.contextmanager
def counting() -> Iterator[Transfers]:
    """Counts the `to_device` / `to_host` copies made inside the block (and in enclosing blocks)."""
    counter = Transfers()
    token = _ACTIVE.set(_ACTIVE.get() + (counter,))
    try:
        yield counter
    finally:
        _ACTIVE.reset(token)


def _host_leaves(tree) -> Tuple[int, int]:
    """(arrays, bytes) of the leaves of `tree` that are not already device arrays."""
    n = b = 0
    for leaf in jax.tree_util.tree_leaves(tree):
        if not isinstance(leaf, jax.Array):
            n += 1
            b += int(np.asarray(leaf).nbytes)
    return n, b


def to_device(tree: Any) -> Any:
    """`jax.device_put(tree)`, counted (leaves already on the device are neither copied nor
    counted)."""
    counters = _ACTIVE.get()
    if counters:
        n, b = _host_leaves(tree)
        if n:
            for c in counters:
                c.to_device_calls += 1
                c.to_device_arrays += n
                c.to_device_bytes += b
    return jax.device_put(tree)


def to_host(tree: Any) -> Any:
    """`jax.device_get(tree)`: NumPy arrays for every device-array leaf, all copies started
    before the first is waited for; counted (host leaves pass through uncounted)."""
    counters = _ACTIVE.get()
    if counters:
        leaves = [x for x in jax.tree_util.tree_leaves(tree) if isinstance(x, jax.Array)]
        if leaves:
            b = sum(int(x.nbytes) for x in leaves)
            for c in counters:
                c.to_host_calls += 1
                c.to_host_arrays += len(leaves)
                c.to_host_bytes += b
    return jax.device_get(tree)
