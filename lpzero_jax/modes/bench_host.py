"""`bench`'s host-share and transfer figures: where an architecture's seconds go between host code
(NumPy/SciPy, Python glue, host<->device copies) and device programs, for the compact extraction
and for the zoo's gradient passes; and the explicit host<->device copies each architecture makes.

On the CPU a device program's seconds are real work; on an accelerator they shrink 20-50x while
the host seconds stay, so the host share measured here bounds the speedup an accelerator can give
(host share h: at most 1 / h).
"""

from __future__ import annotations

import time
from typing import Dict, Iterable, List

import numpy as np

from lpzero_jax import runtime, transfer
from lpzero_jax.engine import extract, timing
from lpzero_jax.engine.placement import host_steps_on_device
from lpzero_jax.proxies.base import ArchContext
from lpzero_jax.proxies.resolve import resolve_proxies

# the ArchContext stages that are device programs (the zoo's passes, engine/passes.py)
DEVICE_PASSES = ("forward", "backward", "synflow", "hvp")


def extraction_host_share(family, model_config, params, batch, sample_size: int) -> dict:
    """One warm staged extraction, every stage waited for: wall seconds, seconds inside device
    programs (dispatch included), in the named host steps (`call_host`), and the rest (Python glue,
    layouts, padding, assembling, copies); plus its copies (`transfer.counting`). Runs the
    extraction twice with one timer (the first call pays compilation and the FLOP counting's
    lowerings); the second is measured."""
    stages = family.stages(model_config)
    if stages is None:
        return {}
    timer = timing.StageTimer()
    extract.extract_staged(stages, params, batch, family.is_proxy_weight, sample_size, 0,
                           timer=timer)
    timer.seconds.clear()
    timer.host_seconds.clear()
    timer.flops.clear()
    with transfer.counting() as copies:
        t = time.perf_counter()
        extract.extract_staged(stages, params, batch, family.is_proxy_weight, sample_size, 0,
                               timer=timer)
        wall = time.perf_counter() - t
    device = timer.device_seconds()
    steps = dict(timer.host_seconds)
    host = max(wall - device, 0.0)
    return {"wall_s": wall, "device_s": device, "host_s": host, "host_steps_s": steps,
            "host_other_s": max(host - sum(steps.values()), 0.0),
            "host_share": host / wall if wall > 0 else float("nan"),
            "transfers": copies.as_dict()}


def summarize_extraction(rows: List[dict]) -> dict:
    """Totals of `extraction_host_share` rows (those measured)."""
    rows = [r for r in rows if r]
    if not rows:
        return {}
    wall = sum(r["wall_s"] for r in rows)
    host = sum(r["host_s"] for r in rows)
    steps: Dict[str, float] = {}
    for r in rows:
        for k, v in r["host_steps_s"].items():
            steps[k] = steps.get(k, 0.0) + v
    keys = rows[0]["transfers"].keys()
    return {"archs": len(rows), "wall_s": wall, "device_s": sum(r["device_s"] for r in rows),
            "host_s": host, "host_share": host / wall if wall > 0 else float("nan"),
            "host_steps_s": steps,
            "host_other_s": sum(r["host_other_s"] for r in rows),
            "host_steps_on_device": host_steps_on_device(),
            "transfers_per_arch": {k: float(np.mean([r["transfers"][k] for r in rows])) for k in keys}}


def zoo_host_share(config, family, archs: Iterable, batch, proxies: str = "all") -> dict:
    """The zoo's proxies on each architecture, twice (the first run compiles); the second is
    measured: seconds in the device passes (ArchContext's forward/backward/synflow/hvp stages,
    engine/passes.py, their host-side cutting included) vs everything else (parameter init,
    the proxies' own NumPy/SciPy work)."""
    named = resolve_proxies(proxies)
    order = sorted(named, key=lambda n: not named[n].needs_hvp)
    rows = []
    for arch in archs:
        for attempt in range(2):
            ctx = ArchContext(family, arch, config, batch, fuse_hvp=True)
            failures = 0
            t = time.perf_counter()
            for name in order:
                try:
                    ctx.timed_call(named[name])
                except Exception:  # noqa: BLE001  (a proxy failing here is rank's business)
                    failures += 1
            wall = time.perf_counter() - t
            stages = dict(ctx.pass_seconds)
            del ctx
            runtime.release_host_memory()
        device = sum(stages.get(k, 0.0) for k in DEVICE_PASSES)
        rows.append({"arch_id": arch.arch_id, "wall_s": wall, "device_passes_s": device,
                     "host_s": max(wall - device, 0.0), "pass_seconds": stages,
                     "failed_proxies": failures})
    wall = sum(r["wall_s"] for r in rows)
    host = sum(r["host_s"] for r in rows)
    return {"proxies": len(order), "per_arch": rows, "wall_s": wall, "host_s": host,
            "host_share": host / wall if wall > 0 else float("nan")}


def format_lines(result: dict) -> List[str]:
    """Table lines of the host share and copies (empty when not measured)."""
    lines = []
    h = result.get("extraction", {}).get("host_share")
    if h:
        steps = ", ".join(f"{k} {v:.3f}s" for k, v in sorted(h["host_steps_s"].items()))
        t = h["transfers_per_arch"]
        lines += [
            f"extraction host share           {h['host_share']:10.1%} of {h['wall_s']:.2f} s over "
            f"{h['archs']} archs (device {h['device_s']:.2f} s; host steps: {steps or 'none'}; "
            f"other host {h['host_other_s']:.2f} s)",
            f"copies per arch                 {t['to_device_calls']:10.1f} up "
            f"({t['to_device_bytes'] / 1e6:.2f} MB), {t['to_host_calls']:.1f} down "
            f"({t['to_host_bytes'] / 1e6:.2f} MB)"]
    z = result.get("zoo")
    if z:
        lines.append(f"zoo ({z['proxies']} proxies) host share {z['host_share']:10.1%} of "
                     f"{z['wall_s']:.2f} s over {len(z['per_arch'])} archs")
    return lines
