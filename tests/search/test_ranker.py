"""The few-shot ranker: rank normalisation, CV inside the training rows, models, JSON round trip."""

import numpy as np
import pytest

from lpzero_jax import evaluation
from lpzero_jax.search import baselines
from lpzero_jax.search import ranker as R


def synthetic(n=120, seed=0):
    """Five features: f0 and -f1 carry the truth (f0 strongly), f2..f4 noise; a few NaNs."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal(n)
    x = np.stack([np.exp(latent + 0.3 * rng.standard_normal(n)),  # heavy tailed, monotone in truth
                  -latent + 0.8 * rng.standard_normal(n),
                  rng.standard_normal(n), rng.standard_normal(n) * 1e9, rng.random(n)], axis=1)
    x[3, 2] = np.nan
    x[7, 0] = np.nan
    return x, latent, ["f0", "f1", "f2", "f3", "f4"]


def test_rank_normalise_is_the_mid_rank_ecdf_of_the_training_values():
    train = np.array([[1.0], [2.0], [2.0], [5.0]])
    state = R.normaliser_state(train)
    got = R.rank_normalise(np.array([[1.0], [2.0], [5.0], [3.5], [np.nan], [0.0], [9.0], [100.0]]), state)[:, 0]
    np.testing.assert_allclose(got[:4], [0.125, 0.5, 0.875, (0.5 + 0.875) / 2])
    assert got[4] == 0.5  # a missing value is the median rank
    assert 0 <= got[5] < 0.125 and 0.875 < got[6] < got[7] <= 1.0  # beyond the range: still ordered
    # one architecture alone gets the value it gets among many
    assert R.rank_normalise(np.array([[3.5]]), state)[0, 0] == got[3]


def test_cv_splits_partition_the_training_rows_only():
    for n in (20, 50, 100):
        splits = R.cv_splits(n, seed=3, repeats=3)
        k = max(2, min(5, n // 10))
        assert len(splits) == 3 * k
        for r in range(3):
            tests = [t for _, t in splits[r * k:(r + 1) * k]]
            assert sorted(np.concatenate(tests).tolist()) == list(range(n))
            assert min(len(t) for t in tests) >= 10
        for train, test in splits:
            assert not set(train) & set(test) and set(train) | set(test) == set(range(n))
    with pytest.raises(ValueError, match="at least 4"):
        R.cv_splits(3, 0)


@pytest.mark.parametrize("kinds", [("single",), ("ridge",), ("lambdarank",), R.MODEL_KINDS])
def test_fitted_ranker_ranks_held_out_rows_and_round_trips_bit_identically(kinds, tmp_path):
    x, y, names = synthetic()
    sample, held = evaluation.sample_split(len(y), 50, seed=1)
    model = R.fit_ranker(x[sample], y[sample], names, kinds=kinds, seed=1)
    assert model.kind in kinds and model.n_train == 50
    pred = model.predict(x)
    assert evaluation.spearman_rho(pred[held], y[held]) > 0.75
    path = tmp_path / "ranker.json"
    model.save(path)
    loaded = R.Ranker.load(path)
    assert loaded.kind == model.kind and loaded.features == names and loaded.params == model.params
    assert np.array_equal(loaded.predict(x), pred)  # bit-identical, NaN features included
    assert np.array_equal(loaded.predict(x[:1]), pred[:1])  # one architecture alone


def test_ridge_beats_the_best_single_feature_when_two_features_carry_the_truth():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(300), rng.standard_normal(300)
    x = np.stack([a, b, rng.standard_normal(300)], axis=1)
    y = a + b
    ridge = R.fit_ranker(x[:50], y[:50], ["a", "b", "n"], kinds=("ridge",))
    single = R.fit_ranker(x[:50], y[:50], ["a", "b", "n"], kinds=("single",))
    assert evaluation.spearman_rho(ridge.predict(x[50:]), y[50:]) > 0.95
    assert evaluation.spearman_rho(single.predict(x[50:]), y[50:]) < 0.8
    both = R.fit_ranker(x[:50], y[:50], ["a", "b", "n"], seed=0)
    assert both.kind == "ridge"  # the CV inside the 50 picks the model that generalises
    assert {r["kind"] for r in both.cv} == set(R.MODEL_KINDS)


def test_single_keeps_the_sign_of_a_negatively_correlated_feature():
    x, y, names = synthetic()
    pick = baselines.best_zoo_on_S(x[:, 1:3], ["f1", "f2"], y[:60], np.arange(60))
    assert pick["name"] == "f1" and pick["sign"] == -1.0 and pick["rho"] < -0.5
    assert evaluation.spearman_rho(pick["scores"][60:], y[60:]) > 0.5
    model = R.fit_model("single", {}, x[:60, 1:3], y[:60], ["f1", "f2"])
    assert model.params["feature_name"] == "f1" and model.params["sign"] == -1.0


def test_a_malformed_ranker_file_is_refused_naming_it(tmp_path):
    bad = tmp_path / "r.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(R.RankerFileError, match="not a ranker file"):
        R.Ranker.load(bad)
    with pytest.raises(R.RankerFileError, match="no such ranker file"):
        R.Ranker.load(tmp_path / "missing.json")
    model = R.fit_model("single", {}, np.arange(8.0)[:, None], np.arange(8.0), ["f"])
    with pytest.raises(ValueError, match=r"expected \[N, 1\]"):
        model.predict(np.zeros((3, 2)))


def test_feature_costs_bound_the_extraction_seconds():
    costs = R.feature_costs(["a", "b", "c", "arch:hidden_size"], {"a": 2.0, "b": 0.5})
    assert costs == {"sum": 2.5, "max": 2.0, "unknown": ["c"]}
