"""GPT2Flex on small hand-built configs: shapes, finiteness, adaptive softmax/embedding semantics,
causality, tying, and the analytical parameter formula against the counted shapes."""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lpzero_jax.families.gpt2 import gpt2_init_rule
from lpzero_jax.inputs import forward_backward
from lpzero_jax.models import init as model_init
from lpzero_jax.models.gpt2_config import (
    GPT2FlexConfig,
    analytical_param_counts,
    clean_cutoffs,
)
from lpzero_jax.models.gpt2_flex import GPT2Flex

N_TOKEN = 96


def small_config(div_val=2, d_model=16, d_embed=32, tie_weight=True, cutoffs=(32, 64),
                 tie_projs=(False, True, True), n_head=(2, 4), d_inner=(24, 40)):
    return GPT2FlexConfig(d_model=d_model, n_head=n_head, d_inner=d_inner, d_embed=d_embed,
                          div_val=div_val, cutoffs=clean_cutoffs(list(cutoffs), N_TOKEN),
                          tie_projs=tie_projs, tie_weight=tie_weight, n_token=N_TOKEN, n_positions=12)


CONFIGS = {
    "div2": small_config(),
    "div1_projected": small_config(div_val=1, d_embed=24),
    "div1_plain_untied": small_config(div_val=1, d_embed=16, tie_weight=False, n_head=(4, 1, 2),
                                      d_inner=(8, 16, 12)),
    "div4_untied_projs": small_config(div_val=4, tie_projs=(False, False, True)),
    "no_clusters": small_config(cutoffs=(200,), tie_projs=(False,)),
}


@functools.lru_cache(maxsize=None)
def init(config, seed=0):
    """Model and parameters: shapes from jax.eval_shape, values from the family rule (no eager
    op-by-op init, which compiles every op on this CPU), biases set non-zero so tests see them."""
    model = GPT2Flex(config)
    ids = jnp.zeros((1, 4), jnp.int32)
    shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(seed), ids, method=model.init_all))
    params = model_init.init_from_shapes(shapes, seed, gpt2_init_rule(config))
    params = jax.tree_util.tree_map_with_path(
        lambda p, x: x + 0.1 if model_init.path_names(p)[-1].startswith("bias") else x, params)
    return model, params


def ids_batch(seed=0, b=2, s=10):
    return jnp.asarray(np.random.default_rng(seed).integers(0, N_TOKEN, size=(b, s)), jnp.int32)


def test_clean_cutoffs_as_reference():
    assert clean_cutoffs([19997, 39997, 199997, 50264], 50264) == (19997, 39997, 50264)
    assert clean_cutoffs([19997, 39997], 50264) == (19997, 39997, 50264)
    assert clean_cutoffs([], 100) == (100,)
    assert clean_cutoffs([10, 200], 100) == (10, 100)
    with pytest.raises(ValueError):
        clean_cutoffs([30, 20], 100)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_param_formula_matches_counted_shapes(name):
    config = CONFIGS[name]
    _, params = init(config)
    groups = dict.fromkeys(("AdaEmb", "Attn", "FFN", "LayerNorm", "Softmax"), 0)
    for path, leaf in jax.tree_util.tree_flatten_with_path(params["params"])[0]:
        names = model_init.path_names(path)
        top = names[0]
        key = ("AdaEmb" if top in ("wte", "wpe") else "Softmax" if top == "lm_head" else
               "LayerNorm" if names[1 if top.startswith("layer_") else 0].startswith("ln_") else
               "Attn" if names[1] == "attn" else "FFN")
        groups[key] += leaf.size
    formula = analytical_param_counts(config)
    for key, value in groups.items():
        assert formula[key] == value, key
    assert formula["total"] == model_init.count_params(params)
    assert formula["nonembedding"] == groups["Attn"] + groups["FFN"] + groups["LayerNorm"]


def test_attention_count_is_independent_of_heads():
    a = analytical_param_counts(small_config(n_head=(1, 1)))
    b = analytical_param_counts(small_config(n_head=(4, 8)))
    assert a["Attn"] == b["Attn"] == 2 * (4 * 16 * 16 + 4 * 16)


