"""Fixtures of the several-benchmark modes (transfer, joint_search): two fake pools and the study
settings that name them."""

import json

import pytest

from lpzero_jax.study import benchmarks as bm
from tests.conftest import tiny_config, tiny_llama_config
from tests.study.fakes import fake_pool, fake_search_config


@pytest.fixture
def two_pools(monkeypatch):
    """flexibert (30 archs, S=10) and llama (20 archs, S=8, mean aggregation) as fake pools."""
    flex = fake_search_config(tiny_config(), sample_archs=10)
    llama = fake_search_config(tiny_llama_config(), sample_archs=8)
    llama.search.aggregate = "mean"
    pools = {"flexibert": (flex, fake_pool(n=30, seed=0)),
             "llama": (llama, fake_pool(n=20, seed=1, family="llama"))}
    monkeypatch.setattr(bm, "benchmark_pools", lambda config, workdir: pools)
    return pools


def study_config(tmp_path, mode):
    c = fake_search_config(tiny_config(mode=mode), sample_archs=10)
    c.study.benchmarks = "flexibert,llama"
    genomes = {"flexibert": "mul(std(relu(A)),abslog(l1(G)))", "llama": "div(reciprocal(abs(W)),neg(std(G)))"}
    dirs = []
    for name, genome in genomes.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "search.json").write_text(json.dumps({"best_genome": genome}))
        dirs.append(f"{name}={tmp_path / name}")
    c.study.search_dirs = ",".join(dirs)
    return c, genomes
