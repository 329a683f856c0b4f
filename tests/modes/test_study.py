"""`study` mode on real FlexiBERT archs with a tiny batch and budget: a seed of the study is the
search mode's run with that seed, the test is scipy's Wilcoxon, finished seeds survive a rerun."""

import json

import numpy as np
import pytest
from scipy import stats

from lpzero_jax import evaluation
from lpzero_jax.errors import ConfigError
from lpzero_jax.modes import search, study
from lpzero_jax.study import seeds as seeds_study
from tests.conftest import tiny_config
from tests.study.fakes import fake_pool, fake_search_config


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("study_inputs"))


def study_config(cache_dir, **kw):
    c = tiny_config(num_archs=8, **kw)
    c.search.update(dict(population=6, generations=12, pool_ratio=0.34, sample_archs=5,
                         baselines="random,no_rps", checkpoint_every=5))
    c.inputs.cache_dir = cache_dir
    c.study.seeds = "0,1"
    return c


@pytest.mark.slow
def test_a_seed_of_the_study_is_the_search_with_that_seed(tmp_path, cache_dir):
    config = study_config(cache_dir)
    out = study.run(config, tmp_path / "study")
    searched = search.run(study_config(cache_dir), tmp_path / "search")  # config.seed = 0
    seed0 = out["results"]["sum"]["seeds"][0]
    assert seed0["seed"] == 0
    assert seed0["sample_arch_ids"] == [str(i) for i in searched["sample_arch_ids"]]
    assert seed0["searches"]["evolution"]["genome"] == searched["best_genome"]
    assert seed0["searches"]["evolution"]["held_out"] == pytest.approx(searched["held_out"])
    for name in ("random", "no_rps"):
        assert seed0["searches"][name]["genome"] == searched["baselines"][name]["best_genome"]
        assert seed0["searches"][name]["held_out"] == pytest.approx(searched["baselines"][name]["held_out"])
    seed1 = out["results"]["sum"]["seeds"][1]
    assert seed1["sample_arch_ids"] != seed0["sample_arch_ids"]  # each seed its own sample
    # references on the same held-out archs: params, and the paper's FlexiBERT genome
    assert set(seed0["references"]) == {"params", "lpzero_flexibert"}
    assert seed0["references"]["params"]["held_out"]["n"] == 3
    # the summary is the mean/sd over the seeds, the test scipy's on the per-seed numbers
    summary = out["results"]["sum"]["summary"]
    evo = [r["searches"]["evolution"]["held_out"]["spearman_rho"] for r in out["results"]["sum"]["seeds"]]
    rnd = [r["searches"]["random"]["held_out"]["spearman_rho"] for r in out["results"]["sum"]["seeds"]]
    assert summary["proxies"]["evolution"]["rho_mean"] == pytest.approx(np.mean(evo))
    assert summary["proxies"]["evolution"]["rho_sd"] == pytest.approx(np.std(evo, ddof=1))
    test = summary["tests"]["evolution_vs_random_rho"]
    if np.any(np.asarray(evo) != np.asarray(rnd)):
        assert test["p_two_sided"] == pytest.approx(stats.wilcoxon(evo, rnd).pvalue)
    saved = json.load(open(tmp_path / "study" / "study.json"))
    assert saved["pool"]["size"] == 8 and saved["seeds"] == [0, 1]
    rows = (tmp_path / "study" / "study.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * (3 + 2)
    assert (tmp_path / "study" / "study.png").stat().st_size > 1000
    assert "evolution vs random rho" in (tmp_path / "study" / "study.md").read_text()


def test_finished_seeds_are_kept_and_stale_ones_refused(tmp_path, monkeypatch):
    pool = fake_pool()
    monkeypatch.setattr(study, "load_pool", lambda config, workdir, spec, min_size: pool)
    config = fake_search_config(tiny_config())
    config.study.seeds = "0,1"
    first = study.run(config, tmp_path)
    (tmp_path / "seeds" / "sum_seed1.json").unlink()  # as if killed during seed 1
    computed = []
    real = seeds_study.search_seed

    def counting(pool, config, seed, aggregate, workdir):
        computed.append(seed)
        return real(pool, config, seed, aggregate, workdir)

    monkeypatch.setattr(seeds_study, "search_seed", counting)
    again = study.run(config, tmp_path)
    assert computed == [1]
    def without_seconds(out):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in out["results"]["sum"]["seeds"]]

    assert without_seconds(again) == without_seconds(first)
    assert again["results"]["sum"]["summary"] == first["results"]["sum"]["summary"]
    config.search.generations = 13  # the saved seeds no longer match
    with pytest.raises(ConfigError, match="sum_seed0.json was written with other settings"):
        study.run(config, tmp_path)


