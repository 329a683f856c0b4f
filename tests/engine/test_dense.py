"""`engine.dense`: the compact extraction's linear layers (weight gradient as (g^T x)^T) give
autodiff's values, run only where a plain float32 nn.Dense is called, and are what the compact
layer programs trace."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lpzero_jax.engine import dense, extract, layout, staging


class TwoLayer(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = jnp.tanh(nn.Dense(24, name="a")(x))
        h = nn.Dense(5, use_bias=False, name="b")(h)
        return nn.Dense(3, dtype=jnp.bfloat16, name="c")(h).astype(jnp.float32)  # not plain


def test_matmul_equals_autodiff():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, 7, 6)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((6, 9)), jnp.float32)
    g = jnp.asarray(rng.standard_normal((2, 7, 9)), jnp.float32)
    np.testing.assert_array_equal(dense.matmul(x, w), x @ w)
    got = jax.vjp(dense.matmul, x, w)[1](g)
    want = jax.vjp(lambda x, w: x @ w, x, w)[1](g)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_lean_dense_interceptor_same_values_and_gradients():
    model = TwoLayer()
    x = jnp.asarray(np.random.default_rng(1).standard_normal((4, 8, 6)), jnp.float32)
    params = model.init(jax.random.PRNGKey(0), x)

    def loss(p, x):
        return jnp.sum(jnp.sin(model.apply(p, x)))

    with nn.intercept_methods(dense.lean_dense):
        lean = jax.value_and_grad(loss, argnums=(0, 1))(params, x)
        jaxpr = str(jax.make_jaxpr(lambda p: model.apply(p, x))(params))
    plain = jax.value_and_grad(loss, argnums=(0, 1))(params, x)
    np.testing.assert_allclose(lean[0], plain[0], rtol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(lean[1]), jax.tree_util.tree_leaves(plain[1])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert jaxpr.count("custom_vjp_call") == 2  # layers a and b; the bfloat16 layer c runs as it is


def test_compact_layer_program_uses_it_and_the_zoo_passes_do_not():
    module = nn.Dense(16)
    x = jnp.ones((2, 3, 8), jnp.float32)
    params = module.init(jax.random.PRNGKey(0), x)["params"]
    fwd = extract._build_layer_forward(module, lambda path: path[-1] == "kernel")
    lay = layout.sample_layout(module, module, x.shape, lambda path: path[-1] == "kernel", 8, 0)
    traced = str(jax.make_jaxpr(fwd.__wrapped__)(params, x, lay.positions, lay.valid))
    assert "custom_vjp_call" in traced
    plain = str(jax.make_jaxpr(lambda p, x: staging.layer_apply(module)(p, x))(params, x))
    assert "custom_vjp_call" not in plain
    # forward mode (the HVP passes) still works on the plain layer
    jax.jvp(lambda p: staging.layer_apply(module)(p, x)[0], (params,), (params,))
