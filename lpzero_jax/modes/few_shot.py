"""Modes of the few-shot ranking (issue 28): `few_shot`, `fit_ranker`, `predict`.

few_shot:    the protocol of lpzero_jax/study/few_shot.py over a feature table
             (few_shot.features), S in few_shot.sizes, seeds few_shot.seeds; with
             few_shot.searches also the genome searches on each S over the study.pool inputs
             (checkpointed per seed and S in DIR/searches/). Writes DIR/few_shot.{json,csv,md} and
             DIR/learning_curve.png.

    python -m lpzero_jax.main --config=lpzero_jax/experiments/flexibert.py --config.mode=few_shot \
        --config.few_shot.features=/path/flexibert.csv --config.workdir=runs/few_shot_flexibert

fit_ranker:  the ranker (search/ranker.py) fitted on every row of few_shot.features (a user's S
             labelled architectures), model and hyperparameters by CV inside them -> DIR/ranker.json.
predict:     ranks the architectures of benchmark_file (an own-format file whose lines may leave
             the score out) with the ranker few_shot.ranker; their features are read from
             few_shot.features when given, else computed as the rank mode computes proxies
             (DIR/predict_values.jsonl, resumable). Writes DIR/predictions.{csv,json}.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from absl import logging

from lpzero_jax import evaluation, files
from lpzero_jax.errors import ConfigError
from lpzero_jax.modes.base import register_mode
from lpzero_jax.results import load_json
from lpzero_jax.search import ranker as ranker_lib
from lpzero_jax.study import few_shot as fs


def _ints(text: str, setting: str):
    try:
        out = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{setting} {text!r}: expected a comma list of integers") from None
    if not out:
        raise ConfigError(f"{setting} is empty; give a comma list of integers")
    return out


def _kinds(config):
    kinds = [k.strip() for k in str(config.few_shot.kinds).split(",") if k.strip()]
    bad = [k for k in kinds if k not in ranker_lib.MODEL_KINDS]
    if bad or not kinds:
        raise ConfigError(f"few_shot.kinds {config.few_shot.kinds!r}: expected names of "
                          f"{', '.join(ranker_lib.MODEL_KINDS)}")
    return kinds


def _seconds(config) -> dict:
    path = str(config.few_shot.seconds).strip()
    if not path:
        return {}
    saved = load_json(Path(path).expanduser())
    if not isinstance(saved, dict):
        raise ConfigError(f"few_shot.seconds {path!r}: expected a JSON file of proxy -> seconds")
    return {str(k): float(v) for k, v in saved.items()}


def _table(config, require_score: bool = True) -> fs.FeatureTable:
    path = str(config.few_shot.features).strip()
    if not path:
        raise ConfigError("few_shot.features is empty; give a feature table (CSV of arch_id, score, "
                          "one column per proxy, e.g. the rank mode's scores.csv)")
    return fs.read_feature_table(Path(path).expanduser(), config.family, _seconds(config),
                                 require_score)


def _search_provider(config, table: fs.FeatureTable, workdir: Path):
    """(seed, size, sample) -> the genome searches on that sample (search/few_shot.py), over the
    study.pool inputs aligned to the table's rows; each checkpointed in DIR/searches/."""
    from lpzero_jax.modes.search import evolution_config
    from lpzero_jax.search.few_shot import SampleSearchSettings, parse_variants, search_on_sample
    from lpzero_jax.study.pool import load_pool

    pool = load_pool(config, workdir, str(config.study.pool))
    where = {a: i for i, a in enumerate(pool.arch_ids)}
    missing = [a for a in table.arch_ids if a not in where]
    if missing:
        raise ConfigError(f"the study.pool inputs lack {len(missing)} architectures of the feature "
                          f"table (first {missing[0]!r}); use study.pool=all or a table of the pool")
    inputs = [pool.inputs[where[a]] for a in table.arch_ids]
    try:
        variants = parse_variants(config.few_shot.variants)
    except ValueError as e:
        raise ConfigError(f"few_shot.variants: {e}") from None
    s = config.search

    def provider(seed: int, size: int, sample: np.ndarray) -> dict:
        path = Path(workdir) / "searches" / f"seed{seed}_S{size}.json"
        saved = load_json(path)
        if saved is not None:
            return {k: dict(v, values=np.asarray(v["values"], np.float64)) for k, v in saved.items()}
        cfg = evolution_config(config)
        cfg = type(cfg)(**dict(vars(cfg), seed=int(seed)))
        settings = SampleSearchSettings(cfg, aggregate=s.aggregate, backend=s.evaluator,
                                        rps=bool(s.rps), variants=variants)
        out = search_on_sample(inputs, table.truth, sample, settings)
        files.write_json(path, {k: dict(v, values=np.asarray(v["values"]).tolist())
                                for k, v in out.items()})
        logging.info("seed %d, S=%d: searches %s", seed, size,
                     ", ".join(f"{k} {v['fitness_on_sample']:.3f}" for k, v in out.items()))
        return out

    return provider


