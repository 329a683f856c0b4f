"""Several benchmarks in one study: their settings checked by name, and pools that hold the search sample."""

import json

import numpy as np
import pytest

from lpzero_jax import evaluation
from lpzero_jax.errors import ConfigError
from lpzero_jax.study import benchmarks as bm
from tests.conftest import tiny_config
from tests.study.fakes import fake_pool


def test_benchmark_settings_are_checked_by_name(tmp_path):
    c = tiny_config()
    c.study.benchmarks = "flexibert,gpt3"
    with pytest.raises(ConfigError, match="study.benchmarks"):
        bm.benchmark_names(c)
    c.study.benchmarks = "flexibert,llama"
    with pytest.raises(ConfigError, match="study.cache_dirs=llama=DIR"):
        bm.benchmark_config(c, "llama")
    c.study.cache_dirs = "llama:/x"
    with pytest.raises(ConfigError, match="study.cache_dirs: 'llama:/x' is not 'name=path'"):
        bm.benchmark_config(c, "llama")
    c.study.cache_dirs = f"llama={tmp_path}"
    llama = bm.benchmark_config(c, "llama")
    assert llama.family == "llama" and llama.inputs.cache_dir == str(tmp_path)
    assert llama.seed == c.seed and bm.benchmark_config(c, "flexibert").batch_size == c.batch_size
    with pytest.raises(ConfigError, match="study.search_dirs=flexibert=WORKDIR"):
        bm.searched_genome(c, "flexibert")
    c.study.pool = f"llama={tmp_path}/ids.txt"
    assert bm.pool_spec(c, "llama") == f"{tmp_path}/ids.txt" and bm.pool_spec(c, "flexibert") == "all"


def test_a_pool_holds_the_search_sample_or_is_refused():
    pool = fake_pool(n=12)
    sample, held = pool.search_split(4, 0)
    want_sample, want_held = evaluation.sample_split(12, 4, 0)
    assert sample.tolist() == want_sample.tolist() and held.tolist() == want_held.tolist()
    # a pool of 8 of the benchmark's 12 archs, with positions: the split is the benchmark's
    keep = np.union1d(want_sample, want_held[:4])
    part = type(pool)(**dict(vars(pool), arch_ids=[pool.arch_ids[i] for i in keep],
                             inputs=[pool.inputs[i] for i in keep], truth=pool.truth[keep],
                             positions=keep))
    s2, h2 = part.search_split(4, 0)
    assert [part.arch_ids[i] for i in s2] == [pool.arch_ids[i] for i in want_sample]
    assert [part.arch_ids[i] for i in h2] == [pool.arch_ids[i] for i in want_held[:4]]
    lacking = type(pool)(**dict(vars(part), positions=np.setdiff1d(keep, want_sample[:1]).tolist() + [99]))
    with pytest.raises(ConfigError, match="lacks 1 of the 4 architectures the search with seed 0"):
        lacking.search_split(4, 0)


def test_the_searched_genome_of_a_run_still_extracting_is_its_finished_evolution(tmp_path):
    c = tiny_config()
    c.study.benchmarks, c.study.search_dirs = "flexibert", f"flexibert={tmp_path}"
    checkpoint = {"config": {"generations": 3}, "state": {"generation": 2, "history": [
        {"best_genome": "a"}, {"best_genome": "neg(l1(W))"}]}}
    (tmp_path / "search_checkpoint.json").write_text(json.dumps(checkpoint))
    with pytest.raises(ConfigError, match="neither search.json nor a finished"):
        bm.searched_genome(c, "flexibert")
    checkpoint["state"]["generation"] = 3
    (tmp_path / "search_checkpoint.json").write_text(json.dumps(checkpoint))
    assert bm.searched_genome(c, "flexibert") == "neg(l1(W))"
    (tmp_path / "search.json").write_text(json.dumps({"best_genome": "abs(l1(G))"}))
    assert bm.searched_genome(c, "flexibert") == "abs(l1(G))"
