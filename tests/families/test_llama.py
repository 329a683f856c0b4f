"""The llama family: batches in the model vocabulary, benchmark loading, the six proxy inputs."""

import json

import numpy as np
import pytest

from lpzero_jax import lm_vocab
from lpzero_jax.benchmarks.base import Arch, BenchmarkFormatError
from lpzero_jax.benchmarks.minibench import FORMAT
from lpzero_jax.families import get_family
from lpzero_jax.families.llama import vocab_fingerprint
from lpzero_jax.inputs import extract_proxy_inputs
from lpzero_jax.models.llama import LlamaConfig
from tests.conftest import tiny_llama_config

FAMILY = get_family("llama")


def run_config(**kw):
    c = tiny_llama_config()
    c.update(kw)
    return c


def test_batch_in_reduced_vocabulary(data_root):
    c = run_config()
    batch = FAMILY.make_batch(c)
    ids = batch["input_ids"]
    assert ids.shape == (3, 12) and ids.dtype == np.int32
    assert ids.min() >= 0 and ids.max() < 512
    np.testing.assert_array_equal(ids, FAMILY.make_batch(c)["input_ids"])  # deterministic
    assert not np.array_equal(ids, FAMILY.make_batch(run_config(seed=1))["input_ids"])
    full = FAMILY.make_batch(run_config(vocab_size=50257))["input_ids"]
    vocab = lm_vocab.reduced_vocab(str(data_root / "wikitext-2/test.txt"), 512)
    np.testing.assert_array_equal(vocab.encode(full), ids)  # same windows, ids mapped
    assert full.max() >= 511  # rare tokens exist in the full vocabulary ...
    assert (ids == 511).any()  # ... and became UNK


def test_reduced_vocabulary_orders_by_frequency(data_root):
    v = lm_vocab.reduced_vocab(str(data_root / "wikitext-2/test.txt"), 16)
    assert v.size == 16 and v.unk_id == 15 and len(set(v.kept_ids.tolist())) == 15
    ids = lm_vocab.text.tokenize_corpus(str(data_root / "wikitext-2/test.txt"), "gpt2")
    counts = np.bincount(ids, minlength=50257)
    assert counts[v.kept_ids].min() >= np.sort(counts)[-15]  # the 15 most frequent
    assert v.encode(np.array([v.kept_ids[0], v.kept_ids[14]])).tolist() == [0, 14]
    assert v.fingerprint == lm_vocab.reduced_vocab(str(data_root / "wikitext-2/test.txt"), 16).fingerprint
    with pytest.raises(ValueError):
        lm_vocab.reduced_vocab(str(data_root / "wikitext-2/test.txt"), 60000)


def test_batch_from_a_local_checkpoint_tokenizer(tmp_path):
    from lpzero_jax import text

    text.load_tokenizer("gpt2").save_pretrained(str(tmp_path / "tok"))  # stands in for a LLaMA folder
    c = run_config(tokenizer_path=str(tmp_path / "tok"), vocab_size=50257)
    np.testing.assert_array_equal(FAMILY.make_batch(c)["input_ids"],
                                  FAMILY.make_batch(run_config(vocab_size=50257))["input_ids"])
    with pytest.raises(ValueError, match="outside the vocabulary of 1000 ids"):
        FAMILY.make_batch(run_config(tokenizer_path=str(tmp_path / "tok"), vocab_size=1000))


def write_bench(path, archs, vocab):
    with open(path, "w") as f:
        json.dump({"format": FORMAT, "family": "llama", "command": "test", "vocab": vocab,
                   "training": {}, "archs": archs}, f)


def test_load_benchmark_checks_the_vocabulary(tmp_path):
    c = run_config(benchmark_file=str(tmp_path / "b.json"))
    cfg = LlamaConfig.uniform(vocab_size=512, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                              num_attention_heads=2).to_dict()
    archs = [{"id": "a", "config": cfg, "metrics": {"valid_ppl": 10.0}},
             {"id": "b", "config": cfg, "metrics": {"valid_ppl": 12.0}}]
    vocab = {"tokenizer": "gpt2", "size": 512, "counted_on": "wikitext-2/test.txt",
             "fingerprint": vocab_fingerprint(c)}
    write_bench(tmp_path / "b.json", archs, vocab)
    loaded = FAMILY.load_benchmark(c)
    assert [a.score for a in loaded] == [-10.0, -12.0]
    assert FAMILY.model_config(loaded[0], c).layers[0].intermediate_size == 32
    write_bench(tmp_path / "b.json", archs, dict(vocab, fingerprint="0" * 16))
    with pytest.raises(BenchmarkFormatError, match="another vocabulary.*fingerprint"):
        FAMILY.load_benchmark(c)
    write_bench(tmp_path / "b.json", archs, vocab)
    with pytest.raises(BenchmarkFormatError, match="size"):
        FAMILY.load_benchmark(run_config(benchmark_file=str(tmp_path / "b.json"), vocab_size=256))


