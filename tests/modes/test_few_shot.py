"""Modes fit_ranker, predict and few_shot end to end on small inputs."""

import csv
import json

import numpy as np
import pytest

from lpzero_jax.benchmarks.base import BenchmarkFormatError
from lpzero_jax.benchmarks.own import FORMAT, load_own
from lpzero_jax.errors import ConfigError
from lpzero_jax.families import get_family
from lpzero_jax.modes import few_shot, fit_ranker, predict
from tests.conftest import tiny_config

LAYER = {"operation_type": "SA", "operation_parameter": "SDP", "num_operation_heads": 2,
         "feed_forward_dimension": 64, "num_feed_forward": 1}


def feature_csv(path, n=40, seed=0, scored=True):
    rng = np.random.default_rng(seed)
    params = rng.integers(1_000, 100_000, n).astype(float)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch_id", "score", "params", "noise"])
        for i in range(n):
            w.writerow([f"a{i}", np.log(params[i]) if scored else "", params[i], rng.random()])
    return path


def unscored_benchmark(path, widths):
    header = {"format": FORMAT, "family": "flexibert", "metric": "glue", "higher_is_better": True}
    rows = [{"id": f"new{w}", "config": {"hidden_size": w, "encoder_layers": [LAYER, LAYER]}}
            for w in widths]
    path.write_text("\n".join(json.dumps(x) for x in [header] + rows) + "\n")
    return path


def test_a_missing_score_is_allowed_only_when_asked(tmp_path):
    path = unscored_benchmark(tmp_path / "new.jsonl", [32, 64])
    family = get_family("flexibert")
    with pytest.raises(BenchmarkFormatError, match="missing field 'score'"):
        load_own(path, "flexibert", family.parse_benchmark_config)
    archs, _ = load_own(path, "flexibert", family.parse_benchmark_config, allow_missing_score=True)
    assert [a.arch_id for a in archs] == ["new32", "new64"] and all(np.isnan(a.score) for a in archs)


def test_fit_ranker_then_predict_from_a_feature_table_without_scores(tmp_path):
    config = tiny_config(mode="fit_ranker")
    config.few_shot.arch_features = False  # the table's ids are not the benchmark's
    config.few_shot.features = str(feature_csv(tmp_path / "labelled.csv"))
    config.few_shot.kinds = "single,ridge"
    fitted = fit_ranker.run(config, tmp_path / "fit")
    assert fitted["features"] == ["params", "noise"]
    config.few_shot.ranker = str(tmp_path / "fit" / "ranker.json")
    config.few_shot.features = str(feature_csv(tmp_path / "new.csv", n=12, seed=1, scored=False))
    out = predict.run(config, tmp_path / "predict")
    rows = list(csv.DictReader(open(tmp_path / "predict" / "predictions.csv")))
    assert [int(r["rank"]) for r in rows] == list(range(1, 13))
    table = {r[0]: float(r[2]) for r in list(csv.reader(open(config.few_shot.features)))[1:]}
    by_params = sorted(table, key=lambda a: -table[a])
    assert [r["arch_id"] for r in rows][:3] == by_params[:3]  # the ranker learnt: more params, better
    assert "check" not in out  # no score known: nothing to check


def test_predict_ranks_an_unscored_own_benchmark_file_computing_the_features(tmp_path):
    config = tiny_config(mode="predict")
    config.few_shot.arch_features = False
    config.few_shot.features = str(feature_csv(tmp_path / "labelled.csv"))
    config.few_shot.kinds = "single"
    fit_ranker.run(config, tmp_path / "fit")
    config.few_shot.features = ""
    config.few_shot.ranker = str(tmp_path / "fit" / "ranker.json")
    config.few_shot.candidates = str(unscored_benchmark(tmp_path / "new.jsonl", [32, 128, 64]))
    config.proxies = "params,noise"
    with pytest.raises(ConfigError, match="cannot be computed here"):
        predict.run(config, tmp_path / "predict")  # 'noise' is no proxy of the zoo
    ranker = json.load(open(config.few_shot.ranker))
    ranker["features"], ranker["state"]["train_values"] = ["params"], ranker["state"]["train_values"][:1]
    json.dump(ranker, open(config.few_shot.ranker, "w"))
    out = predict.run(config, tmp_path / "predict")
    assert [r["arch_id"] for r in out["predictions"]] == ["new128", "new64", "new32"]
    assert (tmp_path / "predict" / "predict_values.jsonl").exists()