def run(config, workdir: Path) -> dict:
    workdir = Path(workdir)
    table = _table(config)
    sizes = _ints(config.few_shot.sizes, "few_shot.sizes")
    seeds = _ints(config.few_shot.seeds, "few_shot.seeds")
    if max(sizes) > len(table.arch_ids) - 3:
        raise ConfigError(f"few_shot.sizes {sizes}: S must leave at least 3 of the "
                          f"{len(table.arch_ids)} architectures held out")
    searches = _search_provider(config, table, workdir) if config.few_shot.searches else None
    logging.info("few_shot: %s, %d architectures x %d features, S %s, seeds %s%s", table.benchmark,
                 len(table.arch_ids), len(table.names), sizes, seeds,
                 ", with genome searches" if searches else "")
    result = fs.run_protocol(table, seeds, sizes, searches)
    fs.write_outputs(result, workdir)
    for size in sizes:
        block = result["summary"][str(size)]
        logging.info("S=%d: %s", size, ", ".join(f"{m} {e['rho_mean']:.3f}" for m, e in block.items()))
    return result


def run_fit_ranker(config, workdir: Path) -> dict:
    workdir = Path(workdir)
    table = _table(config)
    model = ranker_lib.fit_ranker(table.values, table.truth, table.names, kinds=_kinds(config),
                                  seed=int(config.seed))
    model.save(workdir / "ranker.json")
    best = max(model.cv, key=lambda r: r["cv_rho"])["cv_rho"] if model.cv else float("nan")
    logging.info("ranker: %s %s on %d architectures (CV rho %.3f) -> %s", model.kind, model.params,
                 model.n_train, best, workdir / "ranker.json")
    return model.to_dict()


def candidate_features(config, ranker: ranker_lib.Ranker, archs, workdir: Path) -> np.ndarray:
    """[N, F] values of the ranker's features for `archs`, computed as the rank mode does (read
    from and appended to DIR/predict_values.jsonl)."""
    from lpzero_jax.families import get_family
    from lpzero_jax.input_store import InputStore
    from lpzero_jax.modes import rank
    from lpzero_jax.proxies.resolve import resolve_proxies

    try:
        proxies = resolve_proxies(",".join(ranker.features))
    except (KeyError, ValueError) as e:
        raise ConfigError(f"the ranker's features cannot be computed here ({e}); give their values "
                          "with --config.few_shot.features") from None
    family = get_family(config.family)
    path = workdir / "predict_values.jsonl"
    done, failed = rank.load_log(path)
    todo = [a for a in archs if any((str(a.arch_id), n) not in done for n in proxies)]
    if todo:
        rank.score_into_log(family, todo, config, family.make_batch(config), proxies,
                            InputStore(config, workdir), path, done, failed)
    nan = (float("nan"), 0.0)
    return np.asarray([[done.get((str(a.arch_id), n), nan)[0] for n in ranker.features]
                       for a in archs], np.float64)


def run_predict(config, workdir: Path) -> dict:
    from lpzero_jax.benchmarks import own
    from lpzero_jax.families import get_family

    workdir = Path(workdir)
    if not str(config.few_shot.ranker).strip():
        raise ConfigError("few_shot.ranker is empty; give the ranker.json a fit_ranker run wrote")
    model = ranker_lib.Ranker.load(Path(config.few_shot.ranker).expanduser())
    if str(config.few_shot.features).strip():
        table = _table(config, require_score=False)
        missing = [f for f in model.features if f not in table.names]
        if missing:
            raise ConfigError(f"few_shot.features lacks the ranker's features {missing}")
        ids, x, truth = table.arch_ids, table.columns(model.features), table.truth
    else:
        path = config.get("benchmark_file")
        if not path:
            raise ConfigError("predict: set --config.benchmark_file to an own-format file of the "
                              "candidates (their score may be left out) or give few_shot.features")
        family = get_family(config.family)
        archs, _ = own.load_own(Path(path).expanduser(), family.name,
                                family.parse_benchmark_config, allow_missing_score=True)
        ids, truth = [str(a.arch_id) for a in archs], np.asarray([a.score for a in archs])
        x = candidate_features(config, model, archs, workdir)
    rows = ranker_lib.predict_ranking(model, ids, x)
    with files.atomic_write(workdir / "predictions.csv") as f:
        w = csv.DictWriter(f, fieldnames=["rank", "arch_id", "predicted"])
        w.writeheader()
        w.writerows(rows)
    out = {"ranker": str(config.few_shot.ranker), "kind": model.kind, "features": model.features,
           "predictions": rows}
    if np.isfinite(truth).sum() >= 3:  # scores known for some: how the ranking did on them
        out["check"] = evaluation.rank_correlations(model.predict(x), truth)
    files.write_json(workdir / "predictions.json", out, indent=1)
    logging.info("predict: %d architectures ranked -> %s; best %s", len(rows),
                 workdir / "predictions.csv", rows[0]["arch_id"] if rows else "-")
    return out


register_mode("few_shot")(run)
register_mode("fit_ranker")(run_fit_ranker)
register_mode("predict")(run_predict)
