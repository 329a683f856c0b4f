"""`row_nll`: the blocked softmax cross-entropy equals the dense form in value and in all three
gradients, with padded last blocks, several blocks and no bias."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lpzero_jax.models import softmax


def dense(h, table, bias, t):
    logits = h @ table.T + (0.0 if bias is None else bias)
    return jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, t[:, None], 1)[:, 0]


@pytest.mark.parametrize("n,v,d,block,with_bias", [
    (37, 53, 8, 1 << 22, True),   # one block, padded rows
    (101, 61, 16, 8 * 61, True),  # 13 blocks of 8 rows, the last one padded
    (64, 40, 4, 16 * 40, False),  # no bias, 4 full blocks
])
def test_row_nll_equals_dense_form(monkeypatch, n, v, d, block, with_bias):
    monkeypatch.setattr(softmax, "BLOCK_ELEMENTS", block)
    rng = np.random.default_rng(n)
    h = jnp.asarray(rng.standard_normal((n, d)), jnp.float32)
    table = jnp.asarray(rng.standard_normal((v, d)) * 0.5, jnp.float32)
    bias = jnp.asarray(rng.standard_normal(v) * 0.5, jnp.float32) if with_bias else None
    t = jnp.asarray(rng.integers(0, v, n), jnp.int32)
    w = jnp.asarray(rng.uniform(0.5, 1.5, n), jnp.float32)  # a cotangent that differs per row

    def objective(f):
        def loss(h, table, bias):
            return jnp.sum(w * f(h, table, bias, t))
        return loss

    np.testing.assert_allclose(softmax.row_nll(h, table, bias, t), dense(h, table, bias, t),
                               rtol=1e-5)
    args = (h, table) if bias is None else (h, table, bias)
    argnums = (0, 1) if bias is None else (0, 1, 2)
    got = jax.grad(lambda *a: objective(softmax.row_nll)(*(a + (None,) * (3 - len(a)))),
                   argnums=argnums)(*args)
    want = jax.grad(lambda *a: objective(dense)(*(a + (None,) * (3 - len(a)))),
                    argnums=argnums)(*args)
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-6)
    # the hidden-state gradient alone (the compact head's case) is the same row scaling
    gh = jax.jit(jax.grad(lambda h: objective(softmax.row_nll)(h, table, bias)))(h)
    np.testing.assert_allclose(gh, want[0], rtol=1e-4, atol=1e-6)


def test_block_rows():
    assert softmax.block_rows(3072, 20003, 1 << 22) == 128
    assert softmax.block_rows(10, 20003, 1 << 22) == 16  # at most n rounded up to 8
    assert softmax.block_rows(3072, 1 << 30, 1 << 22) == 8  # at least 8


def test_bench_counts_the_flops_of_every_block(monkeypatch):
    """XLA's cost analysis counts a loop body once; the stage timer counts the blocks unrolled,
    so the head's FLOPs are those of its matmuls (2 per block: logits and the unit gradient)."""
    from lpzero_jax.engine import timing

    monkeypatch.setattr(softmax, "BLOCK_ELEMENTS", 16 * 512)  # 16 blocks of 16 rows
    n, v, d = 256, 512, 16
    rng = np.random.default_rng(0)
    h = jnp.asarray(rng.standard_normal((n, d)), jnp.float32)
    table = jnp.asarray(rng.standard_normal((v, d)), jnp.float32)
    t = jnp.asarray(rng.integers(0, v, n), jnp.int32)
    fn = jax.jit(jax.value_and_grad(lambda h: jnp.mean(softmax.row_nll(h, table, None, t))))
    rolled = fn.lower(h).cost_analysis()["flops"]
    timer = timing.StageTimer()
    value, grad = timer("head", fn, h)
    matmuls = 2 * (2 * n * v * d)
    assert rolled < matmuls / 4  # what the loop's own count would say
    assert matmuls <= timer.flops["head"] <= 2 * matmuls
    np.testing.assert_allclose(value, jnp.mean(dense(h, table, None, t)), rtol=1e-5)
    assert timer.seconds["head"] > 0
