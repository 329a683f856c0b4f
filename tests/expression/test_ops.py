"""Every Table 7 op on scalars, vectors and matrices against NumPy, and the numerical guards."""

import jax.numpy as jnp
import numpy as np
import pytest

from lpzero_jax.expression import ops
from lpzero_jax.expression.compile import as_tensor

K = 64


def tensor(x):
    """A tensor smaller than K: stored exactly, so ops must match NumPy exactly."""
    x = np.asarray(x, np.float32).ravel()
    values = np.zeros((1, K), np.float32)
    values[0, :x.size] = x
    return as_tensor(jnp.asarray(values), jnp.asarray([x.size]))


def mean_of(t):
    return float(ops.tensor_mean(t)[0])


def np_softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


REFERENCE = {
    "log": lambda x: np.where(x > 0, np.log(np.where(x > 0, x, 1)), 0),
    "abslog": lambda x: np.where(x != 0, np.log(np.abs(np.where(x != 0, x, 1))), 0),
    "abs": np.abs, "square": np.square, "exp": np.exp,
    "sqrt": lambda x: np.sqrt(np.maximum(x, 0)), "relu": lambda x: np.maximum(x, 0),
    "reciprocal": lambda x: np.where(x != 0, 1 / np.where(x != 0, x, 1), 0), "neg": np.negative,
    "fro": lambda x: np.linalg.norm(x), "normsum": lambda x: x.sum() / x.size,
    "l1": lambda x: np.abs(x).sum(), "softmax": np_softmax, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "logsoftmax": lambda x: np.log(np_softmax(x)),
    "minmax": lambda x: (x - x.min()) / (x.max() - x.min()) if x.max() > x.min() else 0 * x,
    "mean": np.mean, "std": np.std, "identity": lambda x: x, "prune": lambda x: x,
}

SHAPES = {"scalar": (), "vector": (7,), "matrix": (3, 5)}


def test_twenty_unary_and_four_binary_ops():
    assert len(ops.UNARY_OPS) == 20 and len(ops.BINARY_OPS) == 4
    assert set(REFERENCE) == set(ops.UNARY_NAMES)


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("name", ops.UNARY_NAMES)
def test_unary_op_matches_numpy(name, shape):
    x = np.random.default_rng(1).standard_normal(SHAPES[shape]).astype(np.float32) * 2
    x = np.atleast_1d(x)
    expected = np.mean(np.atleast_1d(REFERENCE[name](x.ravel().astype(np.float64))))
    got = mean_of(ops.unary(name).fn(tensor(x)))
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-5), (name, shape)


def test_reductions_give_scalars_that_compose():
    t = ops.unary("fro").fn(tensor([3.0, 4.0]))
    assert int(t.n_valid[0]) == 1 and float(t.count[0]) == 1
    assert mean_of(ops.unary("softmax").fn(t)) == pytest.approx(1.0)
    assert mean_of(ops.unary("logsoftmax").fn(t)) == pytest.approx(0.0, abs=1e-6)
    assert mean_of(ops.unary("std").fn(t)) == 0.0
    assert mean_of(ops.unary("l1").fn(t)) == pytest.approx(5.0)


def test_guards_define_undefined_math():
    assert mean_of(ops.unary("log").fn(tensor([-1.0, 0.0]))) == 0.0
    assert mean_of(ops.unary("sqrt").fn(tensor([-4.0]))) == 0.0
    assert mean_of(ops.unary("reciprocal").fn(tensor([0.0]))) == 0.0
    assert mean_of(ops.unary("minmax").fn(tensor([2.0, 2.0]))) == 0.0
    assert float(ops.binary("div")(jnp.asarray(3.0), jnp.asarray(0.0))) == 0.0
    big = mean_of(ops.unary("softmax").fn(tensor([1000.0, 1000.0])))
    assert big == pytest.approx(0.5)  # shifted by the max: no overflow


def test_sums_of_sampled_tensors_are_rescaled():
    """A tensor larger than K is represented by K samples; sums scale by count / samples."""
    x = np.random.default_rng(0).standard_normal(100_000).astype(np.float32)
    idx = np.random.default_rng(1).integers(0, x.size, 4096)
    t = as_tensor(jnp.asarray(x[idx])[None], jnp.asarray([x.size]))
    assert mean_of(ops.unary("fro").fn(t)) == pytest.approx(np.linalg.norm(x), rel=0.03)
    assert mean_of(ops.unary("l1").fn(t)) == pytest.approx(np.abs(x).sum(), rel=0.03)
    assert mean_of(ops.unary("std").fn(t)) == pytest.approx(x.std(), rel=0.03)
    sm = np_softmax(x.astype(np.float64))
    assert mean_of(ops.unary("logsoftmax").fn(t)) == pytest.approx(np.log(sm).mean(), rel=0.01)
