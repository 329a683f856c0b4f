"""GPT-2 family glue on real LTS configs: parameter groups vs params_summary.yaml, the reference
initialisation, W/G selection, batches, and the six proxy inputs of a small real architecture."""

import jax
import numpy as np
import pytest
from ml_collections import ConfigDict

from lpzero_jax.families import get_family
from lpzero_jax.inputs import extract_proxy_inputs
from lpzero_jax.models import init as model_init

# one real config per embedding case: (div_val, d_embed == d_model)
REAL = {"config_11_j5": "div 1, projected", "config_15_j1": "div 1, no projection",
        "config_15_j7": "div 2", "config_9_j3": "div 4", "config_4_j0": "div 4, d_embed = d_model"}
COLUMNS = ("AdaEmb", "Attn", "FFN", "nonembedding", "total")


def gpt2_config(**overrides):
    c = ConfigDict(dict(family="gpt2", seed=0, data_root=None, benchmark_dir=None, num_archs=0,
                        corpus="wikitext-2/valid.txt", corpus_file=None, vocab_path=None,
                        batch_size=2, seq_len=16, proxies="params",
                        inputs=dict(sample_size=256, sample_seed=0, cache_dir=None)))
    c.update(overrides)
    return c


@pytest.fixture(scope="module")
def family():
    return get_family("gpt2")


@pytest.fixture(scope="module")
def archs(family, data_root):
    return {a.arch_id: a for a in family.load_benchmark(gpt2_config(data_root=str(data_root)))}


@pytest.mark.parametrize("arch_id", sorted(REAL))
def test_param_groups_reproduce_params_summary(family, archs, arch_id):
    arch = archs[arch_id]
    counts = family.param_group_counts(family.model_config(arch, gpt2_config()))
    assert {c: counts[c] for c in COLUMNS} == arch.extra["params"]
    assert counts["total"] == counts["AdaEmb"] + counts["nonembedding"] + counts["Softmax"]
    assert counts["total"] == family.count_params(family.model_config(arch, gpt2_config()))


def test_benchmark_dir_override(family, data_root, tmp_path):
    import shutil

    src = data_root / "gpt2_wt103" / "random_GPT2_wt103"
    shutil.copytree(src / "config_9" / "j3", tmp_path / "config_9" / "j3")
    shutil.copy(src / "ppl_summary.yaml", tmp_path / "ppl_summary.yaml")
    archs = family.load_benchmark(gpt2_config(benchmark_dir=str(tmp_path)))
    assert [a.arch_id for a in archs] == ["config_9_j3"] and "params" not in archs[0].extra


def test_init_follows_the_reference(family, archs):
    mc = family.model_config(archs["config_4_j0"], gpt2_config())  # 6 layers, d_model 128
    params = family.init_params(mc, seed=3)["params"]
    layer = params["layer_2"]
    assert np.std(layer["attn"]["c_attn"]["kernel"]) == pytest.approx(0.02, rel=0.02)
    assert np.std(layer["mlp"]["c_fc"]["kernel"]) == pytest.approx(0.02, rel=0.02)
    scaled = 0.02 / np.sqrt(2 * 6)
    assert np.std(layer["attn"]["c_proj"]["kernel"]) == pytest.approx(scaled, rel=0.03)
    assert np.std(layer["mlp"]["c_proj"]["kernel"]) == pytest.approx(scaled, rel=0.03)
    assert np.all(layer["attn"]["c_attn"]["bias"] == 0) and np.all(layer["ln_1"]["scale"] == 1)
    assert np.std(params["wte"]["emb_0"]) == pytest.approx(0.02, rel=0.02)
    assert np.std(params["wte"]["proj_0"]) == pytest.approx(0.01, rel=0.05)
    assert np.std(params["lm_head"]["proj_0"]) == pytest.approx(0.01, rel=0.05)
    assert np.std(params["wpe"]["embedding"]) == pytest.approx(0.02, rel=0.05)
    assert np.all(params["lm_head"]["bias_1"] == 0) and np.all(params["lm_head"]["cluster_bias"] == 0)
    assert np.std(params["lm_head"]["cluster_weight"]) > 0
    kernel = params["layer_5"]["mlp"]["c_fc"]["kernel"]
    np.testing.assert_array_equal(family.init_params(mc, seed=3)["params"]["layer_5"]["mlp"]["c_fc"]["kernel"],
                                  kernel)
    assert not np.array_equal(family.init_params(mc, seed=4)["params"]["layer_5"]["mlp"]["c_fc"]["kernel"],
                              kernel)


