"""scripts/few_shot_ceiling.py: the ORACLE in-sample ridge reads every label; a feature that is the
label gives rho 1, noise does not."""

import numpy as np

from scripts.few_shot_ceiling import in_sample_rho


def test_in_sample_ridge_recovers_a_feature_that_is_the_label():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=200)
    noise = rng.normal(size=(200, 2))
    assert in_sample_rho(np.c_[truth ** 3, noise], truth, 0.1) > 0.99
    assert abs(in_sample_rho(noise, truth, 0.1)) < 0.3
