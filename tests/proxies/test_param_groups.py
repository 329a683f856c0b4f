"""params_nonembedding / params_attn / params_ffn: LTS's columns on GPT-2, NaN where undefined,
and a rank-mode run over a few real GPT-2 architectures."""

import json
import math

import numpy as np
import pytest
from ml_collections import ConfigDict

from lpzero_jax.families import get_family
from lpzero_jax.proxies import PROXIES, ArchContext
from tests.conftest import tiny_config

GROUP_PROXIES = {"params_nonembedding": "nonembedding", "params_attn": "Attn", "params_ffn": "FFN",
                 "params": "total"}


def gpt2_config(**overrides):
    c = ConfigDict(dict(family="gpt2", seed=0, data_root=None, benchmark_dir=None, num_archs=0,
                        corpus="wikitext-2/valid.txt", corpus_file=None, vocab_path=None,
                        batch_size=2, seq_len=16,
                        proxies="params,params_nonembedding,params_attn,params_ffn",
                        inputs=dict(sample_size=256, sample_seed=0, cache_dir=None)))
    c.update(overrides)
    return c


def test_registered():
    for name in GROUP_PROXIES:
        assert name in PROXIES


@pytest.fixture(scope="module")
def gpt2_archs(data_root):
    return get_family("gpt2").load_benchmark(gpt2_config(data_root=str(data_root)))


@pytest.mark.parametrize("arch_index", [0, 57, 199])
def test_values_are_the_lts_columns(gpt2_archs, arch_index):
    family = get_family("gpt2")
    arch = gpt2_archs[arch_index]
    ctx = ArchContext(family, arch, gpt2_config(), batch={})
    for proxy, column in GROUP_PROXIES.items():
        assert PROXIES.get(proxy)(ctx) == arch.extra["params"][column]


def test_nan_for_a_family_without_groups(data_root):
    family = get_family("flexibert")
    config = tiny_config(data_root=str(data_root), num_archs=1)
    ctx = ArchContext(family, family.load_benchmark(config)[0], config, batch={})
    for proxy in ("params_nonembedding", "params_attn", "params_ffn"):
        assert math.isnan(PROXIES.get(proxy)(ctx))
    assert PROXIES.get("params")(ctx) > 0


def test_rank_mode_on_gpt2(data_root, tmp_path):
    from lpzero_jax.modes.rank import run

    config = gpt2_config(data_root=str(data_root), num_archs=3)
    ranking = run(config, tmp_path).ranking
    assert set(ranking) == set(GROUP_PROXIES)
    saved = json.loads((tmp_path / "ranking.json").read_text())
    assert saved["params_attn"]["n"] == 3 and saved["params_attn"]["n_nonfinite"] == 0
    rows = (tmp_path / "scores.csv").read_text().splitlines()
    assert rows[0].split(",") == ["arch_id", "ground_truth", "params", "params_nonembedding",
                                  "params_attn", "params_ffn"]
    assert rows[1].split(",")[:5] == ["config_0_j0", str(-45.022968707221274), "8505006.0",
                                      "1790372.0", "330240.0"]
    assert np.isfinite(saved["params_nonembedding"]["spearman_rho"])
