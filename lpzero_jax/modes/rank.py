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

Failures (`lpzero_jax.proxies.scoring`): an error of the environment or of the settings stops the
run; a proxy's own failure on one architecture is NaN in the tables and retried by the next run.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import jax
import numpy as np
from absl import logging

from lpzero_jax import evaluation, parallel, report
from lpzero_jax.checks import load_archs, require_fraction, require_int
from lpzero_jax.errors import ConfigError
from lpzero_jax.families import get_family
from lpzero_jax.files import atomic_write
from lpzero_jax.input_store import InputStore
from lpzero_jax.modes.base import register_mode
from lpzero_jax.proxies import DERIVED
from lpzero_jax.proxies.resolve import resolve_proxies
from lpzero_jax.proxies.scoring import load_log, score_into_log
from lpzero_jax.results import write_json


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


@dataclasses.dataclass(frozen=True)
class RankTable:
    """What a finished rank run wrote: the architectures in benchmark order with their ground
    truth (higher-is-better), scores[proxy] (NaN where it failed) and ranking[proxy] (the
    ranking.json entry: kendall_tau, spearman_rho, n, seconds_per_arch, ...)."""

    arch_ids: List
    ground_truth: List[float]
    scores: Dict[str, List[float]]
    ranking: Dict[str, dict]


def run(config, workdir: Path) -> Optional[RankTable]:
    """Scores the benchmark (or this shard of it) into the log; the tables once every value is
    there (None while other shards' values are missing, and on processes other than 0)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    family = get_family(config.family)
    archs = select_archs(load_archs(family, config),
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
        return None  # process 0 of a multi-host job writes the tables
    if n_shards > 1:
        done, failed = load_log(values_path)  # the other shards' values too
        missing = sum((str(a.arch_id), n) not in done and (str(a.arch_id), n) not in failed
                      for a in archs for n in names)
        if missing:
            logging.info("shard %d/%d done; %d values still missing from other shards: rerun "
                         "without rank_shard once they finish to write the tables", shard,
                         n_shards, missing)
            return None
    return write_outputs(archs, names, done, workdir, config, failed)


def write_outputs(archs, names: List[str], done, workdir: Path, config=None,
                  failed=None) -> RankTable:
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
    return RankTable(arch_ids=[a.arch_id for a in archs], ground_truth=truth.tolist(),
                     scores={n: np.asarray(v, np.float64).tolist() for n, v in columns.items()},
                     ranking=ranking)


def validate(config) -> None:
    """The rank settings: the shard, the ZeroLM settings, the proxy names and genomes."""
    parse_shard(config.get("rank_shard", ""))
    if config.get("zerolm") is not None:
        require_fraction(config, "zerolm.alpha")
        require_int(config, "zerolm.sample_size", 3)
    try:
        resolve_proxies(config.proxies)
    except KeyError:
        raise
    except ValueError as e:  # a genome that does not parse
        raise ConfigError(f"proxies: {e}; fix --config.proxies") from None


register_mode("rank", validate=validate)(run)
