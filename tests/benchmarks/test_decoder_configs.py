"""LitGPT-style and Hugging Face config.json decoder configs: exact parameter counts of published
models, field-by-field mapping, refusals by name, and the decoder family's own-benchmark lines."""

import json

import jax
import pytest
from ml_collections import ConfigDict

from lpzero_jax.benchmarks.base import BenchmarkFormatError
from lpzero_jax.benchmarks.decoder_configs import HF_READERS, decoder_config, decoder_fields
from lpzero_jax.benchmarks.own import FORMAT
from lpzero_jax.errors import ConfigError
from lpzero_jax.families import get_family
from lpzero_jax.models.decoder import count_params

# the published config.json files (hub), as they are
PYTHIA_70M = {  # EleutherAI/pythia-70m
    "architectures": ["GPTNeoXForCausalLM"], "bos_token_id": 0, "eos_token_id": 0,
    "hidden_act": "gelu", "hidden_size": 512, "initializer_range": 0.02,
    "intermediate_size": 2048, "layer_norm_eps": 1e-05, "max_position_embeddings": 2048,
    "model_type": "gpt_neox", "num_attention_heads": 8, "num_hidden_layers": 6, "rotary_emb_base": 10000,
    "rotary_pct": 0.25, "tie_word_embeddings": False, "torch_dtype": "float16",
    "transformers_version": "4.24.0", "use_cache": True, "use_parallel_residual": True,
    "vocab_size": 50304}
SMOLLM2_135M = {  # HuggingFaceTB/SmolLM2-135M
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "silu", "hidden_size": 576,
    "initializer_range": 0.041666666666666664, "intermediate_size": 1536, "is_llama_config": True,
    "max_position_embeddings": 8192, "mlp_bias": False, "model_type": "llama",
    "num_attention_heads": 9, "num_hidden_layers": 30, "num_key_value_heads": 3,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_interleaved": False, "rope_scaling": None,
    "rope_theta": 100000, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
    "transformers_version": "4.40.1", "use_cache": True, "vocab_size": 49152}
GPT2_SMALL = {  # openai-community/gpt2
    "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
    "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
    "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1, "summary_activation": None,
    "summary_first_dropout": 0.1, "summary_proj_to_labels": True, "summary_type": "cls_index",
    "summary_use_proj": True, "task_specific_params": {"text-generation": {"do_sample": True,
                                                                           "max_length": 50}},
    "vocab_size": 50257}
QWEN2_05B = {  # Qwen/Qwen2-0.5B
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
    "intermediate_size": 4864, "max_position_embeddings": 131072, "max_window_layers": 24,
    "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
    "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "sliding_window": 131072, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
    "transformers_version": "4.40.1", "use_cache": True, "use_sliding_window": False,
    "vocab_size": 151936}
MISTRAL_7B = {  # mistralai/Mistral-7B-v0.1
    "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
    "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
    "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.34.0.dev0",
    "use_cache": True, "vocab_size": 32000}
