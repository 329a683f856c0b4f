"""`rank` mode: proxy scores for every architecture, and their rank correlation with ground truth.

Writes DIR/scores.csv (arch_id, ground_truth, one column per proxy), DIR/ranking.json
({proxy: {kendall_tau, spearman_rho, n, n_nonfinite, seconds_per_arch}}), and through
`lpzero_jax.report` DIR/table.csv, DIR/table.md (ours beside the published figures) and
DIR/scatter.png (proxy vs ground truth). Every computed value is
appended to DIR/rank_values.jsonl as it is produced, so an interrupted run resumes where it stopped.

Timing: a record's `seconds` is the proxy as if computed alone (the shared passes it used
included); its `own_seconds` is what the proxy added beyond the shared passes. After each
architecture the log has a `passes:` line (`pass_breakdown`) where every second counts once.
`rank.arch_ids` scores a named subset (e.g. a timing sample).

Failures: an error of the environment (disk full, permission, memory) or of the settings stops the
run (what was computed stays in the log); a proxy's own failure on one architecture is logged with
its reason (`"error"` in the record), shown as NaN in the tables and retried by the next run; the
same failure on the first REPEATED_FAILURES architectures stops the run (a setting problem).
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import jax
import numpy as np
from absl import logging

from lpzero_jax import evaluation, parallel, report, runtime
from lpzero_jax.checks import load_archs
from lpzero_jax.errors import (ConfigError, DataFileError, RepeatedFailureError, UserError,
                               describe, is_environment_error)
from lpzero_jax.files import atomic_write
from lpzero_jax.families import get_family
from lpzero_jax.input_store import InputStore
from lpzero_jax.modes.base import register_mode
from lpzero_jax.proxies import DERIVED, ArchContext
from lpzero_jax.proxies.resolve import resolve_proxies
from lpzero_jax.results import numbered_records, open_log, write_json


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


def score_into_log(family, archs, config, batch, proxies: Dict[str, object], inputs_loader,
                   values_path: Path, done: dict, failed: dict) -> None:
    """Scores every (arch, proxy) of `archs` x `proxies` not in `done`, one ArchContext per
    architecture (params from config.seed, the proxies' passes on `batch`, compact inputs from
    `inputs_loader`; proxies that need the HVP first: the backward pass they build also serves
    the forward intermediates), appending each value (or failure) to `values_path` as it is produced and
    updating `done` / `failed` (the maps of `load_log`). Raises RepeatedFailureError when a proxy
    fails alike on its first REPEATED_FAILURES architectures."""
    names = list(proxies)
    started = time.perf_counter()
    watch = _FailureWatch()
    with open_log(values_path) as log:  # appends (O_APPEND): shards may share the file
        for i, arch in enumerate(archs):
            arch_key = str(arch.arch_id)
            todo = sorted((n for n in names if (arch_key, n) not in done),
                          key=lambda n: not proxies[n].needs_hvp)  # stable: given order otherwise
            if not todo:
                continue
            fuse = bool((config.get("rank") or {}).get("fuse_hvp", True)) and \
                any(proxies[n].needs_hvp for n in todo)
            ctx = ArchContext(family, arch, config, batch, inputs_loader=inputs_loader,
                              fuse_hvp=fuse)
            parts, lines, outcomes, own = [], [], [], {}
            try:
                for name in todo:
                    value, seconds, failure = _score(ctx, name, proxies[name])
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
                    log.write("".join(lines))  # one write per arch: shards' lines never interleave
                    log.flush()
            logging.info("[%d/%d] arch %s: %s | elapsed %.0fs", i + 1, len(archs),
                         arch.arch_id, ", ".join(parts), time.perf_counter() - started)
            logging.info("arch %s passes: %s", arch.arch_id, pass_breakdown(ctx.stage_seconds, own))
            del ctx  # this architecture's tensors and stages
            runtime.release_host_memory()
            for name, failure in outcomes:
                watch.record(name, arch.arch_id, failure)


def pass_breakdown(stage_seconds: Dict[str, float], own_seconds: Dict[str, float]) -> str:
    """One line of where an architecture's seconds went, each second counted once: the shared
    stages' own seconds (ArchContext.stage_seconds), the proxies' exclusive seconds
    (`own_seconds`: proxy -> seconds outside the shared stages; those under 0.5 s only summed),
    and the total."""
    big = {k: v for k, v in own_seconds.items() if v >= 0.5}
    rest = sum(v for k, v in own_seconds.items() if k not in big)
    items = sorted(stage_seconds.items(), key=lambda kv: -kv[1])
    total = sum(stage_seconds.values()) + sum(own_seconds.values())
    return ", ".join([f"{k} {v:.2f}s" for k, v in items] +
                     [f"[{k}] {v:.2f}s" for k, v in sorted(big.items(), key=lambda kv: -kv[1])] +
                     [f"[other proxies] {rest:.2f}s", f"total {total:.2f}s"])


def select_archs(archs: List, ids: str) -> List:
    """The architectures named in `ids` ("id,id,..."; "" = all), in the benchmark's order.
    An id the benchmark lacks is a ConfigError naming it."""
    wanted = [x.strip() for x in str(ids or "").split(",") if x.strip()]
    if not wanted:
        return archs
    known = {str(a.arch_id) for a in archs}
    unknown = [x for x in wanted if x not in known]
    if unknown:
        raise ConfigError(f"rank.arch_ids: {', '.join(unknown)} not among the {len(archs)} "
                          f"architectures read (e.g. {', '.join(sorted(known)[:3])}); fix the ids or "
                          "raise num_archs")
    return [a for a in archs if str(a.arch_id) in set(wanted)]


def parse_shard(text: str) -> Tuple[int, int]:
    """"i/n" -> (i, n) with 0 <= i < n; "" -> (0, 1), every architecture."""
    if not text:
        return 0, 1
    try:
        index, count = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise ConfigError(f"rank_shard {text!r}: expected 'i/n', e.g. '0/2'") from None
    if not 0 <= index < count:
        raise ConfigError(f"rank_shard {text!r}: need 0 <= i < n")
    return index, count


def run(config, workdir: Path) -> Dict[str, dict]:
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    family = get_family(config.family)
    archs = select_archs(load_archs(family, config, "rank"),
                         (config.get("rank") or {}).get("arch_ids", ""))
    proxies = resolve_proxies(config.proxies)
    names = list(proxies)
    logging.info("rank: %d architectures x %d proxies (%s) -> %s", len(archs), len(names),
                 ", ".join(names), workdir)
    batch = family.make_batch(config)
    store = InputStore(config, workdir)
    values_path = workdir / "rank_values.jsonl"
    done, failed = load_log(values_path)
    if done or failed:
        logging.info("resuming: %d values already in %s; %d failures retried", len(done),
                     values_path, len(failed))

    shard, n_shards = parse_shard(config.get("rank_shard", ""))
    hosts = jax.process_count()
    if hosts > 1:  # a jax.distributed job: process p takes every hosts-th arch of the shard
        shard, n_shards = shard + n_shards * jax.process_index(), n_shards * hosts
        logging.info("rank: process %d of %d scores shard %d/%d", jax.process_index(), hosts,
                     shard, n_shards)
    share = parallel.host_share("rank", parallel.barrier_timeout(config))  # one rank per job
    with share:
        score_into_log(family, [a for i, a in enumerate(archs) if i % n_shards == shard], config,
                       batch, proxies, store, values_path, done, failed)

    if not parallel.is_writer():
        return {}  # process 0 of a multi-host job writes the tables
    if n_shards > 1:
        done, failed = load_log(values_path)  # the other shards' values too
        missing = sum((str(a.arch_id), n) not in done and (str(a.arch_id), n) not in failed
                      for a in archs for n in names)
        if missing:
            logging.info("shard %d/%d done; %d values still missing from other shards: rerun "
                         "without rank_shard once they finish to write the tables", shard,
                         n_shards, missing)
            return {}
    return write_outputs(archs, names, done, workdir, config, failed)


def write_outputs(archs, names: List[str], done, workdir: Path, config=None,
                  failed=None) -> Dict[str, dict]:
    """scores.csv, ranking.json, table.{csv,md} and scatter.png from the (arch_id, proxy) ->
    (value, seconds) table, plus the derived proxies (e.g. ZeroLM with fitted alpha). A failed
    (arch_id, proxy) (`failed`: key -> reason) is NaN in the tables and listed in ranking.json
    under `failures`; the next run retries it."""
    failed = failed or {}
    nan = (float("nan"), float("nan"))
    truth = np.asarray([a.score for a in archs], np.float64)
    columns = {n: np.asarray([done.get((str(a.arch_id), n), nan)[0] for a in archs]) for n in names}
    seconds = {n: float(np.nanmean([done.get((str(a.arch_id), n), nan)[1] for a in archs]
                                   or [np.nan])) for n in names}
    notes = {}
    for derive in (DERIVED.get(k) for k in DERIVED.names()):
        for name, (scores, note) in derive(columns, truth, config or {}).items():
            columns[name], notes[name] = np.asarray(scores, np.float64), note
            seconds[name] = float("nan")
    with atomic_write(workdir / "scores.csv") as f:
        w = csv.writer(f)
        w.writerow(["arch_id", "ground_truth"] + list(columns))
        for i, a in enumerate(archs):
            w.writerow([a.arch_id, a.score] + [columns[n][i] for n in columns])
    ranking = {}
    for n, scores in columns.items():
        ranking[n] = dict(evaluation.rank_correlations(scores, truth),
                          seconds_per_arch=seconds[n])
        if n in notes:
            ranking[n]["note"] = notes[n]
        reasons = {str(a.arch_id): failed[(str(a.arch_id), n)] for a in archs
                   if (str(a.arch_id), n) in failed}
        if reasons:
            ranking[n]["failures"] = reasons
            logging.warning("proxy %s failed on %d architectures (NaN; retried by the next run)",
                            n, len(reasons))
        logging.info("%-28s tau %.3f  rho %.3f  (n=%d, %.3fs/arch)", n, ranking[n]["kendall_tau"],
                     ranking[n]["spearman_rho"], ranking[n]["n"], ranking[n]["seconds_per_arch"])
    write_json(workdir / "ranking.json", ranking, indent=2)
    family = config.family if config is not None else "unknown"
    report.write_report(workdir, family, ranking, columns, truth)
    return ranking


register_mode("rank")(run)
