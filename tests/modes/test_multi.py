"""`transfer` and `joint_search` modes over synthetic pools (no extraction): the tables hold the
values computed directly, and the joint search's fitness is the minimum over the benchmarks."""

import json

import numpy as np
import pytest

from lpzero_jax import evaluation
from lpzero_jax.errors import ConfigError
from lpzero_jax.expression.genome import parse_genome
from lpzero_jax.expression.published import PUBLISHED
from lpzero_jax.inputs import stack_inputs
from lpzero_jax.modes import multi
from lpzero_jax.search.fitness import FitnessEvaluator
from lpzero_jax.study import benchmarks as bm
from lpzero_jax.study.transfer import genome_correlations
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
    monkeypatch.setattr(multi, "_pools", lambda config, workdir: pools)
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


def test_transfer_scores_every_proxy_on_every_pool(tmp_path, two_pools):
    config, genomes = study_config(tmp_path, "transfer")
    out = multi.run_transfer(config, tmp_path / "run")
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


def test_joint_search_fitness_is_the_minimum_sample_rho(tmp_path, two_pools):
    config, genomes = study_config(tmp_path, "joint_search")
    out = multi.run_joint(config, tmp_path / "run")
    best = parse_genome(out["best_genome"])
    sample_rho = {}
    for name, (c, pool) in two_pools.items():
        sample, held = evaluation.sample_split(pool.size, c.search.sample_archs, config.seed)  # == search's
        ev = FitnessEvaluator(stack_inputs([pool.inputs[i] for i in sample]), pool.truth[sample],
                              aggregate=c.search.aggregate)
        sample_rho[name] = ev(best).rho
        row = out["per_benchmark"][name]
        assert row["sample_rho"] == pytest.approx(sample_rho[name])
        assert row["held_out_size"] == pool.size - c.search.sample_archs
        assert row["held_out"] == pytest.approx(genome_correlations(
            [pool.inputs[i] for i in held], pool.truth[held], out["best_genome"], c.search.aggregate))
        assert row["searched_on_llama"]["genome"] == genomes["llama"]
    assert out["fitness_on_samples"] == pytest.approx(min(sample_rho.values()))
    history = (tmp_path / "run" / "joint_history.csv").read_text().splitlines()
    assert len(history) == 1 + config.search.generations + 1
    md = (tmp_path / "run" / "joint.md").read_text()
    assert "| joint search |" in md and "| searched on flexibert |" in md


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