def test_proxy_inputs_of_a_llama(data_root):
    c = run_config()
    mc = LlamaConfig.uniform(vocab_size=512, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2)
    arch = Arch("x", mc.to_dict(), 0.0)
    assert FAMILY.model_config(arch, c) == mc
    inputs = extract_proxy_inputs(FAMILY, mc, FAMILY.init_params(mc, 0), FAMILY.make_batch(c), 64, 0)
    counts = inputs.counts
    assert counts["A"].tolist() == [[3 * 12 * 24]] * 2
    assert counts["H"].tolist() == [[3 * 12 * 16, 3 * 12 * 8, 3 * 12 * 8]] * 2
    assert counts["S"].tolist() == [[3 * 4 * 12 * 12]] * 2
    # W and G: q, k, v, o, gate, up, down kernels of each layer (leaf order of the param tree)
    assert sorted(counts["W"][0].tolist()) == sorted([16 * 24] * 3 + [16 * 16] * 2 + [16 * 8] * 2)
    np.testing.assert_array_equal(counts["G"], counts["W"])
    assert counts["J"].tolist() == [[3 * 12 * 16]]
    for name, v in inputs.values.items():
        assert np.all(np.isfinite(v)), name
    assert np.abs(inputs.values["G"]).sum() > 0 and np.abs(inputs.values["J"]).sum() > 0


def test_param_groups_add_up():
    from lpzero_jax.models.llama import count_llama_params

    mc = LlamaConfig.uniform(vocab_size=100, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, attn_lora_rank=2, ffn_lora_rank=3)
    g = FAMILY.param_group_counts(mc)
    assert g["total"] == count_llama_params(mc)
    assert g["Embedding"] == g["Softmax"] == 1600 and g["LayerNorm"] == 5 * 16
    assert g["FFN"] == 2 * (3 * 16 * 24 + 2 * 3 * (16 + 24))
    assert g["Attn"] == 2 * (16 * 16 + 2 * 16 * 8 + 16 * 16 + 2 * ((16 + 16) + 2 * (16 + 8)))
    assert g["Adapters"] == 2 * (2 * ((16 + 16) + 2 * (16 + 8)) + 2 * 3 * (16 + 24))
    assert g["nonembedding"] == g["total"] - 3200


def test_staged_extraction_equals_the_whole_model(data_root):
    c = run_config()
    mc = LlamaConfig.uniform(vocab_size=512, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, attn_lora_rank=2, ffn_lora_rank=2)
    params = FAMILY.init_params(mc, 0)
    batch = FAMILY.make_batch(c)
    staged = extract_proxy_inputs(FAMILY, mc, params, batch, 64, 0, staged=True)
    whole = extract_proxy_inputs(FAMILY, mc, params, batch, 64, 0, staged=False)
    for name in whole.values:
        np.testing.assert_array_equal(staged.counts[name], whole.counts[name])
        np.testing.assert_allclose(staged.values[name], whole.values[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer_by_layer", [True, False])
def test_fisher_sees_every_llama_linear_layer(layer_by_layer):
    """LLaMA's projections are LoraLinear, not nn.Dense: Fisher must still hook all 7 per layer
    (before, it found none and scored NaN)."""
    from lpzero_jax.proxies.base import ArchContext
    from lpzero_jax.proxies.resolve import resolve_proxies

    config = LlamaConfig.uniform(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2)
    arch = Arch(arch_id="a", config=config.to_dict(), score=0.0)
    batch = {"input_ids": np.random.default_rng(0).integers(0, 64, (2, 16)).astype(np.int32)}
    ctx = ArchContext(FAMILY, arch, run_config(), batch, layer_by_layer=layer_by_layer)
    fisher = ctx.linear_fisher()
    assert len(fisher) == 14
    assert {k[-1] for k in fisher} == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                       "down_proj"}
    value = resolve_proxies("fisher")["fisher"](ctx)
    assert np.isfinite(value) and value > 0
