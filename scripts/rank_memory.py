"""What holds memory across architectures in a `rank` run: RSS, live device arrays and the sizes
of the process-wide caches after each architecture of the zoo.

    PYTHONPATH=. python scripts/rank_memory.py --family=gpt2 --archs=5 --stride=20 \
        --proxies=all --out=/tmp/rank_memory.json [--cache_dir=/path/to/input/cache] \
        [--arch_ids=config_4_j9,config_12_j5]
    PYTHONPATH=. python scripts/rank_memory.py --family=gpt2 --arch_ids=config_4_j9 \
        --keep_residuals_gb=none,1.0 --rounds=2 --out=/tmp/rank_speed.json

Scores the proxies on every `stride`-th benchmark architecture (or the named ones; rank's scoring
loop, one ArchContext per architecture, the values written to a throw-away log) and records after
each one: RSS and its peak, the live jax arrays (count, bytes), and the entries of the engine's
bounded caches and of the whole-model program caches (functools.lru_cache). Growth of RSS with
flat live arrays points at compiled programs or allocator fragmentation; growing live arrays at a
leak. With several --keep_residuals_gb settings the architectures are scored once per setting in
each of --rounds rounds (A B A B ...), in one process, so the settings' seconds are a same-run
ratio (round 1 also compiles). Per architecture it also lists each shared pass and each proxy with the RSS before, the
highest RSS sampled while it ran (every 20 ms) and the live jax bytes after it: where the peak is.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class PeakSampler:
    """A daemon thread sampling RSS every `interval` s; `mark()` starts a window, `peak()` is the
    highest RSS (MB) sampled since that mark."""

    def __init__(self, interval: float = 0.02):
        self.interval, self._peak = interval, 0.0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            self._peak = max(self._peak, rss_mb())
            time.sleep(self.interval)

    def mark(self) -> float:
        now = rss_mb()
        self._peak = now
        return now

    def peak(self) -> float:
        self._peak = max(self._peak, rss_mb())
        return self._peak


def live_mb() -> float:
    import jax

    return sum(x.nbytes for x in jax.live_arrays()) / 2 ** 20


def trace_passes(ArchContext, sampler: PeakSampler, events: list) -> None:
    """Wraps ArchContext's shared-pass builder and proxy call to append (kind, name, RSS before,
    peak RSS during, live jax MB after) to `events`. A nested pass restarts the window, so an
    outer pass's peak covers only what ran after its last nested pass."""
    shared, timed_call = ArchContext._shared, ArchContext.timed_call

    def traced_shared(self, name, build):
        if name in self._cache:
            return shared(self, name, build)
        before = sampler.mark()
        out = shared(self, name, build)
        events.append(("pass", name, round(before), round(sampler.peak()), round(live_mb())))
        return out

    def traced_call(self, fn):
        before = sampler.mark()
        out = timed_call(self, fn)
        events.append(("proxy", getattr(fn, "name", None) or getattr(getattr(fn, "fn", None),
                                                                       "__name__", str(fn)),
                       round(before), round(sampler.peak()), round(live_mb())))
        return out

    ArchContext._shared, ArchContext.timed_call = traced_shared, traced_call


def lru_caches() -> dict:
    """Current sizes of every functools.lru_cache in the package's loaded modules."""
    out = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("lpzero_jax") or module is None:
            continue
        for attr, obj in vars(module).items():
            info = getattr(obj, "cache_info", None)
            if callable(info) and isinstance(obj, functools._lru_cache_wrapper):
                size = info().currsize
                if size:
                    out[f"{name}.{attr}"] = size
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--family", default="gpt2")
    p.add_argument("--archs", type=int, default=5)
    p.add_argument("--stride", type=int, default=20)
    p.add_argument("--proxies", default="all")
    p.add_argument("--cache_dir", default=None, help="proxy-input cache (rank's inputs.cache_dir)")
    p.add_argument("--arch_ids", default="", help="comma-separated ids (instead of --stride)")
    p.add_argument("--keep_residuals_gb", default="",
                   help="comma list of rank.keep_residuals_gb settings to alternate ('none': keep all)")
    p.add_argument("--rounds", type=int, default=1, help="rounds over the settings (A B A B ...)")
    p.add_argument("--clear_programs", action="store_true",
                   help="drop every compiled program (the engine's caches, jax.clear_caches) after each arch")
    p.add_argument("--out", default="rank_memory.json")
    args = p.parse_args(argv)

    import jax

    from lpzero_jax import runtime
    from lpzero_jax.configs import shipped_config
    from lpzero_jax.engine import layout, staging, sweep
    from lpzero_jax.families import get_family
    from lpzero_jax.input_store import InputStore
    from lpzero_jax.proxies.base import ArchContext
    from lpzero_jax.proxies.resolve import resolve_proxies
    from lpzero_jax.proxies.scoring import drop_programs, score_into_log

    config = shipped_config(args.family)
    config.proxies = args.proxies
    config.rank.keep_programs_gb = None  # dropping is this script's choice (--clear_programs)
    work = Path(tempfile.mkdtemp(prefix="rank_memory_"))
    config.workdir = str(work)
    if args.cache_dir:
        config.inputs.cache_dir = args.cache_dir
    runtime.setup(config)
    family = get_family(args.family)
    archs = family.load_benchmark(config)
    if args.arch_ids:
        by_id = {str(a.arch_id): a for a in archs}
        archs = [by_id[i] for i in args.arch_ids.split(",")]
    else:
        archs = archs[::args.stride][:args.archs]
    sampler, events = PeakSampler(), []
    trace_passes(ArchContext, sampler, events)
    batch = family.make_batch(config)
    proxies = resolve_proxies(args.proxies)
    store = InputStore(config, work)
    settings = [None if x.strip().lower() == "none" else float(x)
                for x in args.keep_residuals_gb.split(",") if x.strip()] or [config.rank.keep_residuals_gb]
    runs = [(r, g, arch) for r in range(1, args.rounds + 1) for g in settings for arch in archs]
    rows = []
    t = time.perf_counter()
    for n, (round_, gb, arch) in enumerate(runs):
        events.clear()
        config.rank.keep_residuals_gb = gb
        log = work / f"values{n}.jsonl"  # a fresh log: nothing is skipped as already scored
        cpu, start = time.process_time(), time.perf_counter()
        score_into_log(family, [arch], config, batch, proxies, store, log, {}, {})
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        gc.collect()
        runtime.release_host_memory(growth=0.0)
        rss_kept = rss_mb()
        if args.clear_programs:
            drop_programs()
        live = jax.live_arrays()
        rows.append({"arch_id": arch.arch_id, "round": round_, "keep_residuals_gb": gb,
                     "arch_seconds": round(seconds, 1), "arch_cpu_seconds": round(cpu, 1),
                     "seconds": round(time.perf_counter() - t, 1),
                     "rss_mb": round(rss_mb()), "rss_before_clearing_mb": round(rss_kept),
                     "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                     "live_arrays": len(live),
                     "live_mb": round(sum(x.nbytes for x in live) / 2 ** 20, 1),
                     "stage_functions": len(staging._COMPILED),
                     "compiled_programs": staging.compiled_programs(),
                     "layouts": len(layout._LAYOUTS), "paddings": len(sweep._PADDINGS),
                     "lru_caches": lru_caches(),
                     "steps": [dict(zip(("kind", "name", "rss_before_mb", "peak_mb", "live_after_mb"),
                                        e)) for e in events]})
        print(json.dumps(rows[-1]), flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