@pytest.mark.parametrize("name", ["div2", "div1_projected", "div1_plain_untied"])
def test_forward_shapes_finite_loss_and_grads(name):
    """One jitted forward + backward (the proxy-input path): shapes of A/H/S, finite loss and grads."""
    config = CONFIGS[name]
    model, params = init(config)
    ids = ids_batch()
    loss, inter, grads, d_embeds = jax.jit(lambda p, b: forward_backward(model, p, b))(
        params, {"input_ids": ids})
    assert d_embeds.shape == (2, 10, config.d_model)
    assert sorted(inter) == [f"layer_{i}" for i in range(config.n_layer)]
    for i in range(config.n_layer):
        layer = inter[f"layer_{i}"]
        (a,) = layer["mlp"]["A"]
        assert a.shape == (2, 10, config.d_inner[i])
        h = layer["attn"]["H"]
        assert len(h) == 3 and all(t.shape == (2, 10, config.d_model) for t in h)
        (s,) = layer["attn"]["S"]
        assert s.shape == (2, config.n_head[i], 10, 10)
        np.testing.assert_allclose(np.sum(s, axis=-1), 1.0, rtol=1e-5)
        assert np.all(np.triu(np.asarray(s), k=1) == 0.0)  # causal: no weight on later positions

    assert np.isfinite(float(loss))
    # at init the LM is close to uniform over the vocabulary
    assert abs(float(loss) - math.log(N_TOKEN)) < 1.5
    assert np.all(np.isfinite(d_embeds)) and float(jnp.abs(d_embeds).sum()) > 0
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))
    assert float(jnp.abs(grads["params"]["layer_0"]["attn"]["c_attn"]["kernel"]).sum()) > 0
    assert float(jnp.abs(grads["params"]["layer_0"]["mlp"]["c_fc"]["kernel"]).sum()) > 0


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_adaptive_softmax_is_a_distribution(name):
    """exp(-nll) over every possible target sums to 1 for each position."""
    config = CONFIGS[name]
    model, params = init(config)
    hidden = jnp.asarray(np.random.default_rng(1).standard_normal((3, config.d_model)), jnp.float32)
    targets = jnp.arange(N_TOKEN)
    rows = jnp.repeat(hidden, N_TOKEN, axis=0)
    nll = jax.jit(lambda p, h, t: model.apply(p, h, t, method=model.nll))(
        params, rows, jnp.tile(targets, 3)).reshape(3, N_TOKEN)
    np.testing.assert_allclose(np.exp(-np.asarray(nll)).sum(axis=1), 1.0, rtol=1e-4)


def test_adaptive_softmax_matches_numpy_reference():
    """Head cluster: log_softmax(h P0^T [E0; C]^T + b); tail i: head's cluster logit + its own softmax."""
    config = CONFIGS["div2"]  # proj 0 untied, projs 1, 2 tied to the input projections
    model, params = init(config)
    p = jax.tree_util.tree_map(np.asarray, params["params"])
    h = np.random.default_rng(2).standard_normal((4, config.d_model)).astype(np.float32)
    targets = np.array([3, 40, 70, 95])
    nll = np.asarray(model.apply(params, jnp.asarray(h), jnp.asarray(targets), method=model.nll))

    def log_softmax(x):
        x = x - x.max(-1, keepdims=True)
        return x - np.log(np.exp(x).sum(-1, keepdims=True))

    wte, head = p["wte"], p["lm_head"]
    head_table = np.concatenate([wte["emb_0"], head["cluster_weight"]])
    head_bias = np.concatenate([head["bias_0"], head["cluster_bias"]])
    head_lp = log_softmax((h @ head["proj_0"].T) @ head_table.T + head_bias)
    expected = []
    for row, t in enumerate(targets):
        if t < 32:
            expected.append(-head_lp[row, t])
            continue
        i = 1 if t < 64 else 2
        lo = 32 if i == 1 else 64
        tail = log_softmax((h[row] @ wte[f"proj_{i}"].T) @ wte[f"emb_{i}"].T + head[f"bias_{i}"])
        expected.append(-(head_lp[row, 32 + i - 1] + tail[t - lo]))
    np.testing.assert_allclose(nll, expected, rtol=1e-4, atol=1e-5)


def test_adaptive_embedding_matches_numpy_reference():
    config = CONFIGS["div2"]
    model, params = init(config)
    wte = jax.tree_util.tree_map(np.asarray, params["params"]["wte"])
    ids = np.array([[0, 31, 32, 63, 64, 95]])
    out = np.asarray(model.apply(params, jnp.asarray(ids), method=model.embed))
    for j, t in enumerate(ids[0]):
        i, lo = (0, 0) if t < 32 else (1, 32) if t < 64 else (2, 64)
        expected = wte[f"emb_{i}"][t - lo] @ wte[f"proj_{i}"] * math.sqrt(config.d_model)
        np.testing.assert_allclose(out[0, j], expected, rtol=1e-5, atol=1e-6)
    widths = [wte[f"emb_{i}"].shape[1] for i in range(3)]
    assert widths == [32, 16, 8]  # d_embed // div_val**i


