"""main.run refuses to resume a workdir whose saved config differs in a value-changing field."""

import json

import pytest

from lpzero_jax.main import config_conflicts, run
from tests.conftest import tiny_config


def test_conflicts_ignore_paths_proxies_and_missing_fields():
    old = {"seed": 1, "workdir": "a", "proxies": "params", "search": {"population": 8,
           "generations": 5}, "inputs": {"cache_dir": "x", "sample_size": 64}, "legacy": 3}
    new = {"seed": 1, "workdir": "b", "proxies": "all", "search": {"population": 8,
           "generations": 50}, "inputs": {"cache_dir": "y", "sample_size": 64}}
    assert config_conflicts(old, new) == []
    new["seed"], new["inputs"]["sample_size"], new["search"]["population"] = 2, 128, 9
    assert config_conflicts(old, new) == ["inputs.sample_size", "search.population", "seed"]


def test_rerun_with_other_settings_is_refused(tmp_path, data_root):
    config = tiny_config(data_root=str(data_root), mode="rank", num_archs=2,
                         workdir=str(tmp_path), proxies="params")
    run(config)
    first = json.loads((tmp_path / "ranking.json").read_text())
    run(config)  # same settings: resumes (nothing left to do), same result
    assert json.loads((tmp_path / "ranking.json").read_text()) == first
    config.batch_size = 4
    with pytest.raises(ValueError, match="batch_size differ"):
        run(config)
