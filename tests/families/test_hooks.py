"""Family hooks the proxies use: weight roles (FlexiBERT and the default names) and head weights."""

from lpzero_jax.families.base import Family


class _Named(Family):
    name = "named"

    def is_proxy_weight(self, path):
        return path[-1] == "kernel"


def test_default_roles_for_gpt2_and_llama_names():
    f = _Named()
    assert f.weight_role(("params", "h_0", "attn", "c_attn", "kernel")) == "attention"
    assert f.weight_role(("params", "h_0", "attn", "c_proj", "kernel")) == "attention_output"
    assert f.weight_role(("params", "h_0", "mlp", "c_proj", "kernel")) == "ffn"
    assert f.weight_role(("params", "layers_1", "self_attn", "q_proj", "kernel")) == "attention"
    assert f.weight_role(("params", "layers_1", "self_attn", "o_proj", "kernel")) == "attention_output"
    assert f.weight_role(("params", "layers_1", "mlp", "gate_proj", "kernel")) == "ffn"
    assert f.weight_role(("params", "wte", "embedding")) is None
    assert f.is_head_projection(("params", "h_0", "attn", "c_attn", "kernel"))


def test_flexibert_roles():
    from lpzero_jax.families import get_family

    f = get_family("flexibert")
    p = ("params", "layer_2")
    assert f.weight_role(p + ("operation", "query", "kernel")) == "attention"
    assert f.weight_role(p + ("operation_output", "dense", "kernel")) == "attention_output"
    assert f.weight_role(p + ("intermediate", "dense_in", "kernel")) == "ffn"
    assert f.weight_role(p + ("output", "dense", "kernel")) == "ffn"
    assert f.weight_role(p + ("operation", "query", "bias")) is None
    assert f.weight_role(("params", "embeddings_project", "kernel")) is None
    assert f.is_head_projection(p + ("operation", "key", "kernel"))
    assert not f.is_head_projection(p + ("operation", "conv_kernel", "kernel"))
    assert not f.is_head_projection(p + ("operation_output", "dense", "kernel"))


def test_declared_hooks_have_defaults_and_gpt2_init_rule_gives_init_params_values():
    """Every family answers the declared hooks (no probing): the Synflow objective by name, an init
    rule that takes the architecture (GPT-2's c_proj std depends on n_layer), a supernet or a clear
    error; a proxy's needs come with its registration."""
    import numpy as np
    import pytest
    from flax import traverse_util

    from lpzero_jax.errors import ConfigError
    from lpzero_jax.families import get_family
    from lpzero_jax.models.init import leaf_rng
    from lpzero_jax.proxies import PROXIES
    from tests.models.test_gpt2_flex import small_config

    assert Family.synflow_objective == "proxy_loss" and get_family("gpt2").synflow_objective == "output_sum"
    assert _Named().init_rule(None, ("params", "x", "kernel"), (2, 2), np.random.default_rng(0)) is None
    gpt2 = get_family("gpt2")
    mc = small_config()
    params = traverse_util.flatten_dict(gpt2.init_params(mc, 3))
    path = next(p for p in params if "c_proj" in p and p[-1] == "kernel")
    value = gpt2.init_rule(mc, path, params[path].shape, leaf_rng(3, path))
    np.testing.assert_array_equal(value, np.asarray(params[path]))
    with pytest.raises(ConfigError, match="no supernet"):
        gpt2.supernet(None)
    assert PROXIES.get("grasp").needs_hvp and not PROXIES.get("snip").needs_hvp
