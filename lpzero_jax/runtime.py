"""Process-wide JAX settings taken from the config (called once by main before a mode runs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple

import jax
from absl import logging

ENV_CACHE = "LPZERO_CACHE"


def user_cache_dir(kind: str) -> Path:
    """Where the package keeps the per-user cache `kind` ('xla': compiled programs, 'inputs': proxy
    inputs): `$LPZERO_CACHE/<kind>`, else `$XDG_CACHE_HOME/lpzero_jax/<kind>`, else
    `~/.cache/lpzero_jax/<kind>`. Both caches are content-keyed, so every workdir may share them."""
    if os.environ.get(ENV_CACHE):
        root = Path(os.environ[ENV_CACHE]).expanduser()
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "lpzero_jax"
    return root / kind


def configure_compilation_cache(cache_dir: Optional[str]) -> None:
    """Turns on JAX's persistent compilation cache in `cache_dir` (None: `user_cache_dir('xla')`;
    '' leaves it off).

    Every compiled program (extraction stages, genome programs) is stored there, so a second run
    with the same shapes skips compilation. Programs are cached whatever their compile time.
    """
    if cache_dir is None:
        cache_dir = str(user_cache_dir("xla"))
    if not cache_dir:
        return
    path = Path(os.path.expanduser(cache_dir))
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    logging.info("persistent compilation cache: %s", path)


def setup(config) -> None:
    """Applies the runtime fields of a run config."""
    configure_compilation_cache(config.get("compilation_cache_dir"))


def resident_bytes() -> int:
    """This process's current resident memory in bytes (Linux /proc; 0 where unknown)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def release_host_memory(growth: float = 2.0, floor_bytes: Optional[int] = None) -> bool:
    """Hands freed heap pages back to the OS (glibc `malloc_trim`; a no-op elsewhere) when the
    resident memory grew past `growth` x what it was after the last trim and past floor_bytes
    (default: an eighth of physical memory, at most 2 GB); returns whether it trimmed.

    Extracting hundreds of architectures allocates and frees large activation buffers of many
    shapes; glibc keeps the freed pages, and the resident size of a 450-architecture FlexiBERT
    extraction grew past 14 GB although its live data stayed under 2 GB (measured: 1.83 GB ->
    0.54 GB after one trim). Called after every architecture. A trim costs page faults: the next
    architecture faults the same pages in again (GPT-2, 3 architectures extracted twice on shared
    cores: 2.32 M minor page faults and 13.0 s system time with a trim after each, 0.99 M and 3.4 s
    without), hence the bound: small architectures reuse the pages they find, and resident memory
    stays below the larger of `growth` x its trimmed size and floor_bytes. The floor is low so
    that a shared machine gets memory back between architectures (three GPT-2 main jobs with a
    6 GB floor were OOM-killed on a shared 24 GB machine while other jobs held 12-15 GB); at 2 GB
    GPT-2's larger architectures (about 4 GB while they run) still trim after each.
    """
    global _LIBC, _TRIMMED_AT
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim  # noqa: B018  (raises AttributeError when absent)
        except (OSError, AttributeError):
            _LIBC = False
    if not _LIBC:
        return False
    if floor_bytes is None:
        try:
            floor_bytes = min(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 8, 2 << 30)
        except (OSError, ValueError):
            floor_bytes = 2 << 30
    rss = resident_bytes()
    if rss and rss < max(growth * _TRIMMED_AT, floor_bytes):
        return False
    _LIBC.malloc_trim(0)
    _TRIMMED_AT = resident_bytes()
    return True


_LIBC = None
_TRIMMED_AT = 0  # resident bytes after the last trim


def available_memory() -> Tuple[int, str]:
    """(bytes, where) of the memory an architecture may use now: the host's available memory
    (psutil: free plus reclaimable caches), or a local accelerator's free memory when less
    (`Device.memory_stats`; CPU devices report none)."""
    import psutil

    out = (int(psutil.virtual_memory().available), "available host memory")
    for device in jax.local_devices():
        stats = device.memory_stats() if hasattr(device, "memory_stats") else None
        if stats and stats.get("bytes_limit"):
            free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
            if free < out[0]:
                out = (free, f"free memory of {device.platform} device {device.id}")
    return out


_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                   "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")


class CompileLog:
    """Counts the XLA programs compiled inside a `with` block (JAX's backend-compile events; a
    persistent-cache hit is not a compilation) and the seconds spent tracing, lowering and
    compiling them."""

    def __init__(self):
        self.programs = 0
        self.seconds = 0.0

    def _listen(self, event: str, duration: float, **_):
        if event in _COMPILE_EVENTS:
            self.seconds += duration
            self.programs += event == _COMPILE_EVENTS[-1]

    def __enter__(self) -> "CompileLog":
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc) -> None:
        jax.monitoring.unregister_event_duration_listener(self._listen)
