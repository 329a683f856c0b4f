"""`transfer` mode over synthetic pools (no extraction): the table holds the values computed directly."""

import json

import pytest

from lpzero_jax import evaluation
from lpzero_jax.expression.published import PUBLISHED
from lpzero_jax.modes import transfer
from lpzero_jax.study.transfer import genome_correlations
from tests.modes.conftest import study_config


def test_transfer_scores_every_proxy_on_every_pool(tmp_path, two_pools):
    config, genomes = study_config(tmp_path, "transfer")
    out = transfer.run_transfer(config, tmp_path / "run")
    rows = {r["proxy"]: r for r in out["rows"]}
    assert list(rows) == ["searched on flexibert", "searched on llama", "lpzero_flexibert",
                          "lpzero_llama", "params"]
    for target, (c, pool) in two_pools.items():
        # scored on the pool less the sample the target's own search drew (config.seed)
        _, held = evaluation.sample_split(pool.size, c.search.sample_archs, config.seed)
        inputs, truth = [pool.inputs[i] for i in held], pool.truth[held]
        want = genome_correlations(inputs, truth, genomes["llama"], c.search.aggregate)
        assert rows["searched on llama"][target] == pytest.approx(want)
        assert want["n"] == pool.size - c.search.sample_archs
        assert rows["lpzero_flexibert"][target] == pytest.approx(
            genome_correlations(inputs, truth, PUBLISHED["lpzero_flexibert"], c.search.aggregate))
        assert rows["params"][target] == pytest.approx(
            evaluation.rank_correlations(pool.references["params"][held], truth))
    saved = json.load(open(tmp_path / "run" / "transfer.json"))
    assert saved["pool_sizes"] == {"flexibert": 20, "llama": 12}
    assert "searched on llama (`div(reciprocal(abs(W)),neg(std(G)))`)" in \
        (tmp_path / "run" / "transfer.md").read_text()
    assert (tmp_path / "run" / "transfer.png").stat().st_size > 1000