def test_proxy_weights_are_the_block_kernels(family, archs):
    mc = family.model_config(archs["config_9_j3"], gpt2_config())
    selected = [model_init.path_names(p)[1:] for p, _ in
                jax.tree_util.tree_flatten_with_path(family.param_shapes(mc))[0]
                if family.is_proxy_weight(model_init.path_names(p))]
    assert selected == [(f"layer_{i}", m, k, "kernel") for i in range(2)
                        for m, k in (("attn", "c_attn"), ("attn", "c_proj"), ("mlp", "c_fc"), ("mlp", "c_proj"))]


def test_batch_is_gpt2_bpe_text(family):
    batch = family.make_batch(gpt2_config(batch_size=3, seq_len=20))
    ids = batch["input_ids"]
    assert ids.shape == (3, 20) and ids.dtype == np.int32
    assert ids.max() < 50257 and len(np.unique(ids)) > 20
    np.testing.assert_array_equal(ids, family.make_batch(gpt2_config(batch_size=3, seq_len=20))["input_ids"])


def test_six_proxy_inputs_of_a_real_arch(family, archs):
    config = gpt2_config()
    mc = family.model_config(archs["config_9_j3"], config)  # 2 layers, d_model 64, div_val 4
    params = family.init_params(mc, config.seed)
    batch = family.make_batch(config)
    inputs = extract_proxy_inputs(family, mc, params, batch, sample_size=256)
    v, n = inputs.values, inputs.counts
    assert {k: x.shape for k, x in v.items()} == {
        "A": (2, 1, 256), "H": (2, 3, 256), "S": (2, 1, 256), "W": (2, 4, 256), "G": (2, 4, 256),
        "J": (1, 1, 256)}
    b, s, d = 2, 16, 64
    for i in range(2):
        assert n["A"][i, 0] == b * s * mc.d_inner[i]
        assert list(n["H"][i]) == [b * s * d] * 3
        assert n["S"][i, 0] == b * mc.n_head[i] * s * s
        assert list(n["W"][i]) == [d * 3 * d, d * d, d * mc.d_inner[i], mc.d_inner[i] * d]
    np.testing.assert_array_equal(n["W"], n["G"])
    assert n["J"][0, 0] == b * s * d
    for k in ("A", "H", "W", "G", "J"):
        assert np.abs(v[k]).sum() > 0, k
    assert np.all(v["S"] >= 0) and np.all(v["S"] <= 1)


