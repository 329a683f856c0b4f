"""`fit_ranker` mode: a ranker (search/ranker.py) fitted on every row of few_shot.features (a
user's labelled architectures; with few_shot.arch_features also their architecture descriptors,
read off the run's benchmark configs by arch id), its model kind and hyperparameters chosen by cross-validation
inside them; written to DIR/ranker.json for the `predict` mode.

    lpzero --config=flexibert --config.mode=fit_ranker --config.few_shot.features=labelled.csv \
        --config.workdir=runs/my_ranker
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from absl import logging

from lpzero_jax.errors import ConfigError
from lpzero_jax.modes import few_shot
from lpzero_jax.modes.base import register_mode
from lpzero_jax.search import ranker as ranker_lib


def run(config, workdir: Path) -> dict:
    workdir = Path(workdir)
    table = few_shot.with_descriptors(config, few_shot.feature_table(config))
    x, names = table.values, list(table.names)
    if table.arch_values is not None:
        x, names = np.concatenate([x, table.arch_values], axis=1), names + table.arch_names
    model = ranker_lib.fit_ranker(x, table.truth, names, kinds=few_shot.kinds(config),
                                  seed=int(config.seed))
    model.save(workdir / "ranker.json")
    best = max(model.cv, key=lambda r: r["cv_rho"])["cv_rho"] if model.cv else float("nan")
    logging.info("ranker: %s %s on %d architectures (CV rho %.3f) -> %s", model.kind, model.params,
                 model.n_train, best, workdir / "ranker.json")
    return model.to_dict()


def validate(config) -> None:
    few_shot.kinds(config)
    if not str(config.few_shot.features).strip():
        raise ConfigError("few_shot.features is empty; give the labelled architectures' "
                          "feature table (CSV of arch_id, score, one column per proxy)")


register_mode("fit_ranker", validate=validate)(run)
