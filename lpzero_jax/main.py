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


def run(config) -> object:
    """Runs config.mode on config.workdir; saves the resolved config next to the results."""
    from lpzero_jax import parallel, runtime
    from lpzero_jax.modes import MODES

    mode = MODES.get(config.mode)
    runtime.setup(config)
    parallel.initialize(config)
    workdir = Path(config.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / f"config_{config.mode}.json", "w") as f:
        json.dump(config.to_dict(), f, indent=2, default=str)
    logging.info("mode %s, family %s, workdir %s", config.mode, config.family, workdir)
    return mode(config, workdir)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if _CONFIG.value is None:
        raise app.UsageError("--config=experiments/<family>.py is required")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    run(_CONFIG.value)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
