"""Every setting is checked before any work, with an error naming the setting and the fix."""

import json

import pytest

from lpzero_jax import checks, workdir
from lpzero_jax.benchmarks.base import BenchmarkFormatError
from lpzero_jax.errors import ConfigError, UserError
from lpzero_jax.families import get_family
from tests.conftest import experiment_config, tiny_config


def search_config(**kw):
    c = tiny_config(**dict(dict(num_archs=8, mode="search"), **kw))
    c.search.update(dict(population=6, generations=15, pool_ratio=0.34, sample_archs=5,
                         baselines="random", checkpoint_every=5))
    return c


@pytest.mark.parametrize("setting, value", [
    ("search.checkpoint_every", 0), ("search.population", 0), ("search.population", 1),
    ("search.sample_archs", 1), ("batch_size", 0), ("batch_size", -2), ("seq_len", 0),
    ("seq_len", 2), ("search.generations", -1), ("num_archs", -3), ("search.pool_ratio", 0.0),
    ("search.mutation_rate", 1.5), ("inputs.sample_size", 0)])
def test_bad_setting_names_itself(data_root, setting, value):
    config = search_config()
    node, leaf = (config.search, setting.split(".")[1]) if "." in setting else (config, setting)
    if setting.startswith("inputs."):
        node = config.inputs
    node[leaf] = value
    with pytest.raises(ConfigError, match=setting.replace(".", r"\.") + r" must be .*--config\."):
        workdir.validate_config(config)


def test_unknown_baseline_is_refused_before_the_search(data_root):
    config = search_config(mode="search")
    config.search.baselines = "random,bogus"
    with pytest.raises(ConfigError, match="search.baselines: unknown 'bogus'; known: random, no_rps"):
        workdir.validate_config(config)


def test_rank_settings_are_checked_in_rank_mode_only(data_root):
    config = search_config()
    config.search.population = 0  # not read by rank mode
    config.rank_shard = "3/2"
    with pytest.raises(ConfigError, match="rank_shard"):
        workdir.validate_config(config, "rank")
    config.rank_shard = ""
    workdir.validate_config(config, "rank")
    config.proxies = "add(abs(G)"
    with pytest.raises(ConfigError, match="proxies"):
        workdir.validate_config(config, "rank")


def test_num_archs_above_the_benchmark_and_sample_above_the_archs(data_root):
    config = tiny_config(num_archs=501)
    with pytest.raises(ConfigError, match="num_archs 501 exceeds the 500 architectures"):
        workdir.load_checked_archs(config, "rank")
    config = search_config()
    config.search.sample_archs = 8  # evaluate_all needs a held-out architecture
    with pytest.raises(ConfigError, match="search.sample_archs=7 or less"):
        workdir.load_checked_archs(config, "search")
    config.search.evaluate_all = False
    assert len(workdir.load_checked_archs(config, "search")) == 8


def test_ids_0_and_text_0_are_one_id(tmp_path, data_root):
    entries = json.loads((data_root / "flexibert" / "BERT_benchmark.json").read_text())[:3]
    entries[1]["id"] = "0"
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(BenchmarkFormatError, match="ids 0 and '0' are the same id"):
        workdir.load_checked_archs(tiny_config(benchmark_file=str(path)), "rank")


def short_context_benchmark(tmp_path, data_root, n=3, tgt_len=32):
    """An LTS-layout benchmark of `n` real GPT-2 configs trained at `tgt_len` positions."""
    import yaml

    source = data_root / "gpt2_wt103" / "random_GPT2_wt103"
    target = tmp_path / "lts_short"
    ppl = yaml.safe_load((source / "ppl_summary.yaml").read_text())
    for k in range(n):
        raw = yaml.safe_load((source / "config_0" / f"j{k}" / "model_config.yaml").read_text())
        raw["tgt_len"] = tgt_len
        (target / "config_0" / f"j{k}").mkdir(parents=True)
        (target / "config_0" / f"j{k}" / "model_config.yaml").write_text(yaml.safe_dump(raw))
    (target / "ppl_summary.yaml").write_text(
        yaml.safe_dump({f"config_0_j{k}": ppl[f"config_0_j{k}"] for k in range(n)}))
    return target


def test_seq_len_beyond_the_benchmark_positions_stops_before_any_arch(tmp_path, data_root):
    config = experiment_config("gpt2")
    config.benchmark_dir = str(short_context_benchmark(tmp_path, data_root))
    config.mode = "rank"
    with pytest.raises(ConfigError, match=r"seq_len 192 exceeds the 32 positions of architecture "
                                          r"config_0_j0 \(and 2 more\).*--config.seq_len=32"):
        checks.load_archs(get_family("gpt2"), config)
    config.seq_len = 32
    assert len(checks.load_archs(get_family("gpt2"), config)) == 3


def test_user_errors_share_one_class():
    from lpzero_jax.paths import DataNotFoundError
    from lpzero_jax.registry import UnknownNameError

    for cls in (ConfigError, BenchmarkFormatError, DataNotFoundError, UnknownNameError):
        assert issubclass(cls, UserError)
    assert str(UnknownNameError("unknown mode 'x'")) == "unknown mode 'x'"


@pytest.mark.parametrize("setting, value, message", [
    ("zerolm.alpha", 1.5, r"zerolm\.alpha must be a number in \[0, 1\]"),
    ("zerolm.sample_size", 2, r"zerolm\.sample_size must be an integer >= 3")])
def test_rank_component_settings_name_themselves(data_root, setting, value, message):
    config = search_config()
    group, leaf = setting.split(".")
    with config.unlocked():
        config[group][leaf] = value
    with pytest.raises(ConfigError, match=message + r".*--config\." + setting.replace(".", r"\.")):
        workdir.validate_config(config, "rank")
