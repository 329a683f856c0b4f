"""`predict` mode: ranks new candidates with a ranker written by the `fit_ranker` mode.

The candidates are the lines of few_shot.candidates, an own-format benchmark file (benchmarks/own.py)
whose lines may leave the score out (only here); their features are read from few_shot.features
when given (a CSV whose score column may be empty), else computed as the rank mode computes proxies
(DIR/predict_values.jsonl, resumable). Writes DIR/predictions.csv (rank, arch_id, predicted; 1 =
best) and DIR/predictions.json (with rho/tau against the scores the file does hold, if 3 or more).

    lpzero --config=flexibert --config.mode=predict --config.few_shot.ranker=runs/my_ranker/ranker.json \
        --config.few_shot.candidates=new.jsonl --config.workdir=runs/my_predictions
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from absl import logging

from lpzero_jax import evaluation, files
from lpzero_jax.benchmarks import own
from lpzero_jax.errors import ConfigError
from lpzero_jax.families import get_family
from lpzero_jax.input_store import InputStore
from lpzero_jax.modes import few_shot
from lpzero_jax.modes.base import register_mode
from lpzero_jax.proxies import scoring
from lpzero_jax.proxies.resolve import resolve_proxies
from lpzero_jax.search import ranker as ranker_lib
from lpzero_jax.search.arch_features import PREFIX, descriptor_table


def candidate_features(config, ranker: ranker_lib.Ranker, archs, workdir: Path) -> np.ndarray:
    """[N, F] values of the ranker's features for `archs`: architecture descriptors ("arch:" names)
    read off their configs, proxies computed as the rank mode does (read from and appended to
    DIR/predict_values.jsonl)."""

    described = [f for f in ranker.features if f.startswith(PREFIX)]
    wanted = [f for f in ranker.features if not f.startswith(PREFIX)]
    values = {}
    if described:
        _, table = descriptor_table([a.config for a in archs], described)
        values.update({f: table[:, j] for j, f in enumerate(described)})
    if wanted:
        try:
            proxies = resolve_proxies(",".join(wanted))
        except (KeyError, ValueError) as e:
            raise ConfigError(f"the ranker's features cannot be computed here ({e}); give their "
                              "values with --config.few_shot.features") from None
        family = get_family(config.family)
        path = workdir / "predict_values.jsonl"
        done, failed = scoring.load_log(path)
        todo = [a for a in archs if any((str(a.arch_id), n) not in done for n in proxies)]
        if todo:
            scoring.score_into_log(family, todo, config, family.make_batch(config), proxies,
                                   InputStore(config, workdir), path, done, failed)
        nan = (float("nan"), 0.0)
        for n in wanted:
            values[n] = np.asarray([done.get((str(a.arch_id), n), nan)[0] for a in archs])
    return np.stack([np.asarray(values[f], np.float64) for f in ranker.features], axis=1)


def run(config, workdir: Path) -> dict:

    workdir = Path(workdir)
    model = ranker_lib.Ranker.load(Path(config.few_shot.ranker).expanduser())
    if str(config.few_shot.features).strip():
        table = few_shot.feature_table(config, require_score=False)
        missing = [f for f in model.features if f not in table.names]
        if missing:
            raise ConfigError(f"few_shot.features lacks the ranker's features {missing}")
        ids, x, truth = table.arch_ids, table.columns(model.features), table.truth
    else:
        path = str(config.few_shot.candidates).strip()
        family = get_family(config.family)
        archs, _ = own.load_own(Path(path).expanduser(), family.name,
                                family.parse_benchmark_config, allow_missing_score=True)
        ids, truth = [str(a.arch_id) for a in archs], np.asarray([a.score for a in archs])
        x = candidate_features(config, model, archs, workdir)
    rows = ranker_lib.predict_ranking(model, ids, x)
    files.write_csv(workdir / "predictions.csv", rows, ["rank", "arch_id", "predicted"])
    out = {"ranker": str(config.few_shot.ranker), "kind": model.kind, "features": model.features,
           "predictions": rows}
    if np.isfinite(truth).sum() >= 3:  # scores known for some: how the ranking did on them
        out["check"] = evaluation.rank_correlations(model.predict(x), truth)
    files.write_json(workdir / "predictions.json", out, indent=1)
    logging.info("predict: %d architectures ranked -> %s; best %s", len(rows),
                 workdir / "predictions.csv", rows[0]["arch_id"] if rows else "-")
    return out


def validate(config) -> None:
    if not str(config.few_shot.ranker).strip():
        raise ConfigError("few_shot.ranker is empty; give the ranker.json a fit_ranker run wrote")
    if not (str(config.few_shot.candidates).strip() or str(config.few_shot.features).strip()):
        raise ConfigError("predict: set --config.few_shot.candidates to an own-format file of the "
                          "candidates (their score may be left out), or give their values with "
                          "--config.few_shot.features")


register_mode("predict", validate=validate)(run)
