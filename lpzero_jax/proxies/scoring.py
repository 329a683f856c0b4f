"""The rank scoring loop: every (architecture, proxy) value appended to a JSON-lines log as it
is computed, so an interrupted run resumes where it stopped.

Used by the `rank` mode and by the sensitivity study (the zoo over init and batch seeds).
Failures: an error of the environment (disk full, permission, memory) or of the settings stops the
loop (what was computed stays in the log); a proxy's own failure on one architecture is logged with
its reason (`"error"` in the record) and retried by the next run; the same failure on the first
REPEATED_FAILURES architectures stops the loop (a setting problem).
"""

from __future__ import annotations

import gc
import json
import math
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

from absl import logging

from lpzero_jax import files, runtime
from lpzero_jax.engine import staging
from lpzero_jax.errors import (
    DataFileError,
    RepeatedFailureError,
    UserError,
    describe,
    is_environment_error,
)
from lpzero_jax.input_store import eta_text
from lpzero_jax.proxies.base import ArchContext, release_plan
from lpzero_jax.results import numbered_records, open_log

# A proxy that fails with the same error on this many architectures in a row, from the start of
# a run, stops the run: the cause is the configuration, not the architectures.
REPEATED_FAILURES = 3


def load_log(path: Path) -> Tuple[Dict[Tuple[str, str], Tuple[float, float]], Dict[Tuple[str, str], str]]:
    """(values, failures) of a rank_values.jsonl: (arch id, proxy) -> (value, seconds), and
    (arch id, proxy) -> the reason of its latest failure (a key with a value is not a failure).
    A record of the wrong form is a DataFileError naming the file and line."""
    values, failures = {}, {}
    for number, r in numbered_records(path):
        try:
            key = (str(r["arch_id"]), str(r["proxy"]))
            if "error" in r:
                failures[key] = str(r["error"])
                continue
            value, seconds = r["value"], r["seconds"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                raise TypeError("value and seconds must be numbers")
        except (KeyError, TypeError) as e:
            raise DataFileError(f"{path} line {number}: not a record of arch_id, proxy, value, "
                                f"seconds ({e}); delete that line (it is recomputed)") from None
        values[key] = (float(value), float(seconds))
    return values, {k: v for k, v in failures.items() if k not in values}


def _score(ctx: ArchContext, name: str, fn) -> Tuple[float, float, Optional[str]]:
    """(value, seconds, failure) of one proxy. A failure of the proxy itself (numerical or
    otherwise) is returned as its reason with a NaN value; errors of the environment (disk,
    memory) and of the user's settings are raised: they are never a score."""
    started = time.perf_counter()
    try:
        value, seconds = ctx.timed_call(fn)
        return float(value), seconds, None
    except Exception as e:  # noqa: BLE001  (one failing proxy must not end a long run)
        if isinstance(e, UserError) or is_environment_error(e):
            raise
        logging.exception("proxy %s failed on arch %s (recorded; retried by the next run)", name,
                          ctx.arch.arch_id)
        return float("nan"), time.perf_counter() - started, describe(e)


class _FailureWatch:
    """Stops a run whose proxy fails with one same error on its first REPEATED_FAILURES archs."""

    def __init__(self):
        self.runs: Dict[str, list] = {}  # proxy -> [(arch id, reason)] while every attempt failed

    def record(self, name: str, arch_id, failure: Optional[str]) -> None:
        run = self.runs.setdefault(name, [])
        if run is None:
            return  # this proxy has succeeded once: its failures are the architectures'
        if failure is None:
            self.runs[name] = None
            return
        run.append((arch_id, failure))
        if len(run) >= REPEATED_FAILURES and len({r for _, r in run}) == 1:
            ids = ", ".join(str(i) for i, _ in run)
            raise RepeatedFailureError(
                f"proxy {name} failed on each of the first {len(run)} architectures ({ids}) with "
                f"the same error: {failure}. This is a setting or data problem, not a score: fix "
                "it and rerun (the failures are retried)")


def drop_programs() -> None:
    """Every compiled program dropped and the heap it held handed back to the OS."""
    staging.clear_programs()
    gc.collect()
    runtime.release_host_memory(growth=0.0)


class ProgramBound:
    """Bounds what compiled programs hold between architectures: past `keep_gb` of resident
    memory above the floor (the loop's start, then what the last drop left; the freed heap
    trimmed), every compiled program is dropped (`staging.clear_programs`). GPT-2's 200
    architectures with the whole zoo kept ~0.2 GB more per architecture (programs of new shapes),
    8.7 GB at the peak; dropping them after each of 9 cost 6-9 % more time (compiling again),
    hence a bound rather than every time (docs/throughput_accelerator.md)."""

    def __init__(self, keep_gb: Optional[float]):
        self.keep_bytes = None if keep_gb is None else int(float(keep_gb) * (1 << 30))
        self.start = runtime.resident_bytes()
        self.clears = 0

    def check(self, arch_id) -> bool:
        """Drops the programs if past the bound; returns whether it did."""
        if self.keep_bytes is None or not self.start:
            return False
        before = runtime.resident_bytes()
        if before - self.start <= self.keep_bytes:
            return False
        drop_programs()
        self.clears += 1
        self.start = runtime.resident_bytes()  # what is left without programs: the next floor
        logging.info("after arch %s: compiled programs dropped (resident %.1f -> %.1f GB, past "
                     "rank.keep_programs_gb = %.1f above the floor)", arch_id, before / 2 ** 30,
                     runtime.resident_bytes() / 2 ** 30, self.keep_bytes / 2 ** 30)
        return True


def score_into_log(family, archs, config, batch, proxies: Dict[str, object], inputs_loader,
                   values_path: Path, done: dict, failed: dict) -> None:
    """Scores every (arch, proxy) of `archs` x `proxies` not in `done`, one ArchContext per
    architecture (params from config.seed, the proxies' passes on `batch`, compact inputs from
    `inputs_loader`; proxies that need the HVP first: the backward pass they build also serves
    the forward intermediates; the others grouped by the passes they read, each big pass released
    after its last reader: `release_plan`), appending each value (or failure) to `values_path` as it is produced and
    updating `done` / `failed` (the maps of `load_log`). Raises RepeatedFailureError when a proxy
    fails alike on its first REPEATED_FAILURES architectures."""
    names = list(proxies)
    started = time.perf_counter()
    programs = ProgramBound((config.get("rank") or {}).get("keep_programs_gb"))
    watch = _FailureWatch()
    took = []  # seconds per scored architecture (the ETA of the progress lines)
    with open_log(values_path) as log:  # appends (O_APPEND): shards may share the file
        for i, arch in enumerate(archs):
            arch_key = str(arch.arch_id)
            plan = release_plan(proxies, [n for n in names if (arch_key, n) not in done])
            todo = [n for n, _ in plan]
            if not todo:
                continue
            fuse = bool((config.get("rank") or {}).get("fuse_hvp", True)) and \
                any(proxies[n].needs_hvp for n in todo)
            ctx = ArchContext(family, arch, config, batch, inputs_loader=inputs_loader,
                              fuse_hvp=fuse)
            parts, lines, outcomes, own = [], [], [], {}
            arch_started = time.perf_counter()
            try:
                for name, release in plan:
                    value, seconds, failure = _score(ctx, name, proxies[name])
                    ctx.release(release)  # no proxy still to come reads these passes
                    own[name] = ctx.own_seconds if failure is None else seconds
                    record = {"arch_id": arch_key, "proxy": name, "value": value,
                              "seconds": seconds, "own_seconds": round(own[name], 4)}
                    if failure is None:
                        if not math.isfinite(value):
                            logging.warning("proxy %s is %s on arch %s", name, value, arch.arch_id)
                        done[(arch_key, name)] = (value, seconds)
                        failed.pop((arch_key, name), None)
                        parts.append(f"{name}={value:.6g} ({seconds:.2f}s)")
                    else:
                        record["error"] = failed[(arch_key, name)] = failure
                        parts.append(f"{name} FAILED ({failure[:80]})")
                    lines.append(json.dumps(record) + "\n")
                    outcomes.append((name, failure))
            finally:  # what was computed is kept, even when an environment error stops the run
                if lines:
                    try:  # one write per arch: shards' lines never interleave
                        log.write("".join(lines))
                        log.flush()
                    except OSError as e:  # a full disk: say which file
                        raise files.with_path(e, log.name) from e
            took.append(time.perf_counter() - arch_started)
            logging.info("[%d/%d] arch %s: %s | elapsed %.0fs%s", i + 1, len(archs),
                         arch.arch_id, ", ".join(parts), time.perf_counter() - started,
                         eta_text(took, len(archs) - i - 1))
            logging.info("arch %s passes: %s", arch.arch_id, pass_breakdown(ctx.pass_seconds, own))
            del ctx  # this architecture's tensors and shared passes
            # trimmed whenever resident memory is past the floor: with the default growth bound the
            # baseline ratchets up (a trim before the HVP of a large architecture, its residuals
            # live, left it at 4 GB) and the 200 GPT-2 archs kept 5.5-6.7 GB of freed pages between
            # architectures, 8.7 GB at the peak; a trim per architecture costs little beside its passes
            runtime.release_host_memory(growth=0.0)
            programs.check(arch.arch_id)
            for name, failure in outcomes:
                watch.record(name, arch.arch_id, failure)


def pass_breakdown(pass_seconds: Dict[str, float], own_seconds: Dict[str, float]) -> str:
    """One line of where an architecture's seconds went, each second counted once: the shared
    passes' own seconds (ArchContext.pass_seconds), the proxies' exclusive seconds
    (`own_seconds`: proxy -> seconds outside the shared passes; those under 0.5 s only summed),
    and the total."""
    big = {k: v for k, v in own_seconds.items() if v >= 0.5}
    rest = sum(v for k, v in own_seconds.items() if k not in big)
    items = sorted(pass_seconds.items(), key=lambda kv: -kv[1])
    total = sum(pass_seconds.values()) + sum(own_seconds.values())
    return ", ".join([f"{k} {v:.2f}s" for k, v in items] +
                     [f"[{k}] {v:.2f}s" for k, v in sorted(big.items(), key=lambda kv: -kv[1])] +
                     [f"[other proxies] {rest:.2f}s", f"total {total:.2f}s"])
