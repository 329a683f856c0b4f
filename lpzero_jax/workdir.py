"""One run of a mode in a workdir: every setting checked, the workdir locked and compared with what
a previous run left there, then the mode dispatched. Both the CLI (`main.py`) and the Python API
(`api.py`) run modes through `run`.

Before any work every setting is checked (the common ones in `checks`, the mode's own by its
`Mode.validate`), the benchmark is loaded and checked against them, the workdir is locked (one run
at a time; rank_shard runs and the hosts of one distributed run share it) and the saved config of a
previous run there, with the digests of its data files, must match this run's except for the
fields a resumed run may change (RESUMABLE_CHANGES).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

from absl import logging
from flax import traverse_util

from lpzero_jax import checks, files, parallel, runtime
from lpzero_jax.errors import ConfigError
from lpzero_jax.families import get_family
from lpzero_jax.input_store import cache_root, data_digests
from lpzero_jax.modes import MODES
from lpzero_jax.proxies.resolve import resolve_proxies, split_proxy_list
from lpzero_jax.results import load_json

# Fields a rerun may change without invalidating what the workdir already holds. Paths of data
# files may change: their CONTENTS are compared (`data_digests` in the saved config).
RESUMABLE_CHANGES = ("workdir", "proxies", "num_archs", "compilation_cache_dir", "inputs.cache_dir",
                     "parallel", "distributed", "search.baselines", "search.checkpoint_every",
                     "search.evaluate_all", "search.generations", "bench", "data_root",
                     "benchmark_file", "benchmark_dir", "corpus_file", "vocab_path", "rank.fuse_hvp",
                     "rank.arch_ids", "rank.keep_residuals_gb", "rank.keep_programs_gb", "rank_shard", "study.proxies", "search.answer", "search.zoo",
                     "search.ranker_features", "search.ranker_kinds", "memory_limit_gb",
                     "adapter.eval_archs", "adapter.checkpoint_every", "adapter.log_every",
                     "adapter.stop_at", "adapter.max_seconds", "adapter.cache_dir")


def config_conflicts(previous: dict, current: dict) -> list:
    """Fields whose values differ between a workdir's saved config and this run's, ignoring the
    ones a resumed run may change (RESUMABLE_CHANGES: paths, which proxies, how far to go) and
    fields only one of them has (a config saved by an older version)."""
    old, new = (traverse_util.flatten_dict(d, sep=".") for d in (previous, current))

    def free(key):
        return any(key == f or key.startswith(f + ".") for f in RESUMABLE_CHANGES)

    return sorted(k for k in set(old) & set(new)
                  if not free(k) and str(old.get(k)) != str(new.get(k)))


def _proxy_set(spec) -> set:
    """The proxy columns a `proxies` setting asks for (genomes canonical, 'all' expanded)."""
    try:
        return set(resolve_proxies(str(spec or "")))
    except Exception:  # noqa: BLE001  (a spec of an older version: compared as text)
        return set(split_proxy_list(str(spec or "")))


def _ids(spec) -> set:
    return {s.strip() for s in str(spec or "").split(",") if s.strip()}


def narrowed(previous: dict, current: dict, mode: str) -> list:
    """Resumable fields whose new value would shrink what the workdir's finished outputs cover
    (fewer architectures, fewer proxies): the rerun would rewrite its tables for less. Widening
    (more architectures, added proxies) stays allowed. Returns 'field: old -> new' strings."""
    old, new = (traverse_util.flatten_dict(d, sep=".") for d in (previous, current))
    out = []
    n_old, n_new = int(old.get("num_archs") or 0), int(new.get("num_archs") or 0)
    if n_new and (not n_old or n_new < n_old):  # 0 = every architecture
        out.append(f"num_archs: {n_old or 'all'} -> {n_new}")
    lists = {"rank": (("proxies", _proxy_set), ("rank.arch_ids", _ids)),
             "study": (("study.proxies", _proxy_set),),
             "sensitivity": (("study.proxies", _proxy_set),)}.get(mode, ())
    for field, parse in lists:
        if field not in old:
            continue
        before, after = parse(old.get(field)), parse(new.get(field))
        if field == "rank.arch_ids":  # empty = every architecture
            lost = bool(after) and (not before or not before <= after)
        else:
            lost = bool(before - after)
        if lost:
            gone = sorted(before - after) if before - after else ["all"]
            out.append(f"{field}: drops {', '.join(gone)[:120]}")
    return out


def validate_config(config, mode: str = None) -> None:
    """Checks every setting that `mode` (default config.mode) reads: the common ones, then the
    mode's own; ConfigError (or UnknownNameError) naming the first bad one. Reads no data file."""
    mode = MODES.get(mode or config.mode)
    checks.validate_common(config)
    mode.validate(config)


def load_checked_archs(config, mode: str = None) -> List:
    """The benchmark's architectures after every check of `validate_config` and the benchmark
    checked against the settings (`checks.check_archs`, then the mode's `check_archs`)."""
    validate_config(config, mode)
    archs = checks.load_archs(get_family(config.family), config)
    MODES.get(mode or config.mode).check_archs(config, archs)
    return archs


def _shares_workdir(config) -> bool:
    """Runs meant to share a workdir: rank shards, the processes of one distributed run."""
    return bool(config.get("rank_shard")) and config.mode == "rank" or \
        parallel.is_multi_process(config)


def run(config) -> object:
    """Runs config.mode on config.workdir after checking every setting and the workdir; saves the
    resolved config (with the digests of its data files) next to the results; returns what the
    mode returns."""
    mode = MODES.get(config.mode)
    validate_config(config)
    workdir = Path(config.workdir).expanduser()
    files.check_writable(workdir, "workdir")
    files.check_writable(cache_root(config, workdir), "inputs.cache_dir")
    shared = _shares_workdir(config)
    with files.workdir_lock(workdir, shared=shared):
        if not shared:
            files.remove_stale_temp_files(workdir)  # left by a killed run
        load_checked_archs(config)
        record = json.loads(json.dumps(config.to_dict(), default=str))
        record["data_digests"] = data_digests(config)
        saved = workdir / f"config_{config.mode}.json"
        if saved.exists():  # a resumed run must not mix results of two different settings
            previous = load_json(saved)
            conflicts = config_conflicts(previous, record)
            if conflicts:
                raise ConfigError(f"{workdir} holds a {config.mode} run with other settings or data "
                                  f"({', '.join(conflicts)} differ, see {saved}); use a new workdir "
                                  "or delete that one")
            shrunk = narrowed(previous, record, config.mode)
            if shrunk:
                raise ConfigError(f"{workdir} holds a {config.mode} run over more than this one "
                                  f"({'; '.join(shrunk)}); rerunning would rewrite its outputs for "
                                  "less: keep those settings (adding proxies or architectures is "
                                  "fine) or use a new workdir")
        runtime.setup(config)
        parallel.initialize(config)
        if parallel.is_writer():  # process 0 of a multi-host job writes the shared workdir
            files.write_json(saved, record, indent=2)
        logging.info("mode %s, family %s, workdir %s", config.mode, config.family, workdir)
        result = mode(config, workdir)
        parallel.sync_hosts("end", None, parallel.barrier_timeout(config))  # leave together
        return result