def test_div1_without_projection_is_a_plain_scaled_lookup():
    config = CONFIGS["div1_plain_untied"]
    model, params = init(config)
    assert "proj_0" not in params["params"]["wte"]
    assert not any(k.startswith("proj_") for k in params["params"]["lm_head"])
    assert params["params"]["lm_head"]["weight"].shape == (N_TOKEN, 16)  # untied output table
    ids = jnp.asarray([[5, 90]])
    out = model.apply(params, ids, method=model.embed)
    np.testing.assert_allclose(out[0], params["params"]["wte"]["emb_0"][np.array([5, 90])] * 4.0,
                               rtol=1e-6)


def test_tied_tables_receive_gradients_from_the_output_layer():
    """With tie_weight the output layer has no tables of its own: the LM loss through the softmax
    alone (gradient w.r.t. the hidden states' source held fixed) reaches the embedding tables."""
    config = CONFIGS["div2"]
    model, params = init(config)
    assert not any(k.startswith("weight") for k in params["params"]["lm_head"])
    h = jnp.ones((5, config.d_model))
    targets = jnp.asarray([0, 40, 70, 10, 80])
    grads = jax.jit(jax.grad(lambda p: jnp.sum(model.apply(p, h, targets, method=model.nll))))(params)
    for i in range(3):
        assert float(jnp.abs(grads["params"]["wte"][f"emb_{i}"]).sum()) > 0


def test_causal_outputs_do_not_see_the_future():
    config = CONFIGS["div1_projected"]
    model, params = init(config)
    ids = ids_batch(3, b=1, s=8)
    changed = ids.at[0, 6].set((ids[0, 6] + 1) % N_TOKEN)
    run = jax.jit(lambda x: model.apply(params, model.apply(params, x, method=model.embed)))
    a, b = run(ids), run(changed)
    np.testing.assert_allclose(a[0, :6], b[0, :6], rtol=1e-6, atol=1e-6)
    assert float(jnp.abs(a[0, 6:] - b[0, 6:]).max()) > 1e-4


def test_sequence_longer_than_positions_is_rejected():
    model, params = init(CONFIGS["div2"])
    with pytest.raises(ValueError, match="exceeds"):
        model.apply(params, ids_batch(s=13), method=model.init_all)


def test_invalid_configs_are_rejected():
    with pytest.raises(ValueError, match="multiple"):
        small_config(n_head=(3, 4))
    with pytest.raises(ValueError, match="tie_projs"):
        small_config(tie_projs=(False, True))
    with pytest.raises(ValueError, match="div_val"):
        small_config(div_val=0)


def test_config_from_lts_fields():
    fields = dict(n_layer=2, d_model=64, d_embed=128, n_head=(2, 4), d_inner=(100, 200), n_token=50264,
                  div_val=4, cutoffs=(19997, 39997, 199997, 50264), tie_weight=True,
                  tie_projs=(False, True, True, True), tgt_len=192, weight_init_std=0.02,
                  proj_init_std=0.01)
    c = GPT2FlexConfig.from_lts(fields)
    assert c.cutoffs == (19997, 39997, 50264) and c.tie_projs == (False, True, True)
    assert c.cluster_widths() == [128, 32, 8] and c.n_clusters == 2 and c.n_positions == 192
    assert hash(c) == hash(dataclasses.replace(c))


@pytest.mark.parametrize("div_val", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_tail_rows_give_the_dense_adaptive_softmax(div_val):
    """The head stage's sparse tails (only the rows whose target is in a tail cluster, host-computed
    and padded) give the dense form's per-token NLL and gradient."""
    from lpzero_jax.models.gpt2_flex import tail_cluster_rows

    config = small_config(div_val=div_val)
    model, params = init(config)
    ids = ids_batch(seed=3, b=3, s=12)
    targets = ids[:, 1:]
    rows = tail_cluster_rows(config, np.asarray(targets), multiple=8)
    assert all(v.sum() > 0 for _, v in rows) and any(v.sum() < len(v) for _, v in rows)
    hidden = jax.random.normal(jax.random.PRNGKey(1), targets.shape + (config.d_model,))

    def loss(h, cluster_rows):
        return model.apply(params, h, targets, cluster_rows, method=model.nll)

    dense, sparse = loss(hidden, None), loss(hidden, rows)
    np.testing.assert_allclose(np.asarray(sparse), np.asarray(dense), rtol=1e-5, atol=1e-5)
    g_dense = jax.grad(lambda h: loss(h, None).mean())(hidden)
    g_sparse = jax.grad(lambda h: loss(h, rows).mean())(hidden)
    np.testing.assert_allclose(np.asarray(g_sparse), np.asarray(g_dense), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["div2", "div1_plain_untied",
                                  pytest.param("div1_projected", marks=pytest.mark.slow),
                                  pytest.param("no_clusters", marks=pytest.mark.slow)])
def test_first_layer_input_on_the_host_equals_the_module(name):
    """`first_layer_input_host` (NumPy, the staged extraction's prelude) = prelude(embed(ids))."""
    from lpzero_jax.families.gpt2_stages import first_layer_input_host

    config = CONFIGS[name]
    model, params = init(config)
    ids = ids_batch(3, b=2, s=12)
    want = model.apply(params, model.apply(params, ids, method=model.embed), method=model.prelude)
    got = first_layer_input_host(config, params, np.asarray(ids))
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="positions"):
        first_layer_input_host(config, params, np.zeros((1, 13), np.int32))


