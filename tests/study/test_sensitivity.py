"""Sensitivity: one factor at a time, each setting's inputs under their own fingerprint."""

import numpy as np
import pytest

from lpzero_jax.errors import ConfigError
from lpzero_jax.input_store import InputStore
from lpzero_jax.study import sensitivity
from tests.conftest import tiny_config


def test_settings_vary_one_factor_at_a_time():
    c = tiny_config(seed=3)
    c.study.init_seeds, c.study.batch_seeds = "3,5", "7"
    assert sensitivity.settings(c) == [{"factor": "base", "init_seed": 3, "batch_seed": 3},
                                       {"factor": "init", "init_seed": 5, "batch_seed": 3},
                                       {"factor": "batch", "init_seed": 3, "batch_seed": 7}]
    c.study.batch_seeds = "7,7"
    with pytest.raises(ConfigError, match="study.batch_seeds"):
        sensitivity.settings(c)


def test_each_setting_has_its_own_store_and_the_base_is_the_ordinary_one(tmp_path):
    c = tiny_config(seed=3)
    c.inputs.cache_dir = str(tmp_path)
    base = sensitivity.setting_store(c, 3, 3, tmp_path)
    assert base.dir == InputStore(c, tmp_path).dir
    init = sensitivity.setting_store(c, 5, 3, tmp_path)
    c5 = tiny_config(seed=5)
    c5.inputs.cache_dir = str(tmp_path)
    assert sensitivity.setting_store(c, 5, 5, tmp_path).dir == InputStore(c5, tmp_path).dir
    batch = sensitivity.setting_store(c, 3, 7, tmp_path)
    # init 5 with the batch of seed 3 is neither seed 5's nor seed 3's ordinary store
    assert len({base.dir, init.dir, batch.dir, InputStore(c5, tmp_path).dir}) == 4
    assert batch.dir.parent == base.dir.parent
    assert sensitivity.setting_store(c, 3, 7, tmp_path).dir == batch.dir  # deterministic


def test_summary_is_mean_and_sd_over_base_and_factor():
    rows = [{"factor": f, "proxies": {"g": {"spearman_rho": r, "kendall_tau": r / 2}}}
            for f, r in (("base", 0.9), ("init", 0.8), ("init", 0.7), ("batch", 0.6))]
    s = sensitivity.summarize(rows, {"g": "..."})["g"]
    assert s["init"]["n_settings"] == 3 and s["init"]["rho_mean"] == pytest.approx(0.8)
    assert s["init"]["rho_sd"] == pytest.approx(np.std([0.9, 0.8, 0.7], ddof=1))
    assert s["batch"]["tau_mean"] == pytest.approx(0.375)


@pytest.mark.slow
def test_sensitivity_mode_on_tiny_flexibert(tmp_path):
    from lpzero_jax.modes import study

    c = tiny_config(num_archs=5)
    c.inputs.cache_dir = str(tmp_path / "cache")
    c.study.init_seeds, c.study.batch_seeds = "1", "2"
    c.study.genomes = "mul(std(relu(A)),abslog(l1(G)))"
    out = study.run_sensitivity(c, tmp_path / "run")
    assert [r["factor"] for r in out["settings"]] == ["base", "init", "batch"]
    from lpzero_jax.checks import load_archs
    from lpzero_jax.families import get_family
    family = get_family("flexibert")
    archs = load_archs(family, c, "sensitivity")
    got = {(i, b): sensitivity.setting_inputs(c, family, archs, i, b, tmp_path / "run")
           for i, b in ((0, 0), (1, 0), (0, 2))}
    # the init seed moves the weights, the batch seed only what the batch produces
    assert not np.allclose(got[(1, 0)][0].values["W"], got[(0, 0)][0].values["W"])
    np.testing.assert_array_equal(got[(0, 2)][0].values["W"], got[(0, 0)][0].values["W"])
    assert not np.allclose(got[(0, 2)][0].values["A"], got[(0, 0)][0].values["A"])
    rho = [r["proxies"]["lpzero_flexibert"]["spearman_rho"] for r in out["settings"][:2]]
    assert out["summary"]["lpzero_flexibert"]["init"]["rho_mean"] == pytest.approx(np.mean(rho))
    assert "| lpzero_flexibert |" in (tmp_path / "run" / "sensitivity.md").read_text()
