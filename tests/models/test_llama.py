"""Flax LLaMA: shapes, finite loss/grads, RMSNorm/RoPE and whole forwards against NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lpzero_jax.families import get_family
from lpzero_jax.models.init import count_params
from lpzero_jax.models.llama import (Llama, LlamaConfig, LlamaLayerConfig, apply_rope, count_llama_params,
                                     llama_config_from_dict, rms_norm, rope_angles)
from lpzero_jax.models.llama_checkpoint import params_from_hf
from tests.models import llama_reference as ref

FAMILY = get_family("llama")


def tiny(**kw):
    base = dict(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2)
    base.update(kw)
    return LlamaConfig.uniform(**base)


def ids(b=2, s=10, v=97, seed=0):
    return jnp.asarray(np.random.default_rng(seed).integers(0, v, (b, s)), jnp.int32)


def test_rms_norm_matches_numpy(rng):
    x = rng.normal(size=(3, 5, 16)).astype(np.float32)
    w = rng.normal(size=16).astype(np.float32)
    np.testing.assert_allclose(rms_norm(jnp.asarray(x), jnp.asarray(w), 1e-5),
                               ref.rms_norm(x.astype(np.float64), w, 1e-5), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("theta", [10000.0, 500000.0])
def test_rope_matches_numpy_and_is_a_rotation(rng, theta):
    x = rng.normal(size=(2, 3, 7, 8)).astype(np.float32)  # [B, heads, S, d]
    cos, sin = rope_angles(jnp.arange(7), 8, theta)
    got = np.asarray(apply_rope(jnp.asarray(x), cos, sin))
    want = np.stack([ref.rope(x[b].astype(np.float64), theta) for b in range(2)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(got[:, :, 0], x[:, :, 0], atol=1e-6)  # position 0 is not rotated
    # relative: <R_m q, R_n k> depends on m - n only
    q, k = rng.normal(size=8), rng.normal(size=8)
    big = np.tile(np.stack([q, k])[:, None, None, :], (1, 1, 7, 1)).astype(np.float32)
    r = np.asarray(apply_rope(jnp.asarray(big), cos, sin))[:, 0]
    np.testing.assert_allclose(r[0, 3] @ r[1, 1], r[0, 6] @ r[1, 4], rtol=1e-4)


@pytest.mark.parametrize("kw", [dict(), dict(num_key_value_heads=4, tie_word_embeddings=True),
                                dict(attn_lora_rank=3, ffn_lora_rank=2, rope_theta=500000.0)])
def test_forward_matches_numpy_reference(kw):
    c = tiny(**kw)
    w = ref.random_hf_weights(np.random.default_rng(1), 97, 32, 48, 2, 4, c.layers[0].num_kv_heads,
                              rank=c.layers[0].attn_lora_rank, tied=c.tie_word_embeddings)
    if kw.get("ffn_lora_rank"):  # gate/up adapters of another rank than q/k/v
        r = np.random.default_rng(2)
        for i in range(2):
            for p in ("gate_proj", "up_proj"):
                w[f"model.layers.{i}.mlp.{p}.lora_A.weight"] = r.normal(0, .1, (2, 32)).astype(np.float32)
                w[f"model.layers.{i}.mlp.{p}.lora_B.weight"] = r.normal(0, .1, (48, 2)).astype(np.float32)
    params = params_from_hf(FAMILY.param_shapes(c), w)
    model = Llama(c)
    x = ids()
    logits = np.asarray(model.apply(params, model.apply(params, x, method=model.embed)))
    assert logits.shape == (2, 10, 97)
    for b in range(2):
        want = ref.llama_logits(w, np.asarray(x[b]), 2, 4, c.layers[0].num_kv_heads, theta=c.rope_theta,
                                tied=c.tie_word_embeddings)
        np.testing.assert_allclose(logits[b], want, rtol=2e-4, atol=2e-4)


def test_causal_future_tokens_do_not_change_the_past():
    c = tiny()
    params = FAMILY.init_params(c, 0)
    model = Llama(c)
    a, b = np.asarray(ids(1, 12)), np.asarray(ids(1, 12, seed=5))
    mixed = a.copy()
    mixed[:, 7:] = b[:, 7:]
    fwd = jax.jit(lambda p, x: model.apply(p, model.apply(p, x, method=model.embed)))
    la, lm = fwd(params, jnp.asarray(a)), fwd(params, jnp.asarray(mixed))
    np.testing.assert_allclose(la[:, :7], lm[:, :7], rtol=1e-5, atol=1e-5)
    assert not np.allclose(la[:, 7:], lm[:, 7:])


def test_loss_grads_and_intermediates():
    c = tiny(attn_lora_rank=4, ffn_lora_rank=4)
    params = FAMILY.init_params(c, 0)
    model = Llama(c)
    x = ids(3, 9)
    embeds = model.apply(params, x, method=model.embed)

    def loss_fn(p, e):
        return model.apply(p, e, {"input_ids": x}, method=model.proxy_loss, mutable=["intermediates"])

    grad_fn = jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True))
    (loss, state), (g, ge) = grad_fn(params, embeds)
    assert np.isfinite(float(loss)) and abs(float(loss) - np.log(97)) < 0.5  # near-uniform at init
    leaves = jax.tree_util.tree_leaves(g)
    assert all(np.all(np.isfinite(l)) for l in leaves)
    assert float(jnp.abs(ge).sum()) > 0
    gq = g["params"]["layer_0"]["self_attn"]["q_proj"]
    assert float(jnp.abs(gq["lora_b"]).sum()) > 0  # B gets a gradient, A none (B = 0 at init)
    assert float(jnp.abs(gq["lora_a"]).sum()) == 0
    inter = state["intermediates"]
    for i in range(2):
        layer = inter[f"layer_{i}"]
        assert layer["mlp"]["A"][0].shape == (3, 9, 48)
        assert [h.shape for h in layer["self_attn"]["H"]] == [(3, 4, 9, 8), (3, 2, 9, 8), (3, 2, 9, 8)]
        s = np.asarray(layer["self_attn"]["S"][0])
        assert s.shape == (3, 4, 9, 9)
        np.testing.assert_allclose(s.sum(-1), 1.0, rtol=1e-5)
        assert np.all(np.triu(s, k=1) == 0)


@pytest.mark.parametrize("kw", [dict(), dict(tie_word_embeddings=True),
                                dict(attn_lora_rank=5, ffn_lora_rank=3, head_dim=6)])
def test_param_count_formula_matches_shapes(kw):
    c = tiny(**kw)
    assert count_llama_params(c) == count_params(FAMILY.param_shapes(c)) == FAMILY.count_params(c)


def test_heterogeneous_layers_and_dict_roundtrip():
    c = LlamaConfig(vocab_size=50, hidden_size=24, layers=(
        LlamaLayerConfig(40, 2, 2), LlamaLayerConfig(16, 6, 3, attn_lora_rank=2),
        LlamaLayerConfig(8, 4, 1, ffn_lora_rank=1)))
    assert llama_config_from_dict(c.to_dict()) == c
    assert count_llama_params(c) == count_params(FAMILY.param_shapes(c))
    model = Llama(c)
    params = FAMILY.init_params(c, 0)
    out = jax.jit(lambda p, x: model.apply(p, model.apply(p, x, method=model.embed)))(params, ids(1, 5, 50))
    assert out.shape == (1, 5, 50) and np.all(np.isfinite(out))


def test_llama7b_param_count():
    c = LlamaConfig.uniform(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                            num_hidden_layers=32, num_attention_heads=32)
    assert count_llama_params(c) == 6_738_415_616  # the published LLaMA-7B size


def test_config_errors():
    with pytest.raises(ValueError, match="multiple of num_kv_heads"):
        tiny(num_key_value_heads=3)
    with pytest.raises(ValueError, match="unknown LlamaConfig fields"):
        llama_config_from_dict(dict(tiny().to_dict(), hidden=3))
    with pytest.raises(ValueError, match="even head_dim"):
        LlamaConfig.uniform(vocab_size=10, hidden_size=15, intermediate_size=8, num_hidden_layers=1,
                            num_attention_heads=5)


def test_from_hf_config_fields():
    hf = {"vocab_size": 100, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3,
          "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
          "rope_theta": 500000.0, "tie_word_embeddings": True, "model_type": "llama"}
    c = LlamaConfig.from_hf(hf, attn_lora_rank=8, ffn_lora_rank=8)
    assert (c.num_layers, c.layers[0].num_kv_heads, c.rope_theta, c.rms_norm_eps) == (3, 2, 500000.0, 1e-5)
    assert c.tie_word_embeddings and c.layers[2].attn_lora_rank == 8
    with pytest.raises(NotImplementedError, match="rope_scaling"):
        LlamaConfig.from_hf(dict(hf, rope_scaling={"rope_type": "llama3", "factor": 8.0}))