PHI3_MINI = {  # microsoft/Phi-3-mini-4k-instruct
    "architectures": ["Phi3ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1,
    "embd_pdrop": 0.0, "eos_token_id": 32000, "hidden_act": "silu", "hidden_size": 3072,
    "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 4096,
    "model_type": "phi3", "num_attention_heads": 32, "num_hidden_layers": 32,
    "num_key_value_heads": 32, "original_max_position_embeddings": 4096, "pad_token_id": 32000,
    "resid_pdrop": 0.0, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 10000.0,
    "sliding_window": 2047, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.40.2", "use_cache": True, "vocab_size": 32064}
# LitGPT's own config of pythia-70m (litgpt/config.py): vocab 50254 padded to a multiple of 128
PYTHIA_70M_LITGPT = {"name": "pythia-70m", "hf_config": {"org": "EleutherAI", "name": "pythia-70m"},
                     "block_size": 2048, "n_layer": 6, "n_embd": 512, "n_head": 8,
                     "padding_multiple": 128}


@pytest.mark.parametrize("raw, published", [
    (PYTHIA_70M, 70_426_624), (PYTHIA_70M_LITGPT, 70_426_624), (SMOLLM2_135M, 134_515_008),
    (GPT2_SMALL, 124_439_808), (QWEN2_05B, 494_032_768), (MISTRAL_7B, 7_241_732_096),
    (PHI3_MINI, 3_821_079_552)])
def test_published_models_have_their_published_parameter_counts(raw, published):
    """The counts transformers' models report (`num_parameters()`, tied tables once) and LitGPT
    builds for pythia-70m; closed form here, checked against the built shapes below."""
    assert count_params(decoder_config(decoder_fields(raw, "x")))["total"] == published


def shrink(raw):
    """The same config at test size (every width and the vocabulary cut; structure kept)."""
    small = dict(raw)
    for key, value in (("hidden_size", 64), ("n_embd", 64), ("num_hidden_layers", 2), ("n_layer", 2),
                       ("intermediate_size", 96), ("n_inner", 96), ("vocab_size", 300)):
        if key in small or key in ("vocab_size",):
            small[key] = value
    heads = "n_head" if "n_head" in small else "num_attention_heads"
    kv = small.get("num_key_value_heads")
    small[heads] = 4
    if kv is not None:
        small["num_key_value_heads"] = 4 if kv == raw[heads] else 2
    return small


@pytest.mark.parametrize("raw", [PYTHIA_70M, SMOLLM2_135M, GPT2_SMALL, QWEN2_05B, MISTRAL_7B, PHI3_MINI])
def test_the_closed_form_count_is_the_built_model(raw):
    mc = decoder_config(decoder_fields(shrink(raw), "x"))
    family = get_family("decoder")
    assert family.count_params(mc) == count_params(mc)["total"]
    shapes = jax.tree_util.tree_leaves(family.param_shapes(mc))
    assert sum(x.size for x in shapes) == count_params(mc)["total"]


def test_hf_fields_map_field_by_field():
    f = decoder_fields(PYTHIA_70M, "x")
    assert (f["rotary_percentage"], f["parallel_residual"], f["gelu_approximate"], f["bias"],
            f["tie_embeddings"], f["norm_class_name"]) == (0.25, True, "none", True, False, "LayerNorm")
    f = decoder_fields(SMOLLM2_135M, "x")
    assert (f["n_query_groups"], f["rope_base"], f["norm_eps"], f["mlp_class_name"], f["bias"],
            f["tie_embeddings"]) == ([3] * 30, 100000.0, 1e-5, "LLaMAMLP", False, True)
    f = decoder_fields(GPT2_SMALL, "x")
    assert (f["learned_positions"], f["rotary_percentage"], f["gelu_approximate"], f["block_size"],
            f["lm_head_bias"], f["intermediate_size"]) == (True, 0.0, "tanh", 1024, False, [3072] * 12)
    f = decoder_fields(QWEN2_05B, "x")
    assert (f["attn_bias"], f["bias"], f["sliding_window_size"]) == (True, False, None)
    assert decoder_fields(MISTRAL_7B, "x")["sliding_window_size"] == 4096
    assert decoder_fields(PYTHIA_70M_LITGPT, "x")["padded_vocab_size"] == 50304


def test_transformers_default_configs_are_read():
    """The dicts transformers' own config classes write (its current field names, e.g.
    rope_parameters) map without an unknown field."""
    transformers = pytest.importorskip("transformers")
    for model_type in HF_READERS:
        d = transformers.AutoConfig.for_model(model_type).to_dict()
        assert decoder_fields(d, model_type)["n_embd"] == d.get("hidden_size", d.get("n_embd"))


@pytest.mark.parametrize("raw, message", [
    (dict(PYTHIA_70M, rotary_dims=16), r"unknown config field\(s\) \['rotary_dims'\]"),
    (dict(MISTRAL_7B, rope_scaling={"type": "linear", "factor": 2.0}), "rope scaling 'linear'"),
    (dict(SMOLLM2_135M, attention_bias=True), "attention_bias=True with mlp_bias=False"),
    (dict(SMOLLM2_135M, rope_interleaved=True), "rope_interleaved=True is not supported"),
    (dict(GPT2_SMALL, activation_function="relu"), "activation_function='relu' is not supported"),
    (dict(GPT2_SMALL, scale_attn_by_inverse_layer_idx=True), "scale_attn_by_inverse_layer_idx"),
    (dict(PYTHIA_70M, model_type="falcon"), "model_type 'falcon' is not read"),
    ({"n_embd": 64, "n_head": 4, "n_layer": 2, "n_heads": 4}, r"unknown config field\(s\) \['n_heads'\]"),
    ({"n_embd": 64, "n_head": 4, "n_layer": 2, "n_expert": 8}, "n_expert=8 is not supported"),
    ({"n_embd": 64, "n_head": [4, 4, 4], "n_layer": 2}, "n_head has 3 entries for 2 layers"),
    ({"n_embd": 64, "n_head": 3, "n_layer": 2}, "n_embd 64 is not a multiple of n_head 3"),
    ({"n_embd": 64, "n_head": 4, "n_query_groups": 3, "n_layer": 1}, "not a multiple of n_query_groups"),
    ({"n_embd": 64, "n_head": 4, "n_layer": 1, "mlp_class_name": "LLaMAMLP"},
     "must give intermediate_size"),
    ({"n_embd": 64, "n_head": 4, "n_layer": 1, "norm_class_name": "BatchNorm"},
     "norm_class_name 'BatchNorm'"),
    ({"n_embd": 64, "n_head": 4, "n_layer": 1, "bias": 1}, "bias must be true or false"),
])
def test_refusals_name_the_field(raw, message):
    with pytest.raises(BenchmarkFormatError, match=message):
        decoder_fields(raw, "x")


def run_config(path, **kw):
    return ConfigDict(dict(family="decoder", benchmark_file=str(path), num_archs=0, data_root=None,
                           vocab_size=None, **kw))


def test_an_own_benchmark_mixes_litgpt_and_hf_lines(tmp_path):
    header = {"format": FORMAT, "family": "decoder", "metric": "valid_ppl", "higher_is_better": False}
    rows = [{"id": "gpt2", "config": GPT2_SMALL, "score": 29.4},
            {"id": "pythia", "config": PYTHIA_70M_LITGPT, "score": 30.0},
            {"id": "tiny", "config": {"n_embd": 128, "n_head": [2, 4], "head_size": 64,
                                      "intermediate_size": [256, 512], "vocab_size": 50257,
                                      "block_size": 128, "rotary_percentage": 0.5}, "score": 80.0}]
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [header] + rows) + "\n")
    family = get_family("decoder")
    archs = family.load_benchmark(run_config(path))
    assert [a.arch_id for a in archs] == ["gpt2", "pythia", "tiny"]
    counts = [family.count_params(family.model_config(a, None)) for a in archs]
    assert counts[:2] == [124_439_808, 70_426_624]
    assert family.max_seq_len(family.model_config(archs[2], None)) == 128
    rows[0]["config"] = SMOLLM2_135M  # 49,152 rows < GPT-2's ids
    path.write_text("\n".join(json.dumps(x) for x in [header] + rows) + "\n")
    with pytest.raises(BenchmarkFormatError, match="token table has 49152 rows"):
        family.load_benchmark(run_config(path))
    with pytest.raises(ConfigError, match="reads your own benchmark only"):
        family.load_benchmark(ConfigDict(dict(family="decoder", benchmark_file=None)))
