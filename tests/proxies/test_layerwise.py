"""The layer-by-layer gradient passes (proxies/layerwise.py) equal the whole-model programs."""

import jax
import numpy as np
import pytest

from tests.proxies.test_zoo import _context, assert_trees_close


@pytest.fixture(scope="module")
def pair(data_root):
    """(whole-model context, layer-by-layer context) of the same tiny FlexiBERT (SA, LT, DSC)."""
    whole, layered = _context("flexibert", data_root), _context("flexibert", data_root)
    whole.layer_by_layer = False
    return whole, layered


def test_flexibert_runs_layer_by_layer(pair):
    whole, layered = pair
    assert layered._layerwise() is not None and whole._layerwise() is None


@pytest.mark.parametrize("stage", ["grads", "linear_fisher", "synflow_grads",
                                   "hessian_gradient_product"])
def test_layerwise_equals_whole_model(pair, stage):
    whole, layered = pair
    a, b = getattr(whole, stage)(), getattr(layered, stage)()
    if isinstance(a, dict) and not isinstance(next(iter(a)), str):  # {path: array}
        assert list(a) == list(b)
    assert_trees_close(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))


def test_layerwise_backward_outputs(pair):
    whole, layered = pair
    (loss_a, _, _, j_a), (loss_b, _, _, j_b) = whole.backward(), layered.backward()
    assert float(loss_b) == pytest.approx(float(loss_a), rel=1e-5)
    assert_trees_close([j_a], [j_b])


def test_hessian_vector_product_is_not_the_gradient(pair):
    """Guards the comparison above: H g differs from g (and is nonzero) on this model."""
    _, layered = pair
    hg = layered.hessian_gradient_product()
    grads = layered.grads()
    norms = [float(np.linalg.norm(np.asarray(v))) for v in hg.values()]
    assert max(norms) > 0
    first = next(iter(hg))
    assert not np.allclose(np.asarray(hg[first]), 0)
    g_first = grads
    for key in first:
        g_first = g_first[key]
    assert not np.allclose(np.asarray(hg[first]), np.asarray(g_first))
