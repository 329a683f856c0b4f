"""Softmax cross-entropy over a large vocabulary, a block of rows at a time.

Autodiff of `logsumexp(h @ table.T + bias) - logit[target]` keeps the [N, V] logits and their
softmax as residuals: with V = 30-50 k and N = 2-3 k rows that is several 250-300 MB arrays per
call, each freshly allocated (page faults) and passed over several times, so on a CPU the LM head
ran at a tenth of the matmul rate. `row_nll` computes the same values in blocks of rows small
enough to stay in cache and keeps only what the gradients need: the hidden-state gradient per unit
cotangent, (softmax - onehot) @ table [N, D], is formed in the forward block itself, so the
gradient with respect to the hidden states is a row scaling; the table and bias gradients are
recomputed block by block, and only when something reads them (XLA drops them otherwise).
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import jax
import jax.numpy as jnp

BLOCK_ELEMENTS = 1 << 22  # logits per block: 16 MiB of float32, in L3 (2^19 to 2^23 measured)
_UNROLL = [False]  # unrolled blocks: the same operations, for FLOP counting only (`unrolled`)


@contextlib.contextmanager
def unrolled() -> Iterator[None]:
    """Within it, `row_nll` traces its row blocks unrolled instead of as a loop. XLA's cost
    analysis counts a loop body once, so `bench` counts FLOPs on programs traced in here (the same
    operations; the loop is what runs: unrolled, the head took 1.5-1.8x longer)."""
    before = _UNROLL[0]
    _UNROLL[0] = True
    try:
        yield
    finally:
        _UNROLL[0] = before


def _blocks(x: jax.Array, rows: int):
    """x [N, ...] zero-padded to a multiple of rows and reshaped [C, rows, ...]."""
    n = x.shape[0]
    c = -(-n // rows)
    pad = [(0, c * rows - n)] + [(0, 0)] * (x.ndim - 1)
    return jnp.pad(x, pad).reshape((c, rows) + x.shape[1:])


def block_rows(n: int, vocab: int, block_elements: Optional[int] = None) -> int:
    """Rows per block: the largest power of two with rows * vocab <= block_elements (default
    BLOCK_ELEMENTS; at least 8), at most n rounded up to a multiple of 8."""
    block_elements = BLOCK_ELEMENTS if block_elements is None else block_elements
    rows = 8
    while rows * 2 * vocab <= block_elements:
        rows *= 2
    return min(rows, max(8, -(-n // 8) * 8))


@jax.custom_vjp
def _row_nll(hidden, table, bias, target):
    nll, _, _ = _forward(hidden, table, bias, target)
    return nll


def _forward(hidden, table, bias, target):
    n, v = hidden.shape[0], table.shape[0]
    rows = block_rows(n, v)

    def block(_, xs):
        h, t = xs
        logits = h @ table.T + bias
        m = jnp.max(logits, axis=-1, keepdims=True)
        e = jnp.exp(logits - m)
        s = jnp.sum(e, axis=-1, keepdims=True)
        lse = (m + jnp.log(s))[:, 0]
        picked = jnp.take_along_axis(logits, t[:, None], axis=1)[:, 0]
        unit_grad = (e / s) @ table - table[t]  # d nll_row / d h_row
        return None, (lse - picked, unit_grad, lse)

    _, (nll, unit_grad, lse) = jax.lax.scan(block, None, (_blocks(hidden, rows), _blocks(target, rows)),
                                            unroll=_UNROLL[0])
    d = hidden.shape[1]
    return nll.reshape(-1)[:n], unit_grad.reshape(-1, d)[:n], lse.reshape(-1)[:n]


def _fwd(hidden, table, bias, target):
    nll, unit_grad, lse = _forward(hidden, table, bias, target)
    return nll, (hidden, table, bias, target, unit_grad, lse)


def _bwd(res, g):
    hidden, table, bias, target, unit_grad, lse = res
    d_hidden = g[:, None] * unit_grad
    rows = block_rows(hidden.shape[0], table.shape[0])

    def block(acc, xs):  # padded rows carry g = 0
        h, t, l, gb = xs
        p = jnp.exp(h @ table.T + bias - l[:, None]) * gb[:, None]
        d_table = (acc[0] + p.T @ h).at[t].add(-gb[:, None] * h)  # (softmax - onehot)^T h
        d_bias = (acc[1] + jnp.sum(p, axis=0)).at[t].add(-gb)
        return (d_table, d_bias), None

    (d_table, d_bias), _ = jax.lax.scan(
        block, (jnp.zeros_like(table), jnp.zeros_like(bias)),
        (_blocks(hidden, rows), _blocks(target, rows), _blocks(lse, rows), _blocks(g, rows)))
    return d_hidden, d_table, d_bias, None


_row_nll.defvjp(_fwd, _bwd)


def row_nll(hidden: jax.Array, table: jax.Array, bias: Optional[jax.Array],
            target: jax.Array) -> jax.Array:
    """-log softmax(hidden @ table.T + bias)[target] per row: hidden [N, D], table [V, D],
    bias [V] or None, target [N] int -> [N]. Equal to the dense form within float rounding;
    differentiable in hidden, table and bias (see the module docstring)."""
    hidden, table = jnp.asarray(hidden), jnp.asarray(table)
    bias = jnp.zeros((table.shape[0],), hidden.dtype) if bias is None else jnp.asarray(bias)
    return _row_nll(hidden, table, bias, jnp.asarray(target, jnp.int32))