def test_paired_test_matches_scipy_and_handles_ties():
    a, b = [0.9, 0.8, 0.85, 0.7, 0.95], [0.85, 0.82, 0.8, 0.6, 0.9]
    t = seeds_study.paired_test(a, b)
    assert t["p_two_sided"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert t["p_greater"] == pytest.approx(stats.wilcoxon(a, b, alternative="greater").pvalue)
    assert (t["wins"], t["losses"], t["ties"]) == (4, 1, 0)
    same = seeds_study.paired_test(a, a)
    assert same["p_two_sided"] == 1.0 and same["ties"] == 5


def test_bad_study_settings_are_refused_by_name():
    c = tiny_config()
    c.study.seeds = "1,x"
    with pytest.raises(ConfigError, match="study.seeds"):
        study.study_seeds(c)
    c.study.seeds, c.study.aggregates = "", "sum,median"
    with pytest.raises(ConfigError, match="study.aggregates: unknown 'median'"):
        study.study_aggregates(c)
    c.study.aggregates = ""
    assert study.study_seeds(c) == [0, 1, 2, 3, 4] and study.study_aggregates(c) == ["sum"]


@pytest.mark.slow  # two aggregations x seeds over a pool (~30 s shared)
def test_a_study_of_two_aggregations_over_a_pool(tmp_path, monkeypatch):
    """Per aggregation and seed: each search's budget is evolution's; the references are scored on
    the seed's held-out archs; mean/sd and Wilcoxon are those of the per-seed values."""
    pool = fake_pool(n=30, groups=True)
    monkeypatch.setattr(study, "load_pool", lambda config, workdir, spec, min_size: pool)
    config = fake_search_config(tiny_config())
    config.study.seeds, config.study.aggregates = "3,4", "sum,mean"
    out = study.run(config, tmp_path)
    assert list(out["results"]) == ["sum", "mean"]
    for aggregate, block in out["results"].items():
        records = block["seeds"]
        assert [r["seed"] for r in records] == [3, 4]
        for r in records:
            s = r["searches"]
            assert s["random"]["evaluated"] == s["evolution"]["evaluated"]  # the same budget
            held = [i for i, a in enumerate(pool.arch_ids) if a not in set(r["sample_arch_ids"])]
            assert len(held) == 20 and r["references"]["params_attn"]["held_out"]["n"] == 20

            want = evaluation.rank_correlations(pool.references["params_attn"][held], pool.truth[held])
            assert r["references"]["params_attn"]["held_out"] == pytest.approx(want)
        rho = [r["searches"]["no_rps"]["held_out"]["spearman_rho"] for r in records]
        row = block["summary"]["proxies"]["no_rps"]
        assert row["rho_mean"] == pytest.approx(np.mean(rho)) and row["rho_sd"] == pytest.approx(np.std(rho, ddof=1))
        evo = [r["searches"]["evolution"]["held_out"]["kendall_tau"] for r in records]
        rnd = [r["searches"]["random"]["held_out"]["kendall_tau"] for r in records]
        assert block["summary"]["tests"]["evolution_vs_random_tau"] == \
            pytest.approx(seeds_study.paired_test(evo, rnd))
    # the two aggregations draw the same samples for a seed, and search them separately
    assert [r["sample_arch_ids"] for r in out["results"]["sum"]["seeds"]] == \
        [r["sample_arch_ids"] for r in out["results"]["mean"]["seeds"]]
    assert len((tmp_path / "study.csv").read_text().splitlines()) == 1 + 2 * 2 * (3 + 3)


def test_zoo_proxies_are_references_on_each_seeds_held_out_archs(tmp_path, monkeypatch):
    """study.proxies: each zoo proxy's values (computed once over the pool) are scored on every
    seed's held-out archs; a failure is NaN, out of n and counted; the seed records stay as they
    were, so adding a zoo proxy reuses the finished seeds."""
    pool = fake_pool(n=24)
    monkeypatch.setattr(study, "load_pool", lambda config, workdir, spec, min_size: pool)
    rng = np.random.default_rng(5)
    wpca = pool.truth + 0.3 * rng.standard_normal(pool.size)
    zerolm = rng.standard_normal(pool.size)
    zerolm[3] = np.nan
    zoo = {"wpca": {"values": wpca, "seconds": 1.5, "failures": {}},
           "zerolm": {"values": zerolm, "seconds": 0.2, "failures": {"a3": "FloatingPointError"}}}
    asked = []

    def fake_zoo(config, pool_, proxies, workdir):
        asked.append(sorted(proxies))
        return {n: zoo[n] for n in proxies}

    monkeypatch.setattr(seeds_study, "pool_zoo_values", fake_zoo)
    config = fake_search_config(tiny_config())
    config.study.seeds = "0,1"
    plain = study.run(config, tmp_path)
    assert asked == [] and "wpca" not in plain["results"]["sum"]["seeds"][0]["references"]
    config.study.proxies = "wpca,zerolm"
    out = study.run(config, tmp_path)
    assert asked == [["wpca", "zerolm"]]  # once for the pool, not per seed
    for r in out["results"]["sum"]["seeds"]:
        held = np.asarray([i for i, a in enumerate(pool.arch_ids) if a not in set(r["sample_arch_ids"])])
        want = evaluation.rank_correlations(wpca[held], pool.truth[held])
        assert r["references"]["wpca"]["held_out"] == pytest.approx(want)
        z = r["references"]["zerolm"]
        if 3 in held:
            assert z["held_out"]["n"] == len(held) - 1 and z["failures"] == 1
        else:
            assert z["held_out"]["n"] == len(held) and z["failures"] == 0
        # the searches are the finished seeds', read back, not searched again
        before = next(p for p in plain["results"]["sum"]["seeds"] if p["seed"] == r["seed"])
        assert r["searches"] == before["searches"]
    rows = out["results"]["sum"]["summary"]["proxies"]
    rho = [r["references"]["wpca"]["held_out"]["spearman_rho"] for r in out["results"]["sum"]["seeds"]]
    assert rows["wpca"]["rho_mean"] == pytest.approx(np.mean(rho))
    assert out["zoo"]["zerolm"]["failures"] == {"a3": "FloatingPointError"}
    assert "| wpca |" in (tmp_path / "study.md").read_text()
    saved = json.load(open(tmp_path / "seeds" / "sum_seed0.json"))
    assert "wpca" not in saved["record"]["references"]


def test_an_unknown_zoo_proxy_is_refused_before_the_pool_loads(tmp_path, monkeypatch):
    def no_pool(*a, **k):
        raise AssertionError("the pool was loaded")

    monkeypatch.setattr(study, "load_pool", no_pool)
    config = tiny_config()
    config.study.proxies = "wpca,not_a_proxy"
    with pytest.raises(ConfigError, match="study.proxies"):
        study.run(config, tmp_path)


def test_the_pools_zoo_values_are_the_rank_modes_and_resume(tmp_path):
    """pool_zoo_values over real tiny FlexiBERT archs: the zoo's `params` equals the pool's shape
    count; a second call reads DIR/zoo/ instead of scoring again."""
    from lpzero_jax.checks import load_archs
    from lpzero_jax.families import get_family
    from lpzero_jax.proxies.resolve import resolve_proxies
    from lpzero_jax.study.pool import reference_values

    config = tiny_config(num_archs=3)
    config.search.sample_archs = 2
    family = get_family(config.family)
    archs = load_archs(family, config)
    pool = fake_pool(n=3)
    pool.arch_ids = [str(a.arch_id) for a in archs]
    zoo = seeds_study.pool_zoo_values(config, pool, resolve_proxies("params"), tmp_path)
    np.testing.assert_array_equal(zoo["params"]["values"],
                                  reference_values(family, config, archs)["params"])
    assert zoo["params"]["failures"] == {}
    log = next((tmp_path / "zoo").glob("init0_batch0_*.jsonl"))
    lines = log.read_text().splitlines()
    assert len(lines) == 3
    again = seeds_study.pool_zoo_values(config, pool, resolve_proxies("params"), tmp_path)
    np.testing.assert_array_equal(again["params"]["values"], zoo["params"]["values"])
    assert log.read_text().splitlines() == lines  # nothing scored twice