def test_few_shot_mode_writes_the_protocol_outputs(tmp_path):
    config = tiny_config(mode="few_shot")
    config.few_shot.arch_features = False
    config.few_shot.features = str(feature_csv(tmp_path / "t.csv", n=60))
    config.few_shot.sizes, config.few_shot.seeds = "20", "1,2,3"
    result = few_shot.run(config, tmp_path / "run")
    assert result["sizes"] == [20] and result["seeds"] == [1, 2, 3]
    assert {"best_zoo_on_S", "params", "ranker", "oracle_zoo"} <= set(result["summary"]["20"])
    for name in ("few_shot.json", "few_shot.csv", "few_shot.md", "learning_curve.png"):
        assert (tmp_path / "run" / name).exists()
    config.few_shot.sizes = "58"
    with pytest.raises(ConfigError, match="at least 3"):
        few_shot.run(config, tmp_path / "run2")


def test_the_api_fits_a_ranker_and_predicts_with_it(tmp_path):
    import lpzero_jax as lz

    labelled = feature_csv(tmp_path / "labelled.csv")
    model = lz.fit_ranker(labelled, "flexibert", kinds="ridge", workdir=tmp_path / "fit",
                          overrides={"compilation_cache_dir": "", "few_shot.arch_features": False})
    assert model.kind == "ridge" and model.features == ["params", "noise"]
    new = feature_csv(tmp_path / "new.csv", n=5, seed=2, scored=False)
    rows = lz.predict(tmp_path / "fit" / "ranker.json", features=new, family="flexibert",
                      workdir=tmp_path / "pred", overrides={"compilation_cache_dir": ""})
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="give the candidates"):
        lz.predict(tmp_path / "fit" / "ranker.json")


def test_a_ranker_with_architecture_descriptors_predicts_unscored_candidates(tmp_path):
    """fit_ranker on 40 FlexiBERT archs (params + descriptors of their configs); predict computes
    both for candidates of an own-format file without scores."""
    family = get_family("flexibert")
    config = tiny_config(mode="fit_ranker", num_archs=40)
    archs = family.load_benchmark(config)
    with open(tmp_path / "labelled.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch_id", "score", "params"])
        for i, a in enumerate(archs):
            w.writerow([a.arch_id, a.score, 1000 + (i * 7919) % 40])  # params replaced by noise
    config.few_shot.features = str(tmp_path / "labelled.csv")
    config.few_shot.kinds = "ridge"
    fitted = fit_ranker.run(config, tmp_path / "fit")
    assert fitted["features"][0] == "params" and len(fitted["features"]) > 5
    assert "arch:hidden_size" in fitted["features"]
    config.few_shot.features = ""
    config.few_shot.ranker = str(tmp_path / "fit" / "ranker.json")
    config.few_shot.candidates = str(unscored_benchmark(tmp_path / "new.jsonl", [128, 256]))
    out = predict.run(config, tmp_path / "predict")
    assert sorted(r["arch_id"] for r in out["predictions"]) == ["new128", "new256"]
    assert all(np.isfinite(r["predicted"]) for r in out["predictions"])


def test_a_search_checkpoint_of_another_feature_table_is_refused_not_reused(tmp_path):
    from lpzero_jax.errors import DataFileError
    from lpzero_jax.study.few_shot import FeatureTable

    ids = [f"a{i}" for i in range(6)]
    table = FeatureTable("b", ids, np.arange(6.0), ["p"], np.ones((6, 1)))
    sample = np.array([0, 2, 4])
    key = few_shot._search_key(table, sample)
    saved = {"key": key, "searches": {"evolution": {"values": [1.0] * 6, "fitness_on_sample": 0.5}}}
    out = few_shot._saved_searches(tmp_path / "s.json", saved, key, 6)
    assert out["evolution"]["values"].tolist() == [1.0] * 6
    relabelled = FeatureTable("b", ids, np.arange(6.0)[::-1].copy(), ["p"], np.ones((6, 1)))
    with pytest.raises(DataFileError, match="sample_labels differ"):
        few_shot._saved_searches(tmp_path / "s.json", saved, few_shot._search_key(relabelled, sample), 6)
    reordered = FeatureTable("b", ids[::-1], np.arange(6.0), ["p"], np.ones((6, 1)))
    with pytest.raises(DataFileError, match="arch_ids, sample differ"):
        few_shot._saved_searches(tmp_path / "s.json", saved, few_shot._search_key(reordered, sample), 6)
    legacy = {"evolution": {"values": [1.0] * 5}}  # an old file without its key: the count is checked
    with pytest.raises(DataFileError, match="5 values for a table of 6"):
        few_shot._saved_searches(tmp_path / "s.json", legacy, key, 6)
