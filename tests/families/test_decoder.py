"""The decoder family: the LTS GPT-2 and LoNAS LLaMA families are settings of it (same parameters,
same initial values, same six inputs), its stages equal the whole model, its groups add up."""

import jax
import numpy as np
import pytest

from lpzero_jax.benchmarks.base import Arch, BenchmarkFormatError
from lpzero_jax.benchmarks.decoder_configs import (decoder_config, decoder_fields, llama_fields,
                                                   lts_gpt2_fields)
from lpzero_jax.benchmarks.own import parse_gpt2_config
from lpzero_jax.families import get_family
from lpzero_jax.inputs import extract_proxy_inputs
from lpzero_jax.models.decoder import count_params
from lpzero_jax.models.llama import LlamaConfig, LlamaLayerConfig, count_llama_params

DECODER = get_family("decoder")
SEQ = 16


def random_batch(vocab, seed=0):
    return {"input_ids": np.random.default_rng(seed).integers(0, vocab, (2, SEQ)).astype(np.int32)}


def assert_same_trees(a, b, exact=True):
    la, lb = jax.tree_util.tree_flatten_with_path(a)[0], jax.tree_util.tree_flatten_with_path(b)[0]
    assert [p for p, _ in la] == [p for p, _ in lb]
    for (path, x), (_, y) in zip(la, lb):
        if exact:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=str(path))


def assert_same_inputs(fam_a, mc_a, params_a, fam_b, mc_b, params_b, batch):
    a = extract_proxy_inputs(fam_a, mc_a, params_a, batch, 64, 0)
    b = extract_proxy_inputs(fam_b, mc_b, params_b, batch, 64, 0)
    assert sorted(a.values) == sorted(b.values) == sorted("AJGHWS")
    for name in a.values:
        np.testing.assert_array_equal(a.counts[name], b.counts[name], err_msg=name)
        np.testing.assert_allclose(a.values[name], b.values[name], rtol=2e-4, atol=1e-6, err_msg=name)


def test_a_plain_lts_gpt2_is_a_decoder_setting():
    gpt2 = get_family("gpt2")
    own = parse_gpt2_config({"d_model": 32, "n_head": [2, 4], "d_inner": [64, 96],
                             "n_positions": SEQ}, "gpt2")
    mc_g = gpt2.model_config(Arch("a", own, 0.0), None)
    mc_d = decoder_config(lts_gpt2_fields(own))
    counts_g, counts_d = gpt2.param_group_counts(mc_g), DECODER.param_group_counts(mc_d)
    assert counts_d["total"] == counts_g["total"] == gpt2.count_params(mc_g) == DECODER.count_params(mc_d)
    assert (counts_d["Attn"], counts_d["FFN"]) == (counts_g["Attn"], counts_g["FFN"])
    assert counts_d["Softmax"] == counts_g["Softmax"] == 50257  # LTS's per-token output bias
    params_g, params_d = gpt2.init_params(mc_g, 3), DECODER.init_params(mc_d, 3)
    assert_same_trees(params_g, params_d)  # same names, same initial values
    assert_same_inputs(gpt2, mc_g, params_g, DECODER, mc_d, params_d, random_batch(50257))


def test_an_adaptive_embedding_is_no_decoder_setting():
    own = parse_gpt2_config({"d_model": 32, "n_head": 2, "d_inner": 64, "n_layer": 1, "div_val": 2,
                             "d_embed": 32, "cutoffs": [20000, 40000]}, "gpt2")
    with pytest.raises(BenchmarkFormatError, match="only plain tied GPT-2s"):
        lts_gpt2_fields(own)


@pytest.mark.slow  # builds a LoNAS subnet as a decoder (~25 s shared); the LTS case stays
def test_a_lonas_llama_subnet_is_a_decoder_setting():
    llama = get_family("llama")
    mc_l = LlamaConfig(vocab_size=512, hidden_size=16, layers=(
        LlamaLayerConfig(24, 4, 2), LlamaLayerConfig(16, 4, 2), LlamaLayerConfig(32, 4, 4)))
    mc_d = decoder_config(llama_fields(mc_l.to_dict()))
    assert DECODER.count_params(mc_d) == llama.count_params(mc_l) == count_llama_params(mc_l)
    counts_l, counts_d = llama.param_group_counts(mc_l), DECODER.param_group_counts(mc_d)
    assert {k: counts_d[k] for k in ("Attn", "FFN", "LayerNorm", "Softmax", "total")} == \
        {k: counts_l[k] for k in ("Attn", "FFN", "LayerNorm", "Softmax", "total")}
    params_l, params_d = llama.init_params(mc_l, 5), DECODER.init_params(mc_d, 5)
    assert_same_trees(params_l, params_d)
    assert_same_inputs(llama, mc_l, params_l, DECODER, mc_d, params_d, random_batch(512))


def test_lora_adapters_are_the_only_lonas_difference():
    """A LoNAS subnet with adapters: the decoder has no LoRA factors, so its count is the
    llama family's minus the 'Adapters' group."""
    llama = get_family("llama")
    mc_l = LlamaConfig.uniform(vocab_size=128, hidden_size=16, intermediate_size=24,
                               num_hidden_layers=2, num_attention_heads=4, attn_lora_rank=4,
                               ffn_lora_rank=2)
    with pytest.raises(BenchmarkFormatError, match="LoRA adapters"):
        llama_fields(mc_l.to_dict())
    plain = mc_l.to_dict()
    plain["layers"] = [dict(layer, attn_lora_rank=0, ffn_lora_rank=0) for layer in plain["layers"]]
    mc_d = decoder_config(llama_fields(plain))
    assert DECODER.count_params(mc_d) == llama.count_params(mc_l) - llama.param_group_counts(mc_l)["Adapters"]