def test_experiment_config_runs_the_family(data_root):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "experiments" / "gpt2.py"
    spec = importlib.util.spec_from_file_location("gpt2_experiment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    assert (c.family, c.mode, c.batch_size, c.seq_len) == ("gpt2", "search", 16, 192)
    assert c.proxies == "params,params_nonembedding,params_attn,params_ffn"
    assert (c.search.population, c.search.generations, c.search.sample_archs) == (80, 1000, 50)
    assert (c.search.pool_ratio, c.search.crossover_rate, c.search.mutation_rate) == (0.1, 0.5, 0.5)
    assert c.search.n_unary == 2
    c.data_root, c.num_archs = str(data_root), 2
    assert [a.arch_id for a in get_family(c.family).load_benchmark(c)] == ["config_0_j0", "config_0_j1"]


@pytest.mark.slow
def test_all_200_param_counts_match_params_summary(family, archs):
    """Every column of params_summary.yaml, for every architecture (about 1 s each on this CPU)."""
    mismatches = {c: [] for c in COLUMNS}
    for arch_id, arch in archs.items():
        counts = family.param_group_counts(family.model_config(arch, gpt2_config()))
        for c in COLUMNS:
            if counts[c] != arch.extra["params"][c]:
                mismatches[c].append(arch_id)
    assert len(archs) == 200
    assert mismatches == {c: [] for c in COLUMNS}


@pytest.mark.parametrize("arch_id", ["config_9_j3",
                                     pytest.param("config_15_j1", marks=pytest.mark.slow)])
def test_staged_bucketed_inputs_equal_the_whole_model(family, archs, arch_id):
    """Layer stages with FFN widths padded to the bucket give the unpadded whole-model inputs: same
    counts (real elements), same values (samples at the real entries' positions)."""
    from lpzero_jax.engine import layout, staging

    config = gpt2_config(batch_size=4, seq_len=32)  # 4 x 32: some targets in the tail clusters
    mc = family.model_config(archs[arch_id], config)
    stages = family.stages(mc)
    runs = [stages.bucket(m) for m, _ in stages.layers]
    assert all(r.d_inner % family.ffn_bucket == 0 for r in runs)
    assert any(r.d_inner != f for r, f in zip(runs, mc.d_inner))  # really padded
    params = family.init_params(mc, config.seed)
    batch = family.make_batch(config)
    assert sum(v.sum() for _, v in stages.head_inputs(batch)["cluster_rows"]) > 0  # tails used
    k = 8192  # A, W, G sampled; H, S (and J at d_model 64) of 8192 stored whole
    a = extract_proxy_inputs(family, mc, params, batch, k, staged=True)
    b = extract_proxy_inputs(family, mc, params, batch, k, staged=False)
    assert a.counts["A"][0, 0] > k and a.counts["S"][0, 0] <= k
    for n in ("A", "J", "G", "H", "W", "S"):
        np.testing.assert_array_equal(a.counts[n], b.counts[n], err_msg=n)
        np.testing.assert_allclose(a.values[n], b.values[n], rtol=2e-4, atol=1e-6, err_msg=n)
    # the padded entries of a layer stage are exact zeros (outputs, activations, gradients)
    module, key = stages.layers[0]
    run = stages.bucket(module)
    lay = layout.sample_layout(module, run, (4, 32, mc.d_model), family.is_proxy_weight, k, 0,
                                  stages.bucket_strides(module, run))
    padded = layout.pad_params(params["params"][key], lay.run_params,
                               stages.bucket_params(module, run))
    x = np.random.default_rng(0).standard_normal((4, 32, mc.d_model)).astype(np.float32)
    y, vjp_fn, inter = jax.vjp(staging.layer_apply(run), padded, x, has_aux=True)
    f = mc.d_inner[0]
    assert np.all(np.asarray(inter["mlp"]["A"][0])[..., f:] == 0)
    g_p, _ = vjp_fn(np.ones_like(y))
    assert np.all(np.asarray(g_p["mlp"]["c_fc"]["kernel"])[:, f:] == 0)
    assert np.all(np.asarray(g_p["mlp"]["c_proj"]["kernel"])[f:] == 0)
    y_real = staging.layer_apply(module)(params["params"][key], x)[0]
    np.testing.assert_allclose(np.asarray(y), np.asarray(y_real), rtol=1e-5, atol=1e-5)


def test_layer_programs_are_shared_across_widths_of_one_bucket(family):
    """Two layers of different real FFN widths in one bucket run the same compiled program."""
    from lpzero_jax.engine import layout, staging
    from lpzero_jax.models.gpt2_flex import Block

    a, b = Block(64, 2, 300), Block(64, 2, 400)
    bucket = lambda m: m.clone(d_inner=512)  # noqa: E731
    assert staging.module_key(bucket(a)) == staging.module_key(bucket(b))
    la = layout.sample_layout(a, bucket(a), (2, 16, 64), family.is_proxy_weight, 64, 0)
    lb = layout.sample_layout(b, bucket(b), (2, 16, 64), family.is_proxy_weight, 64, 0)
    assert la.counts["A"].tolist() == [2 * 16 * 300] and lb.counts["A"].tolist() == [2 * 16 * 400]
    # positions point at real entries only: column index (flat % 512) below the real width
    assert (la.positions["A"] % 512).max() < 300 and (lb.positions["A"] % 512).max() < 400


def test_ffn_bucket_measurement_on_the_200_archs(family, data_root):
    """The figures behind `ffn_bucket` (README): distinct layer stages vs extra FLOPs."""
    from lpzero_jax.families.gpt2 import layer_buckets

    configs = [family.model_config(a, None) for a in family.load_benchmark(
        gpt2_config(data_root=str(data_root)))]
    one = layer_buckets(configs, 1)
    assert (one["layers"], one["distinct"], one["distinct_bucketed"]) == (1870, 1777, 1777)
    assert one["extra_ffn_flops"] == 0
    b128, b256 = layer_buckets(configs, 128), layer_buckets(configs, 256)
    assert (b128["distinct_bucketed"], b256["distinct_bucketed"]) == (139, 70)
    assert 0.04 < b128["extra_ffn_flops"] < 0.05 and 0.09 < b256["extra_ffn_flops"] < 0.10
    assert b256["extra_layer_flops"] < b256["extra_ffn_flops"]
    assert layer_buckets(configs, family.ffn_bucket)["distinct_bucketed"] <= 70


def test_extraction_programs_for_the_200_archs_counted_statically(family, data_root):
    """The compact extraction of the 200 compiles at most 120 XLA programs (issue 15): n_head out
    of the layer key (mixed heads), FFN widths bucketed, embedding and prelude on the host, one
    head per (d_model, d_embed)."""
    from lpzero_jax.modes.bench import distinct_stages

    configs = [family.model_config(a, None) for a in family.load_benchmark(
        gpt2_config(data_root=str(data_root)))]
    d = distinct_stages(family, configs)
    assert (d["layer_stages"], d["outer_stages"], d["whole_models"]) == (24, 12, 0)
    assert d["programs"] == 2 * 24 + 12 <= 120
