"""Scale-out with JAX's own machinery: hosts via jax.distributed, local devices via jax.sharding.

- Hosts: `initialize(config)` calls `jax.distributed.initialize` when
  `config.distributed.coordinator_address` is set; `host_shard` gives each process its share of the
  architectures for input extraction (the shared input store then holds all of them).
- Local devices: `map_on_devices` runs per-architecture work round-robin on every local device, one
  worker thread per device (jitted calls release the GIL, so devices work concurrently);
  `arch_mesh` is a 1-D Mesh over the local devices, used by the genome program to shard candidate
  evaluation over architectures (`expression/program.py`). Architectures are never split across
  devices, so sharded results equal single-device results exactly.
"""

from __future__ import annotations

import concurrent.futures
from typing import Callable, List, Optional, Sequence, TypeVar

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh

T = TypeVar("T")
R = TypeVar("R")


def initialize(config) -> None:
    """jax.distributed.initialize from `config.distributed` (no-op without a coordinator)."""
    dist = config.get("distributed")
    if not dist or not dist.get("coordinator_address"):
        return
    jax.distributed.initialize(coordinator_address=dist.coordinator_address,
                               num_processes=int(dist.num_processes),
                               process_id=int(dist.process_id))
    logging.info("jax.distributed: process %d of %d, %d local / %d global devices",
                 jax.process_index(), jax.process_count(), jax.local_device_count(),
                 jax.device_count())


def host_shard(items: Sequence[T]) -> List[T]:
    """This process's share (round-robin) of `items`."""
    return list(items[jax.process_index()::jax.process_count()])


def local_devices(limit: Optional[int] = None) -> List[jax.Device]:
    devices = jax.local_devices()
    return devices[:limit] if limit else devices


def map_on_devices(fn: Callable[[T], R], items: Sequence[T],
                   devices: Optional[Sequence[jax.Device]] = None) -> List[R]:
    """[fn(x) for x in items], item i computed on device i % D (in order of items)."""
    devices = list(devices or local_devices())
    if len(devices) == 1:
        with jax.default_device(devices[0]):
            return [fn(x) for x in items]

    def worker(d: int) -> List[tuple]:
        out = []
        with jax.default_device(devices[d]):
            for i in range(d, len(items), len(devices)):
                out.append((i, fn(items[i])))
        return out

    results: List[Optional[R]] = [None] * len(items)
    with concurrent.futures.ThreadPoolExecutor(len(devices)) as pool:
        for part in pool.map(worker, range(len(devices))):
            for i, r in part:
                results[i] = r
    return results  # type: ignore[return-value]


def arch_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
    """A 1-D mesh named 'archs' over the given (default: all local) devices."""
    return Mesh(np.asarray(list(devices or local_devices())), ("archs",))