@pytest.mark.parametrize("fields", [
    {"n_embd": 64, "n_head": [2, 4], "head_size": 16, "n_query_groups": [1, 2],
     "intermediate_size": [100, 200], "rotary_percentage": 0.5, "bias": False, "vocab_size": 300,
     "block_size": 64, "gelu_approximate": "tanh"},
    {"n_embd": 48, "n_layer": 2, "n_head": 4, "mlp_class_name": "LLaMAMLP", "intermediate_size": 72,
     "norm_class_name": "RMSNorm", "parallel_residual": True, "shared_attention_norm": True,
     "attn_bias": True, "bias": False, "vocab_size": 300, "tie_embeddings": True, "lm_head_bias": True,
     "scale_embeddings": True, "block_size": 64, "rotary_percentage": 0.5},
])
def test_staged_extraction_equals_the_whole_model(fields):
    mc = decoder_config(decoder_fields(fields, "x"))
    params = DECODER.init_params(mc, 0)
    assert DECODER.count_params(mc) == count_params(mc)["total"]
    batch = random_batch(300)
    staged = extract_proxy_inputs(DECODER, mc, params, batch, 64, 0, staged=True)
    whole = extract_proxy_inputs(DECODER, mc, params, batch, 64, 0, staged=False)
    for name in whole.values:
        np.testing.assert_array_equal(staged.counts[name], whole.counts[name])
        np.testing.assert_allclose(staged.values[name], whole.values[name], rtol=1e-4, atol=1e-6,
                                   err_msg=name)


def test_heads_change_the_attention_shape_at_a_fixed_head_size():
    """GPT-S style (head_size 64): the number of heads sets the qkv width, so params_attn differs
    where the heads differ (the gpt2 family's head dim d_model / n_head could not say this)."""
    def attn(heads):
        return DECODER.param_group_counts(decoder_config(decoder_fields(
            {"n_embd": 128, "n_head": heads, "head_size": 64, "vocab_size": 300, "block_size": 64},
            "x")))["Attn"]

    e = 128
    assert attn([2, 2]) == 2 * (e * 3 * 128 + 3 * 128 + 128 * e + e)
    assert attn([4, 2]) - attn([2, 2]) == e * 3 * 128 + 3 * 128 + 128 * e


def test_the_gpt_s_example_counts_attention_by_heads():
    """examples/decoder_gpt_s.jsonl (scripts/gpt_s_benchmark.py; synthetic scores): at head_size
    64, params_attn = sum_l heads_l * (256 E + 192 bias) + L * E * bias, so it takes 16 values over
    the 24 architectures, where a 3 d_model qkv (the gpt2 family) gives one per (d_model, n_layer): 8."""
    import json
    from pathlib import Path

    from ml_collections import ConfigDict

    path = Path(__file__).resolve().parents[2] / "examples" / "decoder_gpt_s.jsonl"
    archs = DECODER.load_benchmark(ConfigDict(dict(family="decoder", benchmark_file=str(path),
                                                   num_archs=0, data_root=None, vocab_size=None)))
    assert len(archs) == 24 and json.loads(path.read_text().splitlines()[0])["metric"] == \
        "synthetic_random_score"
    attn = set()
    for a in archs:
        c = a.config
        e, b = c["n_embd"], int(c["bias"])
        got = DECODER.param_group_counts(DECODER.model_config(a, None))["Attn"]
        assert got == sum(c["n_head"]) * (256 * e + 192 * b) + c["n_layer"] * e * b
        attn.add(got)
    assert len(attn) == 16 and len({(a.config["n_embd"], a.config["n_layer"]) for a in archs}) == 8


@pytest.mark.parametrize("extra", [
    {"tie_embeddings": True, "learned_positions": True, "rotary_percentage": 0.0},
    {"tie_embeddings": False, "norm_class_name": "RMSNorm", "rotary_percentage": 0.5}])
def test_synflow_differentiates_the_logit_sum(extra):
    """R = sum of the logits, staged and whole-model alike, and the layers get a real gradient
    (the sum of LayerNorm outputs at unit scale is flat in the layers: its 'gradient' is rounding
    noise). Both cases need features that differ at all-ones word embeddings: learned positions,
    or RMSNorm (a LayerNorm of a constant vector is 0: rotary + LayerNorm gives Synflow 0)."""
    from ml_collections import ConfigDict

    from lpzero_jax.proxies.base import ArchContext
    from lpzero_jax.proxies.resolve import resolve_proxies

    fields = decoder_fields(dict({"n_embd": 32, "n_head": [2, 4], "intermediate_size": [64, 96],
                                  "vocab_size": 300, "block_size": 32, "lm_head_bias": True},
                                 **extra), "x")
    mc = decoder_config(fields)
    params = DECODER.init_params(mc, 0)
    model = DECODER.build_model(mc)
    word = np.ones((2, SEQ, 32), np.float32)
    np.testing.assert_allclose(DECODER.synflow_value(model, params, word, {}),
                               np.sum(model.apply(params, word, method=model.logits)), rtol=1e-4)
    config = ConfigDict(dict(seed=0, train_mode=False, inputs=dict(sample_size=64, sample_seed=0),
                             rank=dict()))
    synflow = resolve_proxies("synflow")["synflow"]
    values = [synflow(ArchContext(DECODER, Arch("a", fields, 0.0), config, random_batch(300),
                                  layer_by_layer=staged)) for staged in (True, False)]
    assert values[0] > 1e-3
    np.testing.assert_allclose(values[0], values[1], rtol=1e-3)
