"""Sensitivity: one factor at a time, each setting's inputs under their own fingerprint."""

from pathlib import Path

import numpy as np
import pytest

from lpzero_jax import evaluation
from lpzero_jax.errors import ConfigError
from lpzero_jax.input_store import InputStore
from lpzero_jax.proxies import scoring
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
    from lpzero_jax.modes import sensitivity as sensitivity_mode

    c = tiny_config(num_archs=5)
    c.inputs.cache_dir = str(tmp_path / "cache")
    c.study.init_seeds, c.study.batch_seeds = "1", "2"
    c.study.genomes = "mul(std(relu(A)),abslog(l1(G)))"
    out = sensitivity_mode.run_sensitivity(c, tmp_path / "run")
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


TINY_GPT2 = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "gpt2_tiny.jsonl"
ZOO = ("params_attn", "zerolm", "attention_confidence")


def tiny_gpt2_config(cache_dir):
    """4 tiny GPT-2s of the API tests (batch 2 x 16), init seeds 0/1, batch seeds 0/2."""
    from lpzero_jax.api import benchmark_config

    c = benchmark_config(TINY_GPT2, overrides={
        "seq_len": 16, "batch_size": 2, "num_archs": 4, "seed": 0, "compilation_cache_dir": "",
        "inputs.sample_size": 64, "inputs.cache_dir": str(cache_dir)})
    c.study.init_seeds, c.study.batch_seeds = "1", "2"
    c.study.proxies, c.study.published = ",".join(ZOO), False
    return c


def rank_values(config, init_seed, batch_seed, workdir, monkeypatch):
    """proxy -> per-arch values of the `rank` mode at config.seed = init_seed, its mini-batch
    drawn with batch_seed (the family's make_batch patched to that seed)."""
    from lpzero_jax.families import get_family
    from lpzero_jax.modes import rank

    family = get_family(config.family)
    batch_config = config.copy_and_resolve_references()
    batch_config.seed = batch_seed
    batch = family.make_batch(batch_config)
    c = config.copy_and_resolve_references()
    c.seed, c.proxies = init_seed, ",".join(ZOO)
    with monkeypatch.context() as m:
        m.setattr(family, "make_batch", lambda _: batch)
        rank.run(c, workdir)
    done, _ = scoring.load_log(workdir / "rank_values.jsonl")
    return {n: [done[(f"t{i}", n)][0] for i in range(1, 5)] for n in ZOO}


@pytest.mark.slow  # four rank runs (~20 s shared)
def test_zoo_proxies_per_setting_are_the_rank_mode_at_those_seeds(tmp_path, monkeypatch):
    from lpzero_jax.modes import sensitivity as sensitivity_mode

    config = tiny_gpt2_config(tmp_path / "cache")
    out = sensitivity_mode.run_sensitivity(config, tmp_path / "run")
    rows = {(r["init_seed"], r["batch_seed"]): r["proxies"] for r in out["settings"]}
    assert list(rows) == [(0, 0), (1, 0), (0, 2)] and out["proxies"] == {}
    for (i, b), row in rows.items():
        want = rank_values(config, i, b, tmp_path / f"rank_{i}_{b}", monkeypatch)
        for name in ZOO:  # computed at (i, b), or at the base seed of a factor it does not read
            assert row[name]["values"] == pytest.approx(want[name], rel=1e-6), (name, i, b)
    # what reads the batch moves with it; the weight-only proxies do not (and the rank mode at
    # that batch agrees: their declarations hold, see also tests/proxies/test_factors.py)
    assert rows[(0, 2)]["attention_confidence"]["values"] != \
        pytest.approx(rows[(0, 0)]["attention_confidence"]["values"], rel=1e-6)
    for name in ("params_attn", "zerolm"):
        assert rows[(0, 2)][name]["values"] == rows[(0, 0)][name]["values"]
    assert rows[(1, 0)]["zerolm"]["values"] != pytest.approx(rows[(0, 0)]["zerolm"]["values"])
    s = out["summary"]
    assert s["zerolm"]["batch"] == dict(s["zerolm"]["batch"], read=False, rho_sd=0.0, tau_sd=0.0)
    assert s["params_attn"]["init"]["read"] is False and s["zerolm"]["init"]["read"] is True
    truth = -np.asarray([310.0, 280.5, 262.0, 231.25])
    rho = [evaluation.spearman_rho(rows[k]["attention_confidence"]["values"], truth)
           for k in ((0, 0), (0, 2))]
    assert s["attention_confidence"]["batch"]["rho_mean"] == pytest.approx(np.mean(rho))
    md = (tmp_path / "run" / "sensitivity.md").read_text()
    assert "| zerolm (reads: init) |" in md and "reads no batch: constant" in md
    # a finished run computes nothing again; a value lost (a killed run) is all that is recomputed
    calls = []
    real = scoring._score
    monkeypatch.setattr(scoring, "_score", lambda ctx, name, fn: calls.append(name) or real(ctx, name, fn))
    again = sensitivity_mode.run_sensitivity(config, tmp_path / "run")
    assert calls == [] and again["summary"] == out["summary"]
    path = next((tmp_path / "run" / "zoo").glob("init0_batch2_*.jsonl"))
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))
    sensitivity_mode.run_sensitivity(config, tmp_path / "run")
    assert calls == ["attention_confidence"]
    # another zerolm alpha is another file: no value of the old one is read
    config.zerolm.alpha = 0.3
    calls.clear()
    sensitivity_mode.run_sensitivity(config, tmp_path / "run")
    assert len(calls) == 4 * (1 + 2 + 3)  # params_attn once, zerolm per init, the last per setting


def test_unknown_zoo_proxy_is_refused_before_any_work(tmp_path):
    from lpzero_jax import workdir
    from lpzero_jax.modes import sensitivity as sensitivity_mode

    config = tiny_gpt2_config(tmp_path / "cache")
    config.study.proxies = "params,zerolmm"
    with pytest.raises(ConfigError, match="study.proxies: unknown proxy 'zerolmm'"):
        sensitivity_mode.run_sensitivity(config, tmp_path / "run")
    config.mode = "sensitivity"
    with pytest.raises(ConfigError, match="study.proxies"):
        workdir.validate_config(config)
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()
    config.study.proxies, config.study.genomes = "", ""
    with pytest.raises(ConfigError, match="nothing to score"):
        sensitivity_mode.run_sensitivity(config, tmp_path / "run")
