"""Loading LLaMA GGUF files (tiny ones written here with gguf's writer) into the Flax LLaMA."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from lpzero_jax.families import get_family  # noqa: E402
from lpzero_jax.models.llama import Llama, LlamaConfig, lm_loss  # noqa: E402
from lpzero_jax.models import llama_gguf as G  # noqa: E402

FAMILY = get_family("llama")
# hidden 32 so every row is a whole number of 32-value Q8_0 blocks; 4 query heads over 2 KV heads
CONFIG = LlamaConfig.uniform(vocab_size=0, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
                             rope_theta=10000.0)


def byte_vocab():
    """GPT-2's byte-to-unicode alphabet, three merges and one control token."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    tokens = [chr(c) for c in cs]
    merges = ["Ġ t", "h e", "Ġt he"]
    tokens += ["Ġt", "he", "Ġthe", "<|endoftext|>"]
    types = [1] * (len(tokens) - 1) + [3]
    return tokens, merges, types


def write_gguf(path, params, config, arch="llama", qtypes=None, tied=False, pre="smollm"):
    """Writes `params` (our Flax tree) as llama.cpp's converter would: HF layout, q/k rows permuted."""
    tokens, merges, types = byte_vocab()
    w = gguf.GGUFWriter(str(path), arch)
    layer = config.layers[0]
    w.add_block_count(config.num_layers)
    w.add_context_length(128)
    w.add_embedding_length(config.hidden_size)
    w.add_feed_forward_length(layer.intermediate_size)
    w.add_head_count(layer.num_heads)
    w.add_head_count_kv(layer.num_kv_heads)
    w.add_rope_freq_base(config.rope_theta)
    w.add_layer_norm_rms_eps(config.rms_norm_eps)
    w.add_vocab_size(config.vocab_size)
    w.add_rope_dimension_count(config.hidden_size // layer.num_heads)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_merges(merges)
    w.add_token_types(types)
    p = params["params"]
    hf = {"token_embd.weight": np.asarray(p["embed_tokens"]["embedding"]),
          "output_norm.weight": np.asarray(p["norm"]["scale"])}
    if not tied:
        hf["output.weight"] = np.asarray(p["lm_head"]["kernel"]).T
    for i in range(config.num_layers):
        lp = p[f"layer_{i}"]
        for g, (block, proj) in {"attn_q": ("self_attn", "q_proj"), "attn_k": ("self_attn", "k_proj"),
                                 "attn_v": ("self_attn", "v_proj"), "attn_output": ("self_attn", "o_proj"),
                                 "ffn_gate": ("mlp", "gate_proj"), "ffn_up": ("mlp", "up_proj"),
                                 "ffn_down": ("mlp", "down_proj")}.items():
            t = np.asarray(lp[block][proj]["kernel"]).T
            if g == "attn_q":
                t = G.permute_rotary(t, layer.num_heads)
            elif g == "attn_k":
                t = G.permute_rotary(t, layer.num_kv_heads)
            hf[f"blk.{i}.{g}.weight"] = t
        hf[f"blk.{i}.attn_norm.weight"] = np.asarray(lp["input_layernorm"]["scale"])
        hf[f"blk.{i}.ffn_norm.weight"] = np.asarray(lp["post_attention_layernorm"]["scale"])
    for name, t in hf.items():
        qtype = (qtypes or {}).get(name)
        t = np.ascontiguousarray(t, dtype=np.float32)
        if qtype is None:
            w.add_tensor(name, t)
        elif isinstance(qtype, str):  # a raw numpy dtype (e.g. int8: a type the loader refuses)
            w.add_tensor(name, t.astype(qtype))
        else:
            w.add_tensor(name, gguf.quants.quantize(t, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def vocab_size():
    return len(byte_vocab()[0])


@pytest.fixture(scope="module")
def original(vocab_size):
    import dataclasses

    config = dataclasses.replace(CONFIG, vocab_size=vocab_size)
    params = FAMILY.init_params(config, 3)
    params = {"params": dict(params["params"])}
    # norms away from 1 so a misplaced scale shows
    rng = np.random.default_rng(0)
    params["params"]["norm"] = {"scale": jnp.asarray(rng.uniform(0.5, 1.5, config.hidden_size), jnp.float32)}
    return config, params


def logits(config, params, ids):
    model = Llama(config)
    return model.apply(params, model.apply(params, ids, method=model.embed))


def test_permute_rotary_matches_llama_cpp_row_order():
    d, heads = 8, 2
    w = np.arange(heads * d)[:, None].astype(np.float32)
    out = G.permute_rotary(w, heads)[:, 0]
    # per head: HF rows j (first half) and j + d/2 (second half) become llama.cpp rows 2j, 2j + 1
    assert out[:d].tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    assert out[d:].tolist() == [8, 12, 9, 13, 10, 14, 11, 15]
    np.testing.assert_array_equal(G.unpermute_rotary(G.permute_rotary(w, heads), heads), w)


def test_f32_file_round_trips_config_params_and_logits(tmp_path, original):
    config, params = original
    path = tmp_path / "tiny.gguf"
    write_gguf(path, params, config)
    got_config, got = G.load_llama_gguf(path, get_family("llama"))
    assert got_config == config
    flat_a = {k: v for k, v in _flat(params)}
    flat_b = {k: v for k, v in _flat(got)}
    assert flat_a.keys() == flat_b.keys()
    for k in flat_a:
        np.testing.assert_array_equal(flat_a[k], flat_b[k], err_msg=k)
    ids = jnp.asarray(np.arange(12).reshape(2, 6) % config.vocab_size, jnp.int32)
    np.testing.assert_allclose(logits(got_config, got, ids), logits(config, params, ids), atol=1e-6)


def test_quantized_tensors_dequantize_and_tied_head(tmp_path, original):
    config, params = original
    Q8 = gguf.GGMLQuantizationType.Q8_0
    path = tmp_path / "q8.gguf"
    write_gguf(path, params, config, tied=True,
               qtypes={"token_embd.weight": Q8, "blk.0.attn_q.weight": Q8, "blk.1.ffn_down.weight": Q8})
    got_config, got = G.load_llama_gguf(path, get_family("llama"))
    assert got_config.tie_word_embeddings and "lm_head" not in got["params"]
    emb = np.asarray(params["params"]["embed_tokens"]["embedding"])
    got_emb = np.asarray(got["params"]["embed_tokens"]["embedding"])
    # Q8_0: one scale per 32 values, error <= scale / 2 = max|block| / 254
    assert np.max(np.abs(got_emb - emb)) <= np.max(np.abs(emb)) / 254 + 1e-7
    assert np.max(np.abs(got_emb - emb)) > 0
    q = np.asarray(got["params"]["layer_0"]["self_attn"]["q_proj"]["kernel"])
    q_ref = np.asarray(params["params"]["layer_0"]["self_attn"]["q_proj"]["kernel"])
    assert np.max(np.abs(q - q_ref)) <= np.max(np.abs(q_ref)) / 254 + 1e-7  # unpermuted too


def test_refuses_other_architecture_and_unsupported_type(tmp_path, original):
    config, params = original
    path = tmp_path / "other.gguf"
    write_gguf(path, params, config, arch="qwen2")
    with pytest.raises(G.GGUFError, match="architecture 'qwen2'"):
        G.read_gguf(path)
    path = tmp_path / "int8.gguf"
    write_gguf(path, params, config, qtypes={"blk.0.ffn_up.weight": "int8"})
    with pytest.raises(G.GGUFError, match="type I8 is not supported"):
        G.read_gguf(path)


def test_tokenizer_from_file_vocab_and_merges(tmp_path, original):
    config, params = original
    path = tmp_path / "tok.gguf"
    write_gguf(path, params, config)
    tok = G.gguf_tokenizer(path)
    enc = tok.encode(" the x42<|endoftext|>", add_special_tokens=False)
    assert enc.tokens == ["Ġthe", "Ġ", "x", "4", "2", "<|endoftext|>"]
    assert tok.decode(enc.ids, skip_special_tokens=False) == " the x42<|endoftext|>"
    write_gguf(path, params, config, pre="qwen2")
    with pytest.raises(G.GGUFError, match="pre-tokenizer 'qwen2'"):
        G.gguf_tokenizer(path)


def _flat(tree):
    import jax

    return [("/".join(str(getattr(k, "key", k)) for k in path), np.asarray(v))
            for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]]


@pytest.mark.slow
def test_smollm2_perplexity_is_a_trained_models(data_root):
    """SmolLM2-135M-Instruct Q4_1 on the first 8 x 256 tokens of WikiText-2 test.txt: 31.99 when the
    q/k rows are unpermuted (379 when they are not)."""
    try:  # the package's own import needs `llm`; only its data file is used
        path = G.smollm2_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    config, params = G.load_llama_gguf(path, get_family("llama"))
    assert (config.num_layers, config.hidden_size, config.layers[0].num_kv_heads) == (30, 576, 3)
    ids = G.gguf_corpus_ids(str(path), str(data_root / "wikitext-2" / "test.txt"))
    x = jnp.asarray(ids[:8 * 256].reshape(8, 256))
    ppl = math.exp(float(lm_loss(logits(config, params, x), x)))
    assert 25 < ppl < 40
