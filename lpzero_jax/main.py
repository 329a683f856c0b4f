"""Entry point: `python -m lpzero_jax.main --config=experiments/flexibert.py [--config.mode=rank ...]`.

Parses the ml_collections config file given by --config (any field can be overridden with
--config.<field>=value) and runs the mode named by `config.mode` with `config.workdir`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (get_config()).",
                                          lock_config=True)


# Fields a rerun may change without invalidating what the workdir already holds.
RESUMABLE_CHANGES = ("workdir", "proxies", "num_archs", "compilation_cache_dir", "inputs.cache_dir",
                     "parallel", "distributed", "search.baselines", "search.checkpoint_every",
                     "search.evaluate_all", "search.generations", "bench", "data_root",
                     "benchmark_file", "benchmark_dir", "corpus_file", "vocab_path", "fuse_hvp",
                     "rank_shard")


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


def run(config) -> object:
    """Runs config.mode on config.workdir; saves the resolved config next to the results."""
    from lpzero_jax import parallel, runtime
    from lpzero_jax.modes import MODES
    from lpzero_jax.search.checkpoint import save_json

    mode = MODES.get(config.mode)
    runtime.setup(config)
    parallel.initialize(config)
    workdir = Path(config.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    saved = workdir / f"config_{config.mode}.json"
    if saved.exists():  # a resumed run must not mix results of two different settings
        conflicts = config_conflicts(json.loads(saved.read_text()),
                                     json.loads(json.dumps(config.to_dict(), default=str)))
        if conflicts:
            raise ValueError(f"{workdir} holds a {config.mode} run with other settings "
                             f"({', '.join(conflicts)} differ, see {saved}); use a new workdir "
                             "or delete that one")
    if parallel.is_writer():  # process 0 of a multi-host job writes the shared workdir
        save_json(saved, config.to_dict(), indent=2, default=str)
    logging.info("mode %s, family %s, workdir %s", config.mode, config.family, workdir)
    result = mode(config, workdir)
    parallel.sync_hosts("end", None, parallel.barrier_timeout(config))  # leave together
    return result


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if _CONFIG.value is None:
        raise app.UsageError("--config=experiments/<family>.py is required")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        run(_CONFIG.value)
    except Exception as e:  # noqa: BLE001
        from lpzero_jax import parallel

        parallel.exit_if_distributed(e)
        raise


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
