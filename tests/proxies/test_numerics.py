"""The numeric kernels behind the proxies, on inputs with known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree


def test_hessian_vector_product_matches_finite_differences():
    from lpzero_jax.proxies.whole_model import hessian_vector_product

    jax.config.update("jax_enable_x64", True)
    try:
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.standard_normal((5, 4)))
        w = {"a": jnp.asarray(rng.standard_normal((4, 3))), "b": jnp.asarray(rng.standard_normal(3))}
        v = {"a": jnp.asarray(rng.standard_normal((4, 3))), "b": jnp.asarray(rng.standard_normal(3))}

        def f(p):
            return jnp.sum(jnp.tanh(x @ p["a"] + p["b"]) ** 2) + jnp.sum(p["a"] ** 3)

        hv = hessian_vector_product(f, w, v)
        eps = 1e-5
        grad = jax.grad(f)
        plus = grad(jax.tree_util.tree_map(lambda a, b: a + eps * b, w, v))
        minus = grad(jax.tree_util.tree_map(lambda a, b: a - eps * b, w, v))
        for k in w:
            fd = (plus[k] - minus[k]) / (2 * eps)
            np.testing.assert_allclose(hv[k], fd, rtol=1e-6, atol=1e-8)
        # and against the explicit Hessian of the flattened function
        flat, unravel = ravel_pytree(w)
        h = jax.hessian(lambda z: f(unravel(z)))(flat)
        np.testing.assert_allclose(ravel_pytree(hv)[0],
                                   h @ ravel_pytree(v)[0], rtol=1e-9)
    finally:
        jax.config.update("jax_enable_x64", False)


def _samples_with_variances(variances, n_samples=64, dim=16, seed=0):
    """[n_samples, dim] whose sample covariance has exactly these non-zero eigenvalue shares."""
    rng = np.random.default_rng(seed)
    k = len(variances)
    centred = rng.standard_normal((n_samples, k))
    centred -= centred.mean(axis=0)
    q, _ = np.linalg.qr(centred)  # orthonormal, zero-mean columns
    r, _ = np.linalg.qr(rng.standard_normal((dim, k)))
    return (q * np.sqrt(variances)) @ r.T + rng.standard_normal(dim)  # plus a constant offset


@pytest.mark.parametrize("eta, expected", [(0.99, 4), (0.95, 3), (0.5, 1), (0.999, 5)])
def test_pca_dims_on_a_known_spectrum(eta, expected):
    from lpzero_jax.proxies.pca import pca_dims

    x = _samples_with_variances([0.6, 0.3, 0.085, 0.01, 0.005])
    assert int(pca_dims(jnp.asarray(x, jnp.float32), eta)) == expected
    batch = jnp.stack([jnp.asarray(x, jnp.float32), jnp.zeros_like(jnp.asarray(x, jnp.float32))])
    np.testing.assert_array_equal(pca_dims(batch, eta), [expected, 0])  # no variance: 0 dims


def test_nwot_kernel_counts_agreements():
    from lpzero_jax.proxies.activation_distance import agreement_kernel, nwot_score

    rng = np.random.default_rng(0)
    a1 = rng.standard_normal((4, 3, 5)).astype(np.float32)
    a2 = rng.standard_normal((4, 7)).astype(np.float32)
    codes = np.concatenate([(a1.reshape(4, -1) > 0), (a2 > 0)], axis=1)
    expected = (codes[:, None, :] == codes[None, :, :]).sum(-1)
    np.testing.assert_array_equal(agreement_kernel([jnp.asarray(a1), jnp.asarray(a2)]), expected)
    assert nwot_score([jnp.asarray(a1), jnp.asarray(a2)]) == pytest.approx(
        np.linalg.slogdet(expected.astype(np.float64))[1], rel=1e-6)
    same = jnp.ones((3, 4))  # identical codes: singular kernel, not rankable
    assert np.isnan(nwot_score([same]))


def test_jacobian_cosine_extremes():
    from lpzero_jax.proxies.jacobian_cosine import jacobian_cosine_score

    same = jnp.ones((4, 3, 2))
    assert jacobian_cosine_score(same) == pytest.approx(0.0, abs=1e-6)
    orthogonal = jnp.eye(4).reshape(4, 2, 2)
    assert jacobian_cosine_score(orthogonal) == pytest.approx(1.0)
    assert np.isnan(jacobian_cosine_score(jnp.ones((1, 5))))


def test_eznas_term_on_a_hadamard_sign_matrix():
    from lpzero_jax.proxies.eznas import eznas_term

    h = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], np.float32)
    # s^T s = 4 I, log det = 4 log 4, sigmoid of it
    expected = 1.0 / (1.0 + np.exp(-4 * np.log(4.0)))
    assert float(eznas_term(jnp.asarray(0.01 * h))) == pytest.approx(expected, rel=1e-6)
    assert float(eznas_term(jnp.ones((4, 4)))) == pytest.approx(0.0, abs=1e-7)  # rank 1


def test_singular_values_and_nuclear_norm():
    from lpzero_jax.proxies.common import nuclear_norm, singular_values

    rng = np.random.default_rng(0)
    m = rng.standard_normal((7, 3))
    np.testing.assert_allclose(singular_values(m, np.float64), np.linalg.svd(m, compute_uv=False))
    assert nuclear_norm(m.T) == pytest.approx(np.linalg.svd(m, compute_uv=False).sum(), rel=1e-5)


def test_eznas_term_follows_the_reference_layout():
    from lpzero_jax.proxies.eznas import eznas_term

    g = jnp.asarray(np.random.default_rng(0).standard_normal((3, 6)))  # Flax kernel [in=3, out=6]
    assert float(eznas_term(g, "out_in")) == pytest.approx(0.0, abs=1e-7)  # 6 x 6 Gram of rank 3
    assert float(eznas_term(g, "in_out")) > 0.5  # 3 x 3 Gram, full rank


def test_reference_activation_distance_sums_the_kernel_entries():
    """sum_c p_c^2 + (S - p_c)^2 equals the reference's nansum(x x^T + (1-x)(1-x)^T)."""
    from lpzero_jax.proxies.activation_distance_reference import kernel_entry_sum

    y = np.random.default_rng(3).standard_normal((7, 2, 5))  # S=7 tokens, units over 2 x 5
    x = (y.reshape(7, -1) > 0).astype(np.float64)
    explicit = np.sum(x @ x.T + (1 - x) @ (1 - x).T)
    assert float(kernel_entry_sum(jnp.asarray(y, jnp.float32))) == explicit
    assert float(kernel_entry_sum(jnp.ones((4, 3)))) == 4 * 4 * 3  # every pair agrees everywhere


