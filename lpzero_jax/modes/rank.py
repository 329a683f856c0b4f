"""`rank` mode: proxy scores for every architecture, and their rank correlation with ground truth.

Writes DIR/scores.csv (arch_id, ground_truth, one column per proxy), DIR/ranking.json
({proxy: {kendall_tau, spearman_rho, n, n_nonfinite, seconds_per_arch}}), and through
`lpzero_jax.report` DIR/table.csv, DIR/table.md (ours beside the published figures) and
DIR/scatter.png (proxy vs ground truth). Every computed value is
appended to DIR/rank_values.jsonl as it is produced, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Dict, List, Tuple

import jax
import numpy as np
from absl import logging

from lpzero_jax import evaluation, parallel, report, runtime
from lpzero_jax.families import get_family
from lpzero_jax.input_store import InputStore
from lpzero_jax.modes.base import register_mode
from lpzero_jax.proxies import DERIVED, ArchContext
from lpzero_jax.proxies.base import HVP_PROXIES
from lpzero_jax.proxies.resolve import resolve_proxies
from lpzero_jax.search.checkpoint import read_jsonl


def _load_done(path: Path) -> Dict[Tuple[str, str], Tuple[float, float]]:
    return {(str(r["arch_id"]), r["proxy"]): (float(r["value"]), float(r["seconds"]))
            for r in read_jsonl(path)}


def _score(ctx: ArchContext, name: str, fn) -> Tuple[float, float]:
    """(value, seconds) of one proxy; an exception is logged and scored NaN, never fatal."""
    started = time.perf_counter()
    try:
        value, seconds = ctx.timed_call(fn)
        return float(value), seconds
    except Exception:  # noqa: BLE001  (one failing proxy must not end a long run)
        logging.exception("proxy %s failed on arch %s; scored NaN", name, ctx.arch.arch_id)
        return float("nan"), time.perf_counter() - started


def parse_shard(text: str) -> Tuple[int, int]:
    """"i/n" -> (i, n) with 0 <= i < n; "" -> (0, 1), every architecture."""
    if not text:
        return 0, 1
    try:
        index, count = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise ValueError(f"rank_shard {text!r}: expected 'i/n', e.g. '0/2'") from None
    if not 0 <= index < count:
        raise ValueError(f"rank_shard {text!r}: need 0 <= i < n")
    return index, count


def run(config, workdir: Path) -> Dict[str, dict]:
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    family = get_family(config.family)
    archs = family.load_benchmark(config)
    proxies = resolve_proxies(config.proxies)
    names = list(proxies)
    logging.info("rank: %d architectures x %d proxies (%s) -> %s", len(archs), len(names),
                 ", ".join(names), workdir)
    batch = family.make_batch(config)
    store = InputStore(config, workdir)
    values_path = workdir / "rank_values.jsonl"
    done = _load_done(values_path)
    if done:
        logging.info("resuming: %d values already in %s", len(done), values_path)

    shard, n_shards = parse_shard(config.get("rank_shard", ""))
    hosts = jax.process_count()
    if hosts > 1:  # a jax.distributed job: process p takes every hosts-th arch of the shard
        shard, n_shards = shard + n_shards * jax.process_index(), n_shards * hosts
        logging.info("rank: process %d of %d scores shard %d/%d", jax.process_index(), hosts,
                     shard, n_shards)
    started = time.perf_counter()
    share = parallel.host_share("rank", parallel.barrier_timeout(config))  # one rank per job
    with share, open(values_path, "a") as log:  # appends (O_APPEND): shards may share the file
        for i, arch in enumerate(archs):
            if i % n_shards != shard:
                continue
            todo = [n for n in names if (str(arch.arch_id), n) not in done]
            if not todo:
                continue
            fuse = bool(config.get("fuse_hvp", True)) and bool(HVP_PROXIES & set(todo))
            ctx = ArchContext(family, arch, config, batch, inputs_loader=store, fuse_hvp=fuse)
            parts, lines = [], []
            for name in todo:
                value, seconds = _score(ctx, name, proxies[name])
                if not math.isfinite(value):
                    logging.warning("proxy %s is %s on arch %s", name, value, arch.arch_id)
                done[(str(arch.arch_id), name)] = (value, seconds)
                lines.append(json.dumps({"arch_id": arch.arch_id, "proxy": name, "value": value,
                                         "seconds": seconds}) + "\n")
                parts.append(f"{name}={value:.6g} ({seconds:.2f}s)")
            log.write("".join(lines))  # one write per architecture: shards' lines never interleave
            log.flush()
            elapsed = time.perf_counter() - started
            logging.info("[%d/%d] arch %s: %s | elapsed %.0fs", i + 1, len(archs), arch.arch_id,
                         ", ".join(parts), elapsed)
            del ctx  # this architecture's tensors and stages
            runtime.release_host_memory()

    if not parallel.is_writer():
        return {}  # process 0 of a multi-host job writes the tables
    if n_shards > 1:
        done = _load_done(values_path)  # the other shards' values too
        missing = sum((str(a.arch_id), n) not in done for a in archs for n in names)
        if missing:
            logging.info("shard %d/%d done; %d values still missing from other shards: rerun "
                         "without rank_shard once they finish to write the tables", shard,
                         n_shards, missing)
            return {}
    return write_outputs(archs, names, done, workdir, config)


def write_outputs(archs, names: List[str], done, workdir: Path, config=None) -> Dict[str, dict]:
    """scores.csv, ranking.json, table.{csv,md} and scatter.png from the (arch_id, proxy) ->
    (value, seconds) table, plus the derived proxies (e.g. ZeroLM with fitted alpha)."""
    truth = np.asarray([a.score for a in archs], np.float64)
    columns = {n: np.asarray([done[(str(a.arch_id), n)][0] for a in archs]) for n in names}
    seconds = {n: float(np.mean([done[(str(a.arch_id), n)][1] for a in archs])) for n in names}
    notes = {}
    for derive in (DERIVED.get(k) for k in DERIVED.names()):
        for name, (scores, note) in derive(columns, truth, config or {}).items():
            columns[name], notes[name] = np.asarray(scores, np.float64), note
            seconds[name] = float("nan")
    with open(workdir / "scores.csv", "w", newline="") as f:
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
        logging.info("%-28s tau %.3f  rho %.3f  (n=%d, %.3fs/arch)", n, ranking[n]["kendall_tau"],
                     ranking[n]["spearman_rho"], ranking[n]["n"], ranking[n]["seconds_per_arch"])
    with open(workdir / "ranking.json", "w") as f:
        json.dump(ranking, f, indent=2)
    family = config.family if config is not None else "unknown"
    report.write_report(workdir, family, ranking, columns, truth)
    return ranking


register_mode("rank")(run)