@pytest.mark.parametrize("n_head", [2, 8, pytest.param(1, marks=pytest.mark.slow),
                                    pytest.param(4, marks=pytest.mark.slow)])
def test_mixed_heads_block_equals_the_real_block(n_head):
    """A Block of 8 fine heads mixed by `head_mix` computes the n_head-head block: outputs, kernel
    gradients and input gradient equal; S of real head g is the fine head g * 8 / n_head."""
    from lpzero_jax.engine import staging
    from lpzero_jax.models.gpt2_flex import Block, head_mix

    real, run = Block(32, n_head, 48), Block(32, 8, 48, mixed_heads=True)
    x = jnp.asarray(np.random.default_rng(n_head).standard_normal((2, 10, 32)), jnp.float32)
    params = jax.tree_util.tree_map(
        lambda a: a + 0.05 * np.random.default_rng(1).standard_normal(a.shape).astype(np.float32),
        real.init(jax.random.PRNGKey(0), x)["params"])
    run_params = jax.tree_util.tree_map(lambda a: a, dict(params))
    run_params["attn"] = dict(params["attn"], head_mix=head_mix(32, n_head, 8))
    (y, inter), vjp = jax.vjp(staging.layer_apply(real), params, x, has_aux=False)
    (y_run, inter_run), vjp_run = jax.vjp(staging.layer_apply(run), run_params, x, has_aux=False)
    np.testing.assert_allclose(np.asarray(y_run), np.asarray(y), rtol=1e-5, atol=1e-6)
    s, s_run = np.asarray(inter["attn"]["S"][0]), np.asarray(inter_run["attn"]["S"][0])
    assert s.shape == (2, n_head, 10, 10) and s_run.shape == (2, 8, 10, 10)
    np.testing.assert_allclose(s_run[:, ::8 // n_head], s, rtol=1e-5, atol=1e-7)
    g = jnp.asarray(np.random.default_rng(2).standard_normal(y.shape), jnp.float32)
    zero_inter = jax.tree_util.tree_map(jnp.zeros_like, inter)
    zero_inter_run = jax.tree_util.tree_map(jnp.zeros_like, inter_run)
    g_p, g_x = vjp((g, zero_inter))
    g_p_run, g_x_run = vjp_run((g, zero_inter_run))
    np.testing.assert_allclose(np.asarray(g_x_run), np.asarray(g_x), rtol=1e-4, atol=1e-6)
    for path in (("attn", "c_attn"), ("attn", "c_proj"), ("mlp", "c_fc"), ("mlp", "c_proj")):
        a, b = g_p_run[path[0]][path[1]]["kernel"], g_p[path[0]][path[1]]["kernel"]
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="fine heads"):
        head_mix(32, 3, 8)


@pytest.mark.parametrize("name", ["div4_untied_projs",  # the most general head; the others slow
                                  pytest.param("div2", marks=pytest.mark.slow),
                                  pytest.param("div1_plain_untied", marks=pytest.mark.slow),
                                  pytest.param("div1_projected", marks=pytest.mark.slow),
                                  pytest.param("no_clusters", marks=pytest.mark.slow)])
def test_shared_head_equals_the_real_head(name):
    """`head_module` / `head_params` (every cluster d_embed wide, zero-padded; div_val 1 split by
    cluster; identity projections where there are none): same loss and d loss / d hidden."""
    from lpzero_jax.families.gpt2_stages import head_module, head_params
    from lpzero_jax.models.gpt2_flex import tail_cluster_rows

    config = CONFIGS[name]
    model, params = init(config)
    run = head_module(config)
    assert run.config.cluster_widths() == [config.d_embed] * len(config.cutoffs)
    run_params = head_params(config, params)
    ids = ids_batch(5, b=3, s=12)
    hidden = jnp.asarray(np.random.default_rng(4).standard_normal((3, 12, config.d_model)),
                         jnp.float32)
    for batch in ({"input_ids": ids},
                  {"input_ids": ids, "cluster_rows": tail_cluster_rows(config, np.asarray(ids)[:, 1:], 8)}):
        def grad(m, p):
            return jax.value_and_grad(lambda h: m.apply(p, h, batch, method=m.head_loss))(hidden)

        (loss, g), (run_loss, run_g) = grad(model, params), grad(run, run_params)
        np.testing.assert_allclose(float(run_loss), float(loss), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(run_g), np.asarray(g), rtol=1e-4, atol=1e-7)