def test_reference_jacobian_cosine_compares_embedding_columns():
    """The reference reading of Jacobian Cosine compares the D columns of the position-table
    gradient: orthogonal columns score 1, parallel ones 0; the reference's halving only rescales."""
    from lpzero_jax.proxies.jacobian_cosine import jacobian_cosine_score

    table_grad = np.zeros((6, 3), np.float32)
    table_grad[[0, 2, 4], [0, 1, 2]] = [1.0, -2.0, 0.5]  # three orthogonal columns
    assert jacobian_cosine_score(jnp.transpose(jnp.asarray(table_grad))) == pytest.approx(1.0)
    parallel = np.outer(np.arange(1.0, 7.0), [1.0, -3.0, 2.0]).astype(np.float32)
    assert jacobian_cosine_score(jnp.transpose(jnp.asarray(parallel))) == pytest.approx(0.0,
                                                                                         abs=1e-6)


def test_reference_lpzero_gpt2_term_softmaxes_the_reference_axis():
    """softmax over dim 0 of the reference layout: Conv1D [in, out] -> Flax axis 0, nn.Linear
    [out, in] -> Flax axis 1; each softmax column sums to 1, so a constant G gives 1/len^2."""
    from lpzero_jax.proxies.lpzero_gpt2_reference import reference_genotype_term

    w = jnp.full((4, 2), 0.5)
    g = jnp.zeros((4, 2))
    assert float(reference_genotype_term(w, g, "in_out")) == pytest.approx(0.25 + 1 / 16)
    assert float(reference_genotype_term(w, g, "out_in")) == pytest.approx(0.25 + 1 / 4)


def test_proxies_run_with_single_threaded_blas():
    """Inside `single_threaded_blas` (every registered proxy runs in it) each BLAS library,
    SciPy's included (JAX's CPU LAPACK calls), has one thread; outside, what it had."""
    from threadpoolctl import threadpool_info

    from lpzero_jax.proxies.common import single_threaded_blas

    with single_threaded_blas():
        inside = [d for d in threadpool_info() if d["user_api"] == "blas"]
    assert len(inside) >= 2 and all(d["num_threads"] == 1 for d in inside)  # NumPy's and SciPy's
    outside = {d["filepath"]: d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"}
    assert all(outside[d["filepath"]] >= 1 for d in inside)


def test_host_sum_matches_the_per_weight_sum():
    from lpzero_jax.proxies.common import host_sum

    rng = np.random.default_rng(0)
    w = [jnp.asarray(rng.standard_normal(s), jnp.float32) for s in ((3, 5), (7, 2))]
    g = [rng.standard_normal(s).astype(np.float32) for s in ((3, 5), (7, 2))]
    expected = sum(float(jnp.sum(jnp.abs(a * b))) for a, b in zip(w, g))
    assert host_sum(lambda a, b: np.sum(np.abs(a * b)), w, g) == pytest.approx(expected, rel=1e-6)
    assert host_sum(lambda a, tag: np.sum(a) * (tag == "x"), w, ["x", "y"]) == pytest.approx(
        float(jnp.sum(w[0])), rel=1e-6)  # non-array items pass through
    assert np.isnan(host_sum(np.sum, []))  # not applicable
