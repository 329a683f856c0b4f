"""Loading HF-named safetensors checkpoints (written here with safetensors) into the Flax LLaMA."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import save_file

from lpzero_jax.families import get_family
from lpzero_jax.models.llama import Llama, LlamaConfig
from lpzero_jax.models.llama_checkpoint import (CheckpointError, hf_name, load_llama_checkpoint,
                                                params_from_hf, read_safetensors)
from tests.models import llama_reference as ref

FAMILY = get_family("llama")
HF_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 61,
             "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-6,
             "rope_theta": 10000.0, "tie_word_embeddings": False}


def write_checkpoint(folder, weights, config=HF_CONFIG, sharded=False):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "config.json", "w") as f:
        json.dump(config, f)
    if not sharded:
        save_file(weights, str(folder / "model.safetensors"))
        return
    names = sorted(weights)
    half = len(names) // 2
    parts = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    for file, keys in parts.items():
        save_file({k: weights[k] for k in keys}, str(folder / file))
    with open(folder / "model.safetensors.index.json", "w") as f:
        json.dump({"weight_map": {k: file for file, keys in parts.items() for k in keys}}, f)


def forward(config, params, ids):
    model = Llama(config)
    return np.asarray(model.apply(params, model.apply(params, ids, method=model.embed)))


@pytest.mark.parametrize("sharded", [False, True])
def test_checkpoint_logits_match_reference(tmp_path, sharded):
    w = ref.random_hf_weights(np.random.default_rng(0), 61, 16, 24, 2, 4, 2)
    w["model.layers.0.self_attn.rotary_emb.inv_freq"] = np.ones(2, np.float32)  # old HF buffer: ignored
    write_checkpoint(tmp_path / "ckpt", w, sharded=sharded)
    config, params = load_llama_checkpoint(tmp_path / "ckpt", FAMILY)
    assert config == LlamaConfig.from_hf(HF_CONFIG)
    np.testing.assert_array_equal(params["params"]["layer_1"]["mlp"]["down_proj"]["kernel"],
                                  w["model.layers.1.mlp.down_proj.weight"].T)
    ids = np.random.default_rng(1).integers(0, 61, (1, 7))
    np.testing.assert_allclose(forward(config, params, jnp.asarray(ids, jnp.int32))[0],
                               ref.llama_logits(w, ids[0], 2, 4, 2), rtol=2e-4, atol=2e-4)


def test_adapters_from_peft_file_and_missing_adapters_from_init(tmp_path):
    rng = np.random.default_rng(3)
    w = ref.random_hf_weights(rng, 61, 16, 24, 2, 4, 2)
    write_checkpoint(tmp_path / "ckpt", w)
    # an adapter file with q/k/v/gate/up adapters of rank 4 for both layers (peft naming)
    full = ref.random_hf_weights(np.random.default_rng(3), 61, 16, 24, 2, 4, 2, rank=4)
    adapters = {"base_model.model." + k: v for k, v in full.items() if "lora_" in k}
    save_file(adapters, str(tmp_path / "adapter_model.safetensors"))
    config, params = load_llama_checkpoint(tmp_path / "ckpt", FAMILY, 4, 4, adapter_path=tmp_path)
    ids = np.arange(9) % 61
    merged = dict(w, **{k[len("base_model.model."):]: v for k, v in adapters.items()})
    np.testing.assert_allclose(forward(config, params, jnp.asarray(ids[None], jnp.int32))[0],
                               ref.llama_logits(merged, ids, 2, 4, 2), rtol=2e-4, atol=2e-4)
    # without the adapter file: adapters initialised as the family does (B = 0: base model output)
    config, params = load_llama_checkpoint(tmp_path / "ckpt", FAMILY, 4, 4, seed=7)
    init = FAMILY.init_params(config, 7)
    q = params["params"]["layer_0"]["self_attn"]["q_proj"]
    np.testing.assert_array_equal(q["lora_a"], init["params"]["layer_0"]["self_attn"]["q_proj"]["lora_a"])
    assert float(np.abs(q["lora_b"]).sum()) == 0
    np.testing.assert_allclose(forward(config, params, jnp.asarray(ids[None], jnp.int32))[0],
                               ref.llama_logits(w, ids, 2, 4, 2), rtol=2e-4, atol=2e-4)


def test_checkpoint_errors(tmp_path):
    w = ref.random_hf_weights(np.random.default_rng(0), 61, 16, 24, 2, 4, 2)
    shapes = FAMILY.param_shapes(LlamaConfig.from_hf(HF_CONFIG))
    missing = {k: v for k, v in w.items() if k != "model.norm.weight"}
    with pytest.raises(CheckpointError, match="lacks 1 tensors.*model.norm.weight"):
        params_from_hf(shapes, missing)
    with pytest.raises(CheckpointError, match="does not use.*model.layers.2"):
        params_from_hf(shapes, dict(w, **{"model.layers.2.mlp.up_proj.weight": np.zeros((24, 16))}))
    bad = dict(w, **{"model.layers.0.mlp.up_proj.weight": np.zeros((16, 24), np.float32)})
    with pytest.raises(CheckpointError, match="up_proj.weight: checkpoint shape"):
        params_from_hf(shapes, bad)
    with pytest.raises(FileNotFoundError):
        read_safetensors(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_llama_checkpoint(tmp_path, FAMILY)


def test_hf_names():
    assert hf_name(("layer_3", "self_attn", "q_proj", "kernel")) == ("model.layers.3.self_attn.q_proj.weight", True)
    assert hf_name(("layer_0", "mlp", "up_proj", "lora_b")) == ("model.layers.0.mlp.up_proj.lora_B.weight", True)
    assert hf_name(("layer_1", "input_layernorm", "scale")) == ("model.layers.1.input_layernorm.weight", False)
    assert hf_name(("lm_head", "kernel")) == ("lm_head.weight", True)
    with pytest.raises(KeyError):
        hf_name(("decoder", "kernel"))
