"""LoNAS elastic space: exact subnet parameter counts, and slicing the supernet = the subnet."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lpzero_jax.families import get_family
from lpzero_jax.models.init import count_params
from lpzero_jax.models.llama import Llama, LlamaConfig, count_llama_params
from lpzero_jax.models.lonas import (LonasSpace, as_choice, choice_array, elastic_widths,
                                     extract_subnet_params, lonas_llama7b_space, without_adapters)

FAMILY = get_family("llama")


def small_space(**kw):
    supernet = LlamaConfig.uniform(vocab_size=53, hidden_size=16, intermediate_size=32,
                                   num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                                   attn_lora_rank=4, ffn_lora_rank=4)
    return LonasSpace(supernet, rank_choices=(4, 3), **kw)


def test_lonas_widths_of_llama7b():
    assert elastic_widths(11008, (1.0, 0.875, 0.75, 0.625, 0.5)) == (11008, 9632, 8256, 6880, 5504)
    assert elastic_widths(512, (1.0, 0.875, 0.75, 0.625, 0.5)) == (512, 448, 384, 320, 256)
    with pytest.raises(ValueError, match="not distinct"):
        elastic_widths(4, (1.0, 0.875, 0.75))


def test_llama7b_space_counts():
    s = lonas_llama7b_space()
    assert s.size() == 2 ** 32 * 5 ** 32
    assert s.num_params(s.max_choice(), adapters=False) == 6_738_415_616
    # adapters: per layer 3 x 32 x (4096 + 4096) (q, k, v) + 2 x 32 x (4096 + 11008) (gate, up)
    assert s.num_params(s.max_choice()) == 6_738_415_616 + 32 * (3 * 32 * 8192 + 2 * 32 * 15104)
    # the smallest subnet drops half of every FFN: 32 layers x 3 x 4096 x 5504 fewer base weights
    assert s.num_params(s.min_choice(), adapters=False) == 6_738_415_616 - 32 * 3 * 4096 * 5504
    medium = s.values_of(s.medium_choice())[0]
    assert medium == {"lora_rank": 32, "ffn_width": 8256}  # middle of [32, 28] is index 0


@pytest.mark.parametrize("separate", [False, True])
def test_formula_matches_shapes_for_random_subnets(separate):
    s = small_space(separate_ffn_rank=separate)
    rng = np.random.default_rng(0)
    choices = [s.max_choice(), s.min_choice()] + [s.random_choice(rng) for _ in range(6)]
    formula = s.params_formula(np.stack([choice_array(c) for c in choices]))
    for c, f in zip(choices, formula):
        shapes = FAMILY.param_shapes(s.config_of(c))
        assert count_params(shapes) == s.num_params(c) == f
        assert s.num_params(c, adapters=False) == count_llama_params(without_adapters(s.config_of(c)))
    assert s.size() == (2 * 5 * (2 if separate else 1)) ** 3


def test_config_of_and_values():
    s = small_space(separate_ffn_rank=True)
    choice = ((0, 4, 1), (1, 0, 0), (1, 2, 1))
    c = s.config_of(choice)
    assert [l.intermediate_size for l in c.layers] == [16, 32, 24]
    assert [(l.attn_lora_rank, l.ffn_lora_rank) for l in c.layers] == [(4, 3), (3, 4), (3, 3)]
    assert s.values_of(choice)[0] == {"lora_rank": 4, "ffn_width": 16, "ffn_lora_rank": 3}
    with pytest.raises(ValueError, match="out of range"):
        s.validate(((0, 5, 0), (0, 0, 0), (0, 0, 0)))
    with pytest.raises(ValueError, match="shape"):
        s.validate(((0, 0), (0, 0), (0, 0)))
    with pytest.raises(ValueError, match="adapter ranks"):
        LonasSpace(dataclasses.replace(s.supernet, layers=tuple(
            dataclasses.replace(l, attn_lora_rank=8) for l in s.supernet.layers)), rank_choices=(4, 3))


def masked_supernet_params(params, space, choice):
    """The supernet's own weights with the channels/ranks the subnet drops set to zero."""
    p = jax.tree_util.tree_map(np.array, params)
    for i, v in enumerate(space.values_of(choice)):
        layer = p["params"][f"layer_{i}"]
        width, r_a, r_f = v["ffn_width"], v["lora_rank"], v.get("ffn_lora_rank", v["lora_rank"])
        layer["mlp"]["down_proj"]["kernel"][width:, :] = 0  # the dropped FFN channels contribute 0
        for name in ("q_proj", "k_proj", "v_proj"):
            layer["self_attn"][name]["lora_a"][:, r_a:] = 0
        for name in ("gate_proj", "up_proj"):
            layer["mlp"][name]["lora_a"][:, r_f:] = 0
    return p


