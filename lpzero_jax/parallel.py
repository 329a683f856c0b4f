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
import contextlib
import time
from typing import Callable, List, Optional, Sequence, TypeVar

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh

T = TypeVar("T")
R = TypeVar("R")


class HostFailure(RuntimeError):
    """Another process of a multi-host job failed, vanished or did not arrive in time."""


def initialize(config) -> None:
    """jax.distributed.initialize from `config.distributed`.

    Without a coordinator address nothing is called on a single host; on a cluster JAX finds the
    coordinator, process count and index itself (SLURM, Cloud TPU VMs) when
    `distributed.auto_detect` is set. Heartbeat and shutdown timeouts come from the config.
    """
    dist = config.get("distributed")
    if not dist or not (dist.get("coordinator_address") or dist.get("auto_detect")):
        return
    kwargs = {}
    if dist.get("coordinator_address"):
        kwargs = dict(coordinator_address=dist.coordinator_address,
                      num_processes=int(dist.num_processes), process_id=int(dist.process_id))
    jax.distributed.initialize(
        **kwargs,
        initialization_timeout=int(dist.get("initialization_timeout_s") or 300),
        heartbeat_timeout_seconds=int(dist.get("heartbeat_timeout_s") or 100),
        shutdown_timeout_seconds=int(dist.get("shutdown_timeout_s") or 300))
    logging.info("jax.distributed: process %d of %d, %d local / %d global devices",
                 jax.process_index(), jax.process_count(), jax.local_device_count(),
                 jax.device_count())


def host_shard(items: Sequence[T]) -> List[T]:
    """This process's share (round-robin) of `items`."""
    return list(items[jax.process_index()::jax.process_count()])


def is_writer() -> bool:
    """Whether this process writes the run's reports (process 0; every process of a single-host
    run)."""
    return jax.process_index() == 0


def sync_hosts(tag: str, failure: Optional[BaseException] = None,
               timeout_s: float = 86400.0, poll_s: float = 0.2) -> None:
    """Barrier over every process of a jax.distributed job that also carries errors.

    Each process posts "ok" or its own failure under `lpzero/<tag>/<index>` in the coordination
    service's key-value store, then waits until every process has posted. A process whose share
    failed re-raises its own error at once; the others raise HostFailure naming that process and
    its error (instead of waiting forever in a collective), and so do they when a process stops
    being alive or `timeout_s` passes. A no-op (apart from re-raising `failure`) on one process.
    """
    count = jax.process_count()
    if count == 1:
        if failure is not None:
            raise failure
        return
    from jax._src import distributed

    client = distributed.global_state.client
    me = jax.process_index()
    status = "ok" if failure is None else f"{type(failure).__name__}: {failure}"
    client.key_value_set(f"lpzero/{tag}/{me}", status)
    if failure is not None:
        raise failure
    deadline = time.monotonic() + timeout_s
    while True:
        try:  # liveness BEFORE the keys: a process that posted and then left is not lost
            alive = set(client.get_live_nodes(list(range(count))))
        except Exception:  # noqa: BLE001  (older runtimes: rely on the timeout alone)
            alive = None
        posted = {int(k.rsplit("/", 1)[1]): v for k, v in client.key_value_dir_get(f"lpzero/{tag}/")}
        failed = {int(k.rsplit("/", 1)[1]): v for k, v in client.key_value_dir_get("lpzero/failed/")}
        for index, value in sorted({**posted, **failed}.items()):
            if value != "ok":
                raise HostFailure(f"process {index} of {count} failed at {tag!r}: {value}")
        if len(posted) == count:
            return
        waiting = sorted(set(range(count)) - set(posted))
        dead = [i for i in waiting if alive is not None and i not in alive]
        if dead:
            raise HostFailure(f"process(es) {dead} of {count} stopped before {tag!r}; rerun the "
                              "job: what every process already stored is kept")
        if time.monotonic() > deadline:
            raise HostFailure(f"processes {waiting} of {count} did not reach {tag!r} within "
                              f"{timeout_s:.0f} s (distributed.barrier_timeout_s)")
        time.sleep(poll_s)


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


def exit_if_distributed(error: BaseException, status: int = 1, grace_s: float = 120.0) -> None:
    """In a multi-process job, logs `error` with its traceback, posts it for the other processes
    and ends this process with exit code `status` at once.

    JAX's own exit handshake (a shutdown barrier) would otherwise abort every process with a fatal
    runtime error once a peer has failed or died. The process where the failure started waits (up to
    `grace_s`) until its peers have read the error and left: once it is gone the coordination
    service declares it dead and aborts the others before they could name the cause. A process
    leaving because of a peer's failure (HostFailure) leaves at once.
    """
    if jax.process_count() == 1:
        return
    import os
    import sys

    me, count = jax.process_index(), jax.process_count()
    logging.error("process %d of %d failed", me, count, exc_info=error)
    try:  # tell the others why, so that they fail naming this cause instead of a lost peer
        from jax._src import distributed

        client = distributed.global_state.client
        client.key_value_set(f"lpzero/failed/{me}", f"{type(error).__name__}: {error}")
        deadline = time.monotonic() + (0 if isinstance(error, HostFailure) else grace_s)
        while time.monotonic() < deadline:
            others = set(client.get_live_nodes(list(range(count)))) - {me}
            if not others:
                break
            time.sleep(0.2)
    except Exception:  # noqa: BLE001  (the coordinator may be gone already)
        pass
    logging.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def barrier_timeout(config) -> float:
    """Seconds a host waits for the others at a barrier (`distributed.barrier_timeout_s`)."""
    return float((config.get("distributed") or {}).get("barrier_timeout_s") or 86400)


@contextlib.contextmanager
def host_share(tag: str, timeout_s: float = 86400.0):
    """`with host_share(tag):` around this process's share of a job: on leaving, waits for every
    other process's share (sync_hosts); an exception inside is posted to the others and re-raised,
    so the whole job fails with it instead of hanging."""
    try:
        yield
    except Exception as e:  # noqa: BLE001  (posted to the other hosts, then re-raised)
        sync_hosts(tag, e, timeout_s)
        raise
    sync_hosts(tag, None, timeout_s)
