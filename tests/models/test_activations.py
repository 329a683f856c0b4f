"""`activations.gelu`: jax.nn.gelu's values, and its first and second derivatives in both forms
(tanh approximation for GPT-2, exact erf for FlexiBERT), in reverse and forward mode."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lpzero_jax.models.activations import gelu, gelu_derivative


@pytest.mark.parametrize("approximate", [True, False])
def test_gelu_equals_jax_in_value_and_derivatives(approximate):
    x = jnp.linspace(-6.0, 6.0, 241, dtype=jnp.float32)
    ref = lambda z: jax.nn.gelu(z, approximate=approximate)
    ours = lambda z: gelu(z, approximate)
    np.testing.assert_array_equal(ours(x), ref(x))
    w = jnp.cos(x)  # a cotangent that varies
    np.testing.assert_allclose(jax.grad(lambda z: jnp.sum(w * ours(z)))(x),
                               jax.grad(lambda z: jnp.sum(w * ref(z)))(x), rtol=1e-5, atol=3e-6)
    np.testing.assert_allclose(gelu_derivative(x, approximate),
                               jax.vmap(jax.grad(ref))(x), rtol=1e-5, atol=3e-6)
    # forward mode and a Hessian-vector product (reverse over forward) still work
    np.testing.assert_allclose(jax.jvp(ours, (x,), (w,))[1], jax.jvp(ref, (x,), (w,))[1],
                               rtol=1e-5, atol=3e-6)
    hvp = lambda f: jax.jvp(jax.grad(lambda z: jnp.sum(f(z) ** 2)), (x,), (w,))[1]
    np.testing.assert_allclose(hvp(ours), hvp(ref), rtol=1e-4, atol=1e-5)


def test_gelu_backward_keeps_one_tensor():
    """The linearisation saves gelu'(x) alone (the point of the custom rule), where autodiff of
    jax.nn.gelu saves several tensors of the input's size."""
    x = jnp.ones((64, 32), jnp.float32)

    def saved(f):
        _, lin = jax.linearize(f, x)
        return sum(1 for leaf in jax.tree_util.tree_leaves(lin) if getattr(leaf, "shape", None) == x.shape)

    assert saved(lambda z: gelu(z, True)) == 1
    assert saved(lambda z: jax.nn.gelu(z, approximate=True)) > 1
