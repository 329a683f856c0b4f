"""Entry point: `python -m lpzero_jax.main --config=experiments/flexibert.py [--config.mode=rank ...]`.

Parses the ml_collections config file given by --config (any field can be overridden with
--config.<field>=value) and runs the mode named by `config.mode` with `config.workdir`.

Before any work every setting is checked (`lpzero_jax.checks`), the workdir is locked (one run at a
time; rank_shard runs and the hosts of one distributed run share it) and compared with the settings
and data a previous run left there. A user error (a bad setting, missing or damaged data, a busy
workdir) and an error of the environment (disk full, permission) are printed as one line naming the
cause, with exit status 2 and 1; --traceback (or LPZERO_TRACEBACK=1) shows the whole traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (get_config()).",
                                          lock_config=True)
_TRACEBACK = flags.DEFINE_bool("traceback", False, "Show the full traceback of user errors "
                               "(also: LPZERO_TRACEBACK=1).")

EXIT_ENVIRONMENT_ERROR = 1
EXIT_USER_ERROR = 2

# Fields a rerun may change without invalidating what the workdir already holds. Paths of data
# files may change: their CONTENTS are compared (`data_digests` in the saved config).
RESUMABLE_CHANGES = ("workdir", "proxies", "num_archs", "compilation_cache_dir", "inputs.cache_dir",
                     "parallel", "distributed", "search.baselines", "search.checkpoint_every",
                     "search.evaluate_all", "search.generations", "bench", "data_root",
                     "benchmark_file", "benchmark_dir", "corpus_file", "vocab_path", "rank.fuse_hvp",
                     "rank.arch_ids", "rank_shard", "study.proxies")


def config_conflicts(previous: dict, current: dict) -> list:
    """Fields whose values differ between a workdir's saved config and this run's, ignoring the
    ones a resumed run may change (RESUMABLE_CHANGES: paths, which proxies, how far to go) and
    fields only one of them has (a config saved by an older version)."""
    from flax import traverse_util

    old, new = (traverse_util.flatten_dict(d, sep=".") for d in (previous, current))

    def free(key):
        return any(key == f or key.startswith(f + ".") for f in RESUMABLE_CHANGES)

    return sorted(k for k in set(old) & set(new)
                  if not free(k) and str(old.get(k)) != str(new.get(k)))


def _shares_workdir(config) -> bool:
    """Runs meant to share a workdir: rank shards, the processes of one distributed run."""
    dist = config.get("distributed") or {}
    return bool(config.get("rank_shard")) and config.mode == "rank" or \
        int(dist.get("num_processes") or 1) > 1 or bool(dist.get("auto_detect"))


def run(config) -> object:
    """Runs config.mode on config.workdir after checking every setting and the workdir; saves the
    resolved config (with the digests of its data files) next to the results."""
    from lpzero_jax import checks, files, parallel, runtime
    from lpzero_jax.errors import ConfigError
    from lpzero_jax.families import get_family
    from lpzero_jax.input_store import data_digests
    from lpzero_jax.modes import MODES

    mode = MODES.get(config.mode)
    checks.validate_config(config)
    workdir = Path(config.workdir).expanduser()
    files.check_writable(workdir, "workdir")
    if config.inputs.get("cache_dir"):
        files.check_writable(config.inputs.cache_dir, "inputs.cache_dir")
    shared = _shares_workdir(config)
    with files.workdir_lock(workdir, shared=shared):
        if not shared:
            files.remove_stale_temp_files(workdir)  # left by a killed run
        checks.load_archs(get_family(config.family), config)
        record = json.loads(json.dumps(config.to_dict(), default=str))
        record["data_digests"] = data_digests(config)
        saved = workdir / f"config_{config.mode}.json"
        if saved.exists():  # a resumed run must not mix results of two different settings
            from lpzero_jax.results import load_json

            conflicts = config_conflicts(load_json(saved), record)
            if conflicts:
                raise ConfigError(f"{workdir} holds a {config.mode} run with other settings or data "
                                  f"({', '.join(conflicts)} differ, see {saved}); use a new workdir "
                                  "or delete that one")
        runtime.setup(config)
        parallel.initialize(config)
        if parallel.is_writer():  # process 0 of a multi-host job writes the shared workdir
            files.write_json(saved, record, indent=2)
        logging.info("mode %s, family %s, workdir %s", config.mode, config.family, workdir)
        result = mode(config, workdir)
        parallel.sync_hosts("end", None, parallel.barrier_timeout(config))  # leave together
        return result


def report_error(error: BaseException) -> int:
    """Prints a user or environment error as one line on stderr; returns the exit status, or 0
    when the error is of neither kind (a bug: the caller re-raises it with its traceback)."""
    from lpzero_jax.errors import UserError, is_environment_error

    if isinstance(error, UserError):
        status, kind = EXIT_USER_ERROR, "error"
    elif is_environment_error(error):
        status, kind = EXIT_ENVIRONMENT_ERROR, "environment error"
    else:
        return 0
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, OSError) and not isinstance(error, UserError):
        text = f"{type(error).__name__}: {text}"
    print(f"lpzero: {kind}: {text} (details: rerun with --traceback)", file=sys.stderr)
    return status


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if _CONFIG.value is None:
        raise app.UsageError("--config=experiments/<family>.py is required")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        run(_CONFIG.value)
    except Exception as e:  # noqa: BLE001  (sorted into user / environment / bug below)
        from lpzero_jax import parallel

        wants_traceback = _TRACEBACK.value or os.environ.get("LPZERO_TRACEBACK", "") not in ("", "0")
        status = 0 if wants_traceback else report_error(e)
        parallel.exit_if_distributed(e, status or EXIT_ENVIRONMENT_ERROR)  # a multi-process job ends here
        if not status:
            raise
        sys.exit(status)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
