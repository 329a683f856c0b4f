"""`few_shot` mode: the few-shot ranking protocol (issue 28); the settings helpers of the
`fit_ranker` and `predict` modes (modes/fit_ranker.py, modes/predict.py).

few_shot:    the protocol of lpzero_jax/study/few_shot.py over a feature table
             (few_shot.features), S in few_shot.sizes, seeds few_shot.seeds; with
             few_shot.searches also the genome searches on each S over the study.pool inputs
             (checkpointed per seed and S in DIR/searches/). Writes DIR/few_shot.{json,csv,md} and
             DIR/learning_curve.png.

    python -m lpzero_jax.main --config=lpzero_jax/experiments/flexibert.py --config.mode=few_shot \
        --config.few_shot.features=/path/flexibert.csv --config.workdir=runs/few_shot_flexibert

"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from absl import logging

from lpzero_jax import files
from lpzero_jax.errors import ConfigError, DataFileError
from lpzero_jax.modes.base import register_mode
from lpzero_jax.results import load_json
from lpzero_jax.search import ranker as ranker_lib
from lpzero_jax.study import few_shot as fs


def ints(text: str, setting: str):
    try:
        out = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{setting} {text!r}: expected a comma list of integers") from None
    if not out:
        raise ConfigError(f"{setting} is empty; give a comma list of integers")
    return out


def kinds(config):
    kinds = [k.strip() for k in str(config.few_shot.kinds).split(",") if k.strip()]
    bad = [k for k in kinds if k not in ranker_lib.MODEL_KINDS]
    if bad or not kinds:
        raise ConfigError(f"few_shot.kinds {config.few_shot.kinds!r}: expected names of "
                          f"{', '.join(ranker_lib.MODEL_KINDS)}")
    return kinds


def seconds(config) -> dict:
    path = str(config.few_shot.seconds).strip()
    if not path:
        return {}
    saved = load_json(Path(path).expanduser())
    if not isinstance(saved, dict):
        raise ConfigError(f"few_shot.seconds {path!r}: expected a JSON file of proxy -> seconds "
                          "(or the rank mode's ranking.json)")
    try:  # {proxy: seconds}, or the rank mode's ranking.json {proxy: {seconds_per_arch, ...}}
        return {str(k): float(v["seconds_per_arch"] if isinstance(v, dict) else v)
                for k, v in saved.items()}
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"few_shot.seconds {path!r}: expected proxy -> seconds per architecture "
                          "(or the rank mode's ranking.json)") from None


def feature_table(config, require_score: bool = True) -> fs.FeatureTable:
    path = str(config.few_shot.features).strip()
    if not path:
        raise ConfigError("few_shot.features is empty; give a feature table (CSV of arch_id, score, "
                          "one column per proxy, e.g. the rank mode's scores.csv)")
    label = str(config.few_shot.get("label", "")).strip() or f"{config.family} ({Path(path).stem})"
    return fs.read_feature_table(Path(path).expanduser(), label, seconds(config), require_score)


def with_descriptors(config, table: fs.FeatureTable) -> fs.FeatureTable:
    """The table with the architecture descriptors of its rows, read off the configs of the run's
    benchmark (matched by arch id), when few_shot.arch_features is on."""
    if not config.few_shot.arch_features:
        return table
    from lpzero_jax.checks import load_archs
    from lpzero_jax.families import get_family

    by_id = {str(a.arch_id): a for a in load_archs(get_family(config.family), config)}
    missing = [a for a in table.arch_ids if a not in by_id]
    if missing:
        raise ConfigError(f"few_shot.arch_features: {len(missing)} architectures of the feature table "
                          f"are not in the run's benchmark (first {missing[0]!r}); run with the "
                          "benchmark the table was computed on, or set few_shot.arch_features=False")
    return table.with_descriptors([by_id[a].config for a in table.arch_ids])


def _search_key(table: fs.FeatureTable, sample: np.ndarray) -> dict:
    """What a checkpointed search was computed from: the table's architectures in order, the
    sample's and their labels (digests), so that an edited feature table is never reused."""
    idx = [int(i) for i in sample]
    return {"arch_ids": files.value_digest(list(table.arch_ids)),
            "sample": files.value_digest([table.arch_ids[i] for i in idx]),
            "sample_labels": files.value_digest([round(float(table.truth[i]), 12) for i in idx])}


def _saved_searches(path: Path, saved: dict, key: dict, n_archs: int) -> dict:
    """The searches of a checkpoint, after checking it was computed from this table and sample
    (older files carry no key: then only the number of values is checked)."""
    found = saved.get("searches", saved)
    if "searches" in saved and saved.get("key") != key:
        changed = [k for k in key if saved.get("key", {}).get(k) != key[k]]
        raise DataFileError(
            f"{path} was computed from another feature table or sample ({', '.join(changed)} "
            "differ): the table's architectures, order or labels changed since. Use a new "
            "--config.workdir, or delete DIR/searches/ to search again")
    for name, entry in found.items():
        if len(entry.get("values", ())) != n_archs:
            raise DataFileError(
                f"{path}: {name} has {len(entry.get('values', ()))} values for a table of "
                f"{n_archs} architectures; it belongs to another table. Use a new "
                "--config.workdir, or delete DIR/searches/ to search again")
    return {k: dict(v, values=np.asarray(v["values"], np.float64)) for k, v in found.items()}


def _search_provider(config, table: fs.FeatureTable, workdir: Path):
    """(seed, size, sample) -> the genome searches on that sample (search/few_shot.py), over the
    study.pool inputs aligned to the table's rows; each checkpointed in DIR/searches/."""
    from lpzero_jax.search.driver import evolution_config
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
        key = _search_key(table, sample)
        saved = load_json(path)
        if saved is not None:
            return _saved_searches(path, saved, key, len(table.arch_ids))
        cfg = evolution_config(config)
        cfg = type(cfg)(**dict(vars(cfg), seed=int(seed)))
        settings = SampleSearchSettings(cfg, aggregate=s.aggregate, backend=s.evaluator,
                                        rps=bool(s.rps), variants=variants)
        out = search_on_sample(inputs, table.truth, sample, settings)
        files.write_json(path, {"key": key, "searches": {
            k: dict(v, values=np.asarray(v["values"]).tolist()) for k, v in out.items()}})
        logging.info("seed %d, S=%d: searches %s", seed, size,
                     ", ".join(f"{k} {v['fitness_on_sample']:.3f}" for k, v in out.items()))
        return out

    return provider


def run(config, workdir: Path) -> dict:
    workdir = Path(workdir)
    table = with_descriptors(config, feature_table(config))
    sizes = ints(config.few_shot.sizes, "few_shot.sizes")
    seeds = ints(config.few_shot.seeds, "few_shot.seeds")
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


def validate(config) -> None:
    """few_shot.sizes / seeds / kinds / variants well formed (the feature table is read by run)."""
    from lpzero_jax.search.few_shot import parse_variants

    ints(config.few_shot.sizes, "few_shot.sizes")
    ints(config.few_shot.seeds, "few_shot.seeds")
    kinds(config)
    try:
        parse_variants(config.few_shot.variants)
    except ValueError as e:
        raise ConfigError(f"few_shot.variants: {e}") from None
    if not str(config.few_shot.features).strip():
        raise ConfigError("few_shot.features is empty; give a feature table (CSV of arch_id, score, "
                          "one column per proxy, e.g. the rank mode's scores.csv)")


register_mode("few_shot", validate=validate)(run)