def test_sliced_subnet_equals_masked_supernet():
    s = small_space()
    params = FAMILY.init_params(s.supernet, 0)
    # LoRA B is zero at init; give it values so that rank cuts change the output
    params = jax.tree_util.tree_map_with_path(
        lambda path, x: x + 0.3 * jax.random.normal(jax.random.PRNGKey(len(path)), x.shape)
        if "lora_b" in jax.tree_util.keystr(path) else x, params)
    ids = jnp.asarray(np.random.default_rng(0).integers(0, 53, (2, 8)), jnp.int32)
    choice = ((1, 4), (0, 2), (1, 1))
    sub = s.config_of(choice)
    sub_params = extract_subnet_params(params, FAMILY.param_shapes(sub))
    assert count_params(sub_params) == s.num_params(choice)
    q = sub_params["params"]["layer_0"]["self_attn"]["q_proj"]
    np.testing.assert_array_equal(q["lora_a"], params["params"]["layer_0"]["self_attn"]["q_proj"]["lora_a"][:, :3])
    np.testing.assert_array_equal(sub_params["params"]["layer_0"]["mlp"]["gate_proj"]["kernel"],
                                  params["params"]["layer_0"]["mlp"]["gate_proj"]["kernel"][:, :16])

    def logits(config, p):
        model = Llama(config)
        return np.asarray(jax.jit(lambda p, x: model.apply(p, model.apply(p, x, method=model.embed)))(p, ids))

    got = logits(sub, sub_params)
    want = logits(s.supernet, masked_supernet_params(params, s, choice))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert not np.allclose(got, logits(s.supernet, params), atol=1e-3)  # the cut does change the model


def test_extract_refuses_a_bigger_subnet():
    s = small_space()
    params = FAMILY.init_params(s.supernet, 0)
    bigger = dataclasses.replace(s.supernet, layers=tuple(
        dataclasses.replace(l, intermediate_size=40) for l in s.supernet.layers))
    with pytest.raises(ValueError, match="does not fit"):
        extract_subnet_params(params, FAMILY.param_shapes(bigger))
    deeper = dataclasses.replace(s.supernet, layers=s.supernet.layers * 2)
    with pytest.raises(KeyError, match="layer_3"):
        extract_subnet_params(params, FAMILY.param_shapes(deeper))


def test_choice_roundtrip():
    arr = np.array([[0, 1], [1, 4]])
    assert as_choice(arr) == ((0, 1), (1, 4))
    np.testing.assert_array_equal(choice_array(as_choice(arr)), arr)


def test_space_without_adapters_has_ffn_widths_only():
    """rank_choices (0,): a plain pretrained model, one rank value, subnets differ in FFN widths."""
    supernet = LlamaConfig.uniform(vocab_size=50, hidden_size=8, intermediate_size=16, num_hidden_layers=3,
                                   num_attention_heads=2)
    s = LonasSpace(supernet, rank_choices=(0,))
    assert s.num_values().tolist() == [[1, 5]] * 3 and s.size() == 5 ** 3
    c = s.config_of(s.min_choice())
    assert [(l.intermediate_size, l.attn_lora_rank, l.ffn_lora_rank) for l in c.layers] == [(8, 0, 0)] * 3
    assert s.params_formula(choice_array(s.min_choice()))[0] == count_llama_params(c)
    with pytest.raises(ValueError, match=r"\(0,\) for no adapters"):
        LonasSpace(supernet, rank_choices=(4, 0))
