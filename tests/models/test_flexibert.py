"""FlexiBERT in Flax: parameter counts and outputs against the PyTorch reference, layer shapes."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import ConfigDict

from lpzero_jax.families import get_family
from lpzero_jax.families.flexibert import flexibert_config
from lpzero_jax.models.flexibert import FlexiBertConfig, LayerConfig, dct2_unnormalised

REFERENCE = json.loads((Path(__file__).parent / "data" / "flexibert_reference_outputs.json").read_text())


@pytest.fixture(scope="module")
def family():
    return get_family("flexibert")


@pytest.fixture(scope="module")
def archs(family):
    return family.load_benchmark(ConfigDict(dict(num_archs=20)))


def reference_formula(arch_config, hidden=None, ffn=None) -> int:
    """Independent closed form of the reference ElectraModel's parameter count."""
    h = hidden or arch_config["hidden_size"]
    e = 128
    total = 30522 * e + 512 * e + 2 * e + 2 * e + (e * h + h if e != h else 0)
    for l in arch_config["encoder_layers"]:
        i = ffn or l["feed_forward_dimension"]
        out = h * h + h + 2 * h
        if l["operation_type"] == "SA":
            total += 3 * (h * h + h) + out + (h * h if l["operation_parameter"] == "WMA" else 0)
        elif l["operation_type"] == "LT":
            total += h * h + h
        else:
            k, n = int(l["operation_parameter"]), max(l["num_operation_heads"] // 2, 1)
            a = n * (h // l["num_operation_heads"])
            total += 3 * (h * a + a) + h * k + h * a + a + a * n * k + n * k + h * a + a + out
        total += h * i + i + (l["num_feed_forward"] - 1) * (i * i + i) + i * h + h + 2 * h
    return total


@pytest.mark.parametrize("arch_id,expected", [(0, 13_330_176), (1, 11_106_199), (2, 8_840_082),
                                              (3, 5_526_167)])
def test_reference_reading_counts_equal_original(family, archs, arch_id, expected):
    mc = flexibert_config(archs[arch_id].config, "pytorch_reference")
    assert family.count_params(mc) == expected


def test_benchmark_reading_honours_every_field(family, archs):
    for arch in archs:
        mc = flexibert_config(arch.config, "benchmark")
        assert mc.hidden_size == arch.config["hidden_size"]
        assert [l.feed_forward_dimension for l in mc.layers] == \
               [l["feed_forward_dimension"] for l in arch.config["encoder_layers"]]
        assert family.count_params(mc) == reference_formula(arch.config)
    # the two readings differ exactly where the reference ignores the entry's fields
    a = archs[2].config
    assert family.count_params(flexibert_config(a, "pytorch_reference")) == \
           reference_formula(a, hidden=256, ffn=1024)


@pytest.mark.parametrize("arch_id", ["0", "1", "2", "3"])
def test_outputs_match_pytorch_reference(family, archs, arch_id):
    ref = REFERENCE["archs"][arch_id]
    mc = flexibert_config(archs[int(arch_id)].config, "pytorch_reference", "sum_output")
    model, params = family.build_model(mc), family.init_params(mc, 0)
    ids = jnp.asarray(np.asarray(REFERENCE["input_ids"], np.int32))
    out = np.asarray(model.apply(params, model.apply(params, ids, method=model.embed)))
    assert family.count_params(mc) == ref["num_params"]
    np.testing.assert_allclose(out[:, :4, :6], np.asarray(ref["out_corner"]), atol=2e-3)
    np.testing.assert_allclose(out.sum(-1), np.asarray(ref["out_token_sums"]), atol=5e-3)
    assert abs(np.abs(out).mean() - ref["out_abs_mean"]) < 1e-4


def test_dct_matches_scipy():
    from scipy.fft import dct

    x = np.random.default_rng(0).standard_normal((3, 7)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(dct2_unnormalised(jnp.asarray(x), -1)),
                               dct(x, type=2, norm=None, axis=-1), rtol=1e-4, atol=1e-4)


TINY = FlexiBertConfig(hidden_size=128, layers=(
    LayerConfig("SA", "WMA", 4, 256, 2),
    LayerConfig("LT", "DFT", 2, 128, 1),
    LayerConfig("DSC", 5, 2, 128, 3),
))


def test_six_inputs_shapes_for_sa_lt_dc_layers(family, bert_ids):
    from lpzero_jax.families.flexibert import lm_positions
    from lpzero_jax.inputs import raw_proxy_inputs

    model, params = family.build_model(TINY), family.init_params(TINY, 0)
    batch = {"input_ids": jnp.asarray(bert_ids), "token_type_ids": jnp.zeros_like(jnp.asarray(bert_ids)),
             "lm_positions": jnp.asarray(lm_positions(2, 16, 0))}
    raw, loss = raw_proxy_inputs(model, params, batch, family.is_proxy_weight)
    assert np.isfinite(float(loss))
    assert [[t.shape for t in l] for l in raw["A"]] == [[(2, 16, 256)] * 2, [(2, 16, 128)],
                                                      [(2, 16, 128)] * 3]
    # H: SA-WMA q, k, v, weighted q; LT input projection; DSC q, k, v over half the heads
    assert [[t.shape for t in l] for l in raw["H"]] == [[(2, 16, 128)] * 4, [(2, 16, 128)],
                                                      [(2, 16, 64)] * 3]
    # S: attention probs; LT softmax over the transform's head dim; DSC attention over 1 head
    assert [[t.shape for t in l] for l in raw["S"]] == [[(2, 4, 16, 16)], [(2, 2, 16, 64)],
                                                      [(2, 1, 16, 16)]]
    assert raw["J"][0][0].shape == (2, 16, 128)
    assert [len(l) for l in raw["W"]] == [8, 3, 12]  # SA 4+1+2+1; LT 1+1+1; DSC 7+1+3+1
    for wl, gl in zip(raw["W"], raw["G"]):
        assert [w.shape for w in wl] == [g.shape for g in gl]
    for g in [g for l in raw["G"] for g in l] + [raw["J"][0][0]]:
        assert np.all(np.isfinite(np.asarray(g)))
        assert float(jnp.abs(g).max()) > 0  # the gradient exists (taken after the backward pass)
    s_sa = np.asarray(raw["S"][0][0])
    np.testing.assert_allclose(s_sa.sum(-1), 1.0, rtol=1e-5)


def test_sum_output_loss_is_degenerate_and_tied_lm_is_not(family, bert_ids):
    """The reference's backward(ones) goes through a final LayerNorm: weight grads are fp noise."""
    from lpzero_jax.families.flexibert import lm_positions
    from lpzero_jax.inputs import forward_backward
    import dataclasses

    batch = {"input_ids": jnp.asarray(bert_ids), "token_type_ids": jnp.zeros_like(jnp.asarray(bert_ids)),
             "lm_positions": jnp.asarray(lm_positions(2, 16, 0))}
    sizes = {}
    for loss in ("sum_output", "tied_lm"):
        mc = dataclasses.replace(TINY, proxy_loss=loss)
        _, _, grads, _ = forward_backward(family.build_model(mc), family.init_params(mc, 0), batch)
        k = grads["params"]["layer_0"]["intermediate"]["dense_in"]["kernel"]
        sizes[loss] = float(jnp.abs(k).mean())
    assert sizes["sum_output"] < 1e-6
    assert sizes["tied_lm"] > 1e-5


def test_init_is_deterministic_and_reference_like(family):
    p1 = family.init_params(TINY, 0)
    p2 = family.init_params(TINY, 0)
    chex_equal = jax.tree_util.tree_all(jax.tree_util.tree_map(lambda a, b: bool(jnp.all(a == b)), p1, p2))
    assert chex_equal
    emb = np.asarray(p1["params"]["word_embeddings"]["embedding"])
    assert np.all(emb[0] == 0)  # padding row
    assert abs(emb[1:].std() - 0.02) < 1e-3
    ln = p1["params"]["layer_0"]["output"]["LayerNorm"]
    assert np.all(np.asarray(ln["scale"]) == 1) and np.all(np.asarray(ln["bias"]) == 0)
