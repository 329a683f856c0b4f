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
