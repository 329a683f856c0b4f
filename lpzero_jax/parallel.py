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
import os
import re
import signal
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


# --- supervision: JAX's runtime aborts a process whose peer is missing or dead --------------------
# (`Fatal Python error: Aborted`, exit 134, a stack dump). Its coordination client takes a callback
# for that case, but jaxlib cannot pass it the error (the callback itself aborts), and a peer that
# never joins aborts inside `jax.distributed.initialize`. So the command line of a multi-process
# job runs the job in a forked child process (before JAX has started anything) and turns such an end
# into one line naming the process and the cause (`supervise`, called by `main`).

_FATAL = re.compile(r"^(F\d{4} |\*\*\* Check failure|Fatal Python error|terminate called)")


def abort_cause(text: str, process_id, config) -> str:
    """The cause of an abort of JAX's distributed runtime, from the child's last stderr lines
    (`text`), in the job's own terms (which process, which setting's timeout)."""
    dist = config.get("distributed") or {}
    address = dist.get("coordinator_address") or "the coordinator"
    dead = re.search(r"stopped sending heartbeats\):\s*\n?\s*([\d,\s]+?)\s*\n", text)
    if dead:
        ids = ", ".join(dead.group(1).split())
        return (f"process {ids} stopped (no heartbeat for distributed.heartbeat_timeout_s = "
                f"{dist.get('heartbeat_timeout_s')} s: it died or lost the network); rerun the job: "
                "what every process stored is kept")
    if "RegisterTask" in text or "DEADLINE_EXCEEDED" in text:
        wait = f"distributed.initialization_timeout_s = {dist.get('initialization_timeout_s')} s"
        if str(process_id) == "0":
            return (f"not every one of the {dist.get('num_processes')} processes joined at {address} "
                    f"within {wait}: start them all with the same coordinator_address and distinct "
                    "process_id (or raise the timeout)")
        return (f"could not join the coordinator {address} within {wait}: is process 0 running, and "
                "is its address (host and port) reachable from here?")
    if "Failed to send RPC to coordination service" in text or "leader task" in text:
        return (f"lost the coordinator (process 0 at {address}): it died or the network failed; "
                "rerun the job: what every process stored is kept")
    fatal = next((ln for ln in text.splitlines() if _FATAL.match(ln)), "")
    detail = " ".join(fatal.split("] ", 1)[-1].split())[:200]
    return f"the JAX distributed runtime aborted it ({detail or 'no message'})"


def supervise(config, show_all: bool = False) -> Optional[int]:
    """Forks: the child returns None and runs the job; the parent (which has started nothing of
    JAX: no backend, no thread) waits for it and returns its exit status. The child's stderr is
    passed through up to a fatal abort of the runtime, whose dump is left out (kept with
    `show_all`); such an abort, or a signal that ended the child, becomes one
    `lpzero: error: process I of N: cause` line with exit status 1 (none when the child printed
    its own line before the runtime aborted it). SIGINT / SIGTERM / SIGHUP are passed on to the
    child; the child dies with its supervisor (Linux)."""
    import sys

    dist = config.get("distributed") or {}
    pid = dist.get("process_id") if dist.get("coordinator_address") else "?"
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the job
        os.close(read_end)
        os.dup2(write_end, 2)
        os.close(write_end)
        try:  # killed with its supervisor (kill -9 of the job's process)
            import ctypes

            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        return None
    os.close(write_end)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, _frame: os.kill(child, s))
    tail: List[str] = []
    aborting = said = False
    with os.fdopen(read_end, "rb") as stream:
        for raw in stream:
            line = raw.decode("utf-8", "replace")
            aborting = aborting or bool(_FATAL.match(line))
            said = said or (line.startswith("lpzero: ") and not aborting)
            tail = (tail + [line])[-60:]
            if show_all or not aborting:
                sys.stderr.write(line)
                sys.stderr.flush()
    code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
    if not aborting and code >= 0:
        return code  # the child ended by itself (with its own line if it failed)
    if said:
        return code if code > 0 else 1  # its line named the cause; the runtime aborted after it
    if aborting:
        cause = abort_cause("".join(tail), pid, config)
    else:
        cause = f"ended by signal {signal.Signals(-code).name}"
        cause += " (out of memory?)" if code == -signal.SIGKILL else ""
    print(f"lpzero: error: process {pid} of {dist.get('num_processes')}: {cause}",
          file=sys.stderr, flush=True)
    return 1


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


def is_multi_process(config) -> bool:
    """Whether the config asks for a job of several processes (`distributed.num_processes` > 1,
    or `distributed.auto_detect`)."""
    dist = config.get("distributed") or {}
    return int(dist.get("num_processes") or 1) > 1 or bool(dist.get("auto_detect"))


def process_label() -> str:
    """'process I of N: ' once jax.distributed has started (without starting a backend),
    '' otherwise."""
    if not jax.distributed.is_initialized():
        return ""
    return f"process {jax.process_index()} of {jax.process_count()}: "


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


def exit_if_distributed(error: BaseException, status: int = 1, grace_s: float = 120.0,
                        log_traceback: bool = True) -> None:
    """In a multi-process job, logs `error` with its traceback (unless the caller printed its one
    line: `log_traceback` False), posts it for the other processes and ends this process with
    exit code `status` at once.

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
    if log_traceback:
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
