"""ZeroLM's two ways of setting alpha, on synthetic component columns."""

import numpy as np
from ml_collections import ConfigDict


def test_alpha_by_sampling_finds_the_mixture_that_ranks_best():
    from lpzero_jax.proxies import zerolm

    rng = np.random.default_rng(0)
    a, f = rng.standard_normal(200), rng.standard_normal(200)
    truth = 0.3 * a + 0.7 * f  # the ranking of S(alpha=0.3) is exactly the truth's
    alpha = zerolm.alpha_by_sampling(a, f, truth, np.arange(200))
    assert abs(alpha - 0.3) <= 0.02


def test_alpha_by_correlation_weights_parts_by_their_rho():
    from lpzero_jax.proxies import zerolm

    rng = np.random.default_rng(1)
    truth = rng.standard_normal(100)
    useful, useless = truth + 0.01 * rng.standard_normal(100), rng.standard_normal(100)
    assert zerolm.alpha_by_correlation(useful, useless, truth, np.arange(100)) > 0.85
    assert zerolm.alpha_by_correlation(-truth, -truth, truth, np.arange(100)) == 0.5


def test_fitted_variants_cover_every_architecture():
    from lpzero_jax.proxies import zerolm

    rng = np.random.default_rng(2)
    cols = {"zerolm_attention": rng.standard_normal(60), "zerolm_ffn": rng.standard_normal(60)}
    cols["zerolm_attention"][5] = np.nan
    truth = cols["zerolm_ffn"] + 0.1 * rng.standard_normal(60)
    out = zerolm.fitted_variants(cols, truth, ConfigDict(dict(seed=0, zerolm=dict(sample_size=20))))
    assert set(out) == {"zerolm_sampled_alpha", "zerolm_heuristic_alpha"}
    scores, note = out["zerolm_sampled_alpha"]
    assert scores.shape == (60,) and np.isnan(scores[5]) and "20 sampled" in note
    assert zerolm.fitted_variants({}, truth, ConfigDict(dict(seed=0))) == {}
