"""The primitive operations of LPZero's proxy search space (paper Table 7): 20 unary, 4 binary.

Every proxy input tensor reaches an expression as a `Tensor`: a fixed-size sample of its values
(`values` [..., K], of which the first `n_valid` [...] are real samples, the rest zero padding) and
its full element count `count` [...]. A tensor is treated as the multiset of its values, so each unary op is either
  - element-wise (log, abslog, abs, square, exp, sqrt, relu, reciprocal, neg, sigmoid, identity),
  - a normalisation over ALL elements of the tensor (softmax, log_softmax, min-max scaling), or
  - a reduction to a scalar (Frobenius norm, normalised sum, L1 norm, mean, std).
A scalar is a Tensor with one valid sample and count 1, so ops compose freely whatever the order
(fro(s) = l1(s) = |s|, mean(s) = s, std(s) = 0, softmax(s) = 1, log_softmax(s) = 0, minmax(s) = 0).
Sums over all elements are estimated from the sample as count * mean(sample): exact when the
tensor has no more than K elements, unbiased otherwise.

Numerical guards (the defined behaviour where the math is undefined):
  log(x) = 0 for x <= 0          abslog(x) = 0 for x == 0        sqrt(x) = 0 for x < 0
  reciprocal(x) = 0 for x == 0   div(a, b) = a * reciprocal(b)   minmax = 0 when max == min
  softmax / log_softmax are shifted by the max (no overflow); exp may overflow to inf, which makes
  the candidate invalid at run time (see `rps.py`), never a crash.
The pruning op `prune` (f20) removes its whole branch: the binary op then returns the other branch.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Tuple

import jax
import jax.numpy as jnp


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Tensor:
    """A sampled tensor: values [..., K] (first n_valid real), n_valid [...] i32, count [...] f32."""

    values: jax.Array
    n_valid: jax.Array
    count: jax.Array

    @property
    def mask(self) -> jax.Array:
        return jnp.arange(self.values.shape[-1]) < self.n_valid[..., None]


def _masked_mean(t: Tensor, x: jax.Array) -> jax.Array:
    return jnp.sum(jnp.where(t.mask, x, 0.0), axis=-1) / jnp.maximum(t.n_valid, 1)


def _elementwise(fn: Callable[[jax.Array], jax.Array]) -> Callable[[Tensor], Tensor]:
    def op(t: Tensor) -> Tensor:
        return dataclasses.replace(t, values=jnp.where(t.mask, fn(t.values), 0.0))

    return op


def _scalar(t: Tensor, s: jax.Array) -> Tensor:
    """A scalar per leading index, in Tensor form (one valid sample, count 1)."""
    k = t.values.shape[-1]
    first = jnp.arange(k) == 0
    return Tensor(values=jnp.where(first, s[..., None], 0.0), n_valid=jnp.minimum(t.n_valid, 1),
                  count=jnp.ones_like(t.count))


def _reduction(fn: Callable[[Tensor], jax.Array]) -> Callable[[Tensor], Tensor]:
    def op(t: Tensor) -> Tensor:
        return _scalar(t, fn(t))

    return op


def _safe_log(x):
    pos = x > 0
    return jnp.where(pos, jnp.log(jnp.where(pos, x, 1.0)), 0.0)


def _safe_abslog(x):
    nz = x != 0
    return jnp.where(nz, jnp.log(jnp.abs(jnp.where(nz, x, 1.0))), 0.0)


def _safe_reciprocal(x):
    nz = x != 0
    return jnp.where(nz, 1.0 / jnp.where(nz, x, 1.0), 0.0)


def _masked_max(t: Tensor) -> jax.Array:
    return jnp.max(jnp.where(t.mask, t.values, -jnp.inf), axis=-1)


def _masked_min(t: Tensor) -> jax.Array:
    return jnp.min(jnp.where(t.mask, t.values, jnp.inf), axis=-1)


def _log_partition(t: Tensor) -> Tuple[jax.Array, jax.Array]:
    """(max, log sum_all exp(x - max)) with the sum estimated as count * sample mean."""
    mx = _masked_max(t)
    mx = jnp.where(jnp.isfinite(mx), mx, 0.0)
    mean_exp = _masked_mean(t, jnp.exp(t.values - mx[..., None]))
    return mx, jnp.log(t.count * mean_exp + 1e-30)


def _softmax(t: Tensor) -> Tensor:
    mx, log_z = _log_partition(t)
    return _elementwise(lambda x: jnp.exp(x - mx[..., None] - log_z[..., None]))(t)


def _log_softmax(t: Tensor) -> Tensor:
    mx, log_z = _log_partition(t)
    return _elementwise(lambda x: x - mx[..., None] - log_z[..., None])(t)


def _minmax(t: Tensor) -> Tensor:
    lo, hi = _masked_min(t), _masked_max(t)
    span = hi - lo
    ok = jnp.isfinite(span) & (span > 0)
    scale = jnp.where(ok, 1.0 / jnp.where(ok, span, 1.0), 0.0)
    return _elementwise(lambda x: (x - lo[..., None]) * scale[..., None])(t)


def _fro(t: Tensor) -> jax.Array:
    return jnp.sqrt(t.count * _masked_mean(t, jnp.square(t.values)))


def _l1(t: Tensor) -> jax.Array:
    return t.count * _masked_mean(t, jnp.abs(t.values))


def _mean(t: Tensor) -> jax.Array:
    return _masked_mean(t, t.values)


def _std(t: Tensor) -> jax.Array:
    mu = _masked_mean(t, t.values)
    return jnp.sqrt(jnp.maximum(_masked_mean(t, jnp.square(t.values - mu[..., None])), 0.0))


@dataclasses.dataclass(frozen=True)
class UnaryOp:
    """A Table 7 unary op: name (as written in genomes), paper id, kind, function."""

    name: str
    paper_id: str
    kind: str  # "elementwise", "normalise", "reduce", "identity" or "prune"
    fn: Callable[[Tensor], Tensor]


def _identity(t: Tensor) -> Tensor:
    return t


UNARY_OPS: Tuple[UnaryOp, ...] = (
    UnaryOp("log", "f01", "elementwise", _elementwise(_safe_log)),
    UnaryOp("abslog", "f02", "elementwise", _elementwise(_safe_abslog)),
    UnaryOp("abs", "f03", "elementwise", _elementwise(jnp.abs)),
    UnaryOp("square", "f04", "elementwise", _elementwise(jnp.square)),
    UnaryOp("exp", "f05", "elementwise", _elementwise(jnp.exp)),
    UnaryOp("sqrt", "f06", "elementwise", _elementwise(lambda x: jnp.sqrt(jnp.maximum(x, 0.0)))),
    UnaryOp("relu", "f07", "elementwise", _elementwise(jax.nn.relu)),
    UnaryOp("reciprocal", "f08", "elementwise", _elementwise(_safe_reciprocal)),
    UnaryOp("neg", "f09", "elementwise", _elementwise(jnp.negative)),
    UnaryOp("fro", "f10", "reduce", _reduction(_fro)),
    UnaryOp("normsum", "f11", "reduce", _reduction(_mean)),
    UnaryOp("l1", "f12", "reduce", _reduction(_l1)),
    UnaryOp("softmax", "f13", "normalise", _softmax),
    UnaryOp("sigmoid", "f14", "elementwise", _elementwise(jax.nn.sigmoid)),
    UnaryOp("logsoftmax", "f15", "normalise", _log_softmax),
    UnaryOp("minmax", "f16", "normalise", _minmax),
    UnaryOp("mean", "f17", "reduce", _reduction(_mean)),
    UnaryOp("std", "f18", "reduce", _reduction(_std)),
    UnaryOp("identity", "f19", "identity", _identity),
    UnaryOp("prune", "f20", "prune", _identity),
)
UNARY: Dict[str, UnaryOp] = {op.name: op for op in UNARY_OPS}


def safe_div(a: jax.Array, b: jax.Array) -> jax.Array:
    return a * _safe_reciprocal(b)


BINARY_OPS: Dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "add": jnp.add,  # g01
    "sub": jnp.subtract,  # g02
    "mul": jnp.multiply,  # g03
    "div": safe_div,  # g04
}
BINARY_NAMES: Tuple[str, ...] = tuple(BINARY_OPS)
UNARY_NAMES: Tuple[str, ...] = tuple(op.name for op in UNARY_OPS)


def tensor_mean(t: Tensor) -> jax.Array:
    """The estimated mean of every tensor (what a branch reduces to before the binary op)."""
    return _masked_mean(t, t.values)


def unary(name: str) -> UnaryOp:
    """The unary op called `name`; KeyError naming the known ops otherwise."""
    try:
        return UNARY[name]
    except KeyError:
        raise KeyError(f"unknown unary op {name!r}; known: {', '.join(UNARY_NAMES)}") from None


def binary(name: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The binary op called `name`; KeyError naming the known ops otherwise."""
    try:
        return BINARY_OPS[name]
    except KeyError:
        raise KeyError(f"unknown binary op {name!r}; known: {', '.join(BINARY_NAMES)}") from None
