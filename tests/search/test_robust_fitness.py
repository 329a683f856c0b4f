"""Fitness options of Algorithm 1 (k-fold / bootstrap estimate, parsimony, top-k answer) and the
genome searches on S of the few-shot protocol."""

import numpy as np
import pytest
from scipy import stats

from lpzero_jax import evaluation
from lpzero_jax.expression import compile_genome
from lpzero_jax.expression.genome import parse_genome
from lpzero_jax.inputs import stack_inputs
from lpzero_jax.search import robust_fitness as rf
from lpzero_jax.search.evolution import EvolutionConfig
from lpzero_jax.search.few_shot import SampleSearchSettings, parse_variants, search_on_sample
from tests.expression.test_compile_and_program import fake_items

TARGET = "mul(l1(W),abs(mean(H)))"


@pytest.fixture(scope="module")
def problem():
    items = fake_items(n=40, seed=5)
    truth = compile_genome(TARGET, "mean")(stack_inputs(items)) + \
        np.random.default_rng(0).normal(0, 1e-3, 40)
    return items, np.asarray(truth, np.float64)


def test_resampled_rhos_are_spearman_on_each_index_set():
    rng = np.random.default_rng(0)
    s, t = rng.standard_normal(30), rng.standard_normal(30)
    sets = rf.resample_indices(30, rf.FitnessOptions(estimate="bootstrap", resamples=5, seed=2))
    assert len(sets) == 5
    got = rf.resampled_rhos(s, t, sets)
    want = [stats.spearmanr(s[i], t[i])[0] for i in sets]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    folds = rf.resample_indices(30, rf.FitnessOptions(estimate="kfold", folds=5))
    assert sorted(np.concatenate(folds).tolist()) == list(range(30))


def test_options_are_validated_and_named():
    assert rf.quantile("q0.25") == 0.25 and np.isnan(rf.quantile("mean"))
    with pytest.raises(ValueError, match="statistic"):
        rf.FitnessOptions(statistic="median")
    with pytest.raises(ValueError, match="estimate"):
        rf.FitnessOptions(estimate="loo")
    assert rf.FitnessOptions(estimate="bootstrap", statistic="q0.25", parsimony=0.01,
                             top_k=5).label() == "bootstrap_q0.25+pars0.01+top5"
    assert [o.label() for o in parse_variants("kfold:mean, pars:0.02,top:3")] == \
        ["kfold_mean", "pars0.02", "top3"]
    with pytest.raises(ValueError, match="fitness variant 'x:1'"):
        parse_variants("x:1")


def test_robust_fitness_is_the_lower_quantile_minus_parsimony(problem):
    items, truth = problem
    stacked = stack_inputs(items)
    opts = rf.FitnessOptions(estimate="bootstrap", statistic="q0.2", resamples=10, parsimony=0.01)
    ev = rf.RobustFitnessEvaluator(stacked, truth, opts, aggregate="mean", n_unary=2)
    g = parse_genome(TARGET)
    scores = np.asarray(ev.scores(g), np.float64)
    rhos = rf.resampled_rhos(scores, truth, ev.sets)
    fit = ev(g)
    assert fit.valid
    assert fit.rho == pytest.approx(np.quantile(rhos, 0.2) - 0.01 * rf.genome_size(g))
    assert ev.full_rho[g] == pytest.approx(evaluation.spearman_rho(scores, truth))
    assert rf.genome_size(g) == 3  # l1, abs, mean


def test_top_genomes_are_distinct_rankings_and_rank_average_averages_ranks(problem):
    items, truth = problem
    stacked = stack_inputs(items)
    ev = rf.RobustFitnessEvaluator(stacked, truth, rf.FitnessOptions(), aggregate="mean", n_unary=2)
    same = [TARGET, "mul(abs(mean(H)),l1(W))"]  # the same ranking of S
    for text in same + ["add(l1(W),l1(W))"]:
        ev(parse_genome(text))
    top = rf.top_genomes(ev, 2)
    assert str(top[0]) in same and str(top[1]) == "add(l1(W),l1(W))"
    np.testing.assert_allclose(rf.rank_average([[1.0, 2.0, 3.0], [10.0, 30.0, np.nan]]),
                               [0.0, 0.75, 0.75])


def test_searches_on_the_sample_read_only_its_labels(problem):
    items, truth = problem
    sample = np.arange(0, 40, 2)
    settings = SampleSearchSettings(EvolutionConfig(population=8, generations=10, n_unary=2, seed=1),
                                    aggregate="mean", variants=parse_variants("bootstrap:q0.25,top:3"))
    out = search_on_sample(items, truth, sample, settings)
    corrupted = truth.copy()
    corrupted[1::2] = np.random.default_rng(9).permutation(corrupted[1::2])
    again = search_on_sample(items, corrupted, sample, settings)
    assert set(out) == {"evolution", "random", "evolution_bootstrap_q0.25", "evolution_top3"}
    for name in out:
        assert out[name]["genomes"] == again[name]["genomes"]
        assert np.array_equal(out[name]["values"], again[name]["values"], equal_nan=True)
        assert out[name]["values"].shape == (40,)
    assert len(out["evolution_top3"]["genomes"]) == 3
    assert out["random"]["evaluated"] == out["evolution"]["evaluated"]  # the same budget
