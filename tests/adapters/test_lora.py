"""The super-adapter's two forms (masked supernet, merged subnet) compute the same subnet; adapters of
another shape or rank set are refused by name."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lpzero_jax.adapters.lora import (
    AdapterMismatchError,
    AdapterSpec,
    check_adapter,
    choice_masks,
    init_adapter,
    masked_params,
    merged_subnet,
)
from lpzero_jax.adapters.store import load_adapter, save_adapter
from lpzero_jax.families import get_family
from lpzero_jax.models.llama import Llama, LlamaConfig, lm_loss
from lpzero_jax.models.llama_eval import perplexity
from lpzero_jax.models.lonas import extract_subnet_params

FAMILY = get_family("llama")


def tiny_spec(ranks=(8, 6, 4), **kw) -> AdapterSpec:
    base = LlamaConfig.uniform(vocab_size=61, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                               num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, **kw)
    return AdapterSpec(base, rank_choices=ranks, width_ratios=(1.0, 0.75, 0.5), scaling=2.0)


def random_adapter(spec, seed=1):
    """An adapter with non-zero B (a fresh one is the zero delta, which would prove nothing)."""
    a = init_adapter(spec, seed)
    leaves, tree = jax.tree_util.tree_flatten(a)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return jax.tree_util.tree_unflatten(tree, [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


@pytest.fixture(scope="module")
def setup():
    spec = tiny_spec()
    base = FAMILY.init_params(spec.supernet, 0)
    ids = jnp.asarray(np.random.default_rng(0).integers(0, 61, (2, 12)), jnp.int32)
    return spec, base, random_adapter(spec), ids


def test_fresh_adapter_is_the_zero_delta(setup):
    spec, base, _, ids = setup
    a = init_adapter(spec, 0)
    assert all(float(jnp.abs(x["lora_b"]).max()) == 0.0 for l in a.values() for b in l.values() for x in b.values())
    assert float(jnp.abs(a["layer_0"]["self_attn"]["q_proj"]["lora_a"]).max()) > 0.0
    full = spec.space().max_choice()
    _, merged = merged_subnet(base, a, spec, full, FAMILY)
    np.testing.assert_array_equal(merged["params"]["layer_1"]["mlp"]["up_proj"]["kernel"],
                                  base["params"]["layer_1"]["mlp"]["up_proj"]["kernel"])


def _loss(config, params, ids):
    model = Llama(config)
    return float(lm_loss(model.apply(params, model.apply(params, ids, method=model.embed)), ids))


@pytest.mark.parametrize("which", ["max", "min", "random"])
def test_masked_equals_sliced_equals_merged(setup, which):
    spec, base, adapter, ids = setup
    space = spec.space()
    choice = {"max": space.max_choice(), "min": space.min_choice(),
              "random": space.random_choice(np.random.default_rng(3))}[which]
    width, rank = choice_masks(spec, [choice])
    masked = _loss(spec.adapted, masked_params(base, adapter, jnp.asarray(width[0]), jnp.asarray(rank[0])), ids)
    # the subnet as its own model: supernet params with the adapter, sliced to its shapes
    full = jax.tree_util.tree_map(lambda x: x, base)
    for name, layer in adapter.items():
        for block, mods in layer.items():
            for m, lora in mods.items():
                full["params"][name][block][m] = dict(full["params"][name][block][m], **lora)
    sub = space.config_of(choice)
    sliced = _loss(sub, extract_subnet_params(full, FAMILY.param_shapes(sub)), ids)
    plain, merged = merged_subnet(base, adapter, spec, choice, FAMILY)
    assert all(l.attn_lora_rank == 0 and l.ffn_lora_rank == 0 for l in plain.layers)
    via_eval = perplexity(plain, merged, np.asarray(ids))["loss"]
    assert masked == pytest.approx(sliced, rel=1e-5)
    assert via_eval == pytest.approx(sliced, rel=1e-5)
    if which != "max":  # the subnet is a different model than the supernet
        assert abs(sliced - _loss(spec.adapted, masked_params(
            base, adapter, jnp.ones_like(width[0]), jnp.ones_like(rank[0])), ids)) > 1e-4


def test_adapter_of_another_rank_set_is_refused(tmp_path, setup):
    spec, _, adapter, _ = setup
    save_adapter(tmp_path / "a", adapter, spec, {"steps_done": 0})
    loaded, meta = load_adapter(tmp_path / "a", spec)
    np.testing.assert_array_equal(loaded["layer_2"]["mlp"]["gate_proj"]["lora_b"],
                                  adapter["layer_2"]["mlp"]["gate_proj"]["lora_b"])
    with pytest.raises(AdapterMismatchError, match=r"rank_choices \[8, 6, 4\] != \[8, 4\]"):
        load_adapter(tmp_path / "a", dataclasses.replace(spec, rank_choices=(8, 4)))
    # same largest rank, same shapes, but a different width set: refused too
    with pytest.raises(AdapterMismatchError, match="width_ratios"):
        load_adapter(tmp_path / "a", dataclasses.replace(spec, width_ratios=(1.0, 0.5)))


def test_adapter_of_another_shape_is_refused(tmp_path, setup):
    spec, _, adapter, _ = setup
    bigger = tiny_spec(ranks=(16, 8))
    with pytest.raises(AdapterMismatchError, match=r"layer_0.*lora_a.*\(16, 8\).*\(16, 16\)"):
        check_adapter(adapter, bigger)
    broken = jax.tree_util.tree_map(lambda x: x, adapter)
    del broken["layer_1"]["mlp"]["up_proj"]
    with pytest.raises(AdapterMismatchError, match=r"layer_1.*up_proj.*missing"):
        check_adapter(broken, spec)
    save_adapter(tmp_path / "b", adapter, spec, {})
    (tmp_path / "b" / "adapter.msgpack").write_bytes(b"\x00" * 10)
    with pytest.raises(Exception, match="sha256 differs"):
        load_adapter(tmp_path / "b", spec)
