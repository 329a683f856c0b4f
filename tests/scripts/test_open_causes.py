"""scripts/open_causes.py: the fixed architecture sample and the released-values correction."""

import csv

import numpy as np

import pytest

from experiments.open_causes import pick_archs, released_activation_distance
from lpzero_jax.benchmarks.base import Arch
from lpzero_jax.families import get_family


def test_sample_spans_the_ground_truth_range_ends_included():
    archs = [Arch(i, {}, float((i * 7) % 23)) for i in range(23)]
    chosen = pick_archs(archs, 5, 0, None)
    scores = [a.score for a in chosen]
    assert scores == sorted(scores) and scores[0] == 0.0 and scores[-1] == 22.0
    assert len({a.arch_id for a in chosen}) == 5


def test_released_values_are_corrected_for_the_repeated_hooks(tmp_path):
    """Arch 0 has 10 FFN activation calls, arch 1 has 8; with 30 and 34 hooks on the shared GELU
    the released sums count each activation 30 and 34 times."""
    layers = {a.arch_id: a.config["encoder_layers"]
              for a in get_family("flexibert").load_benchmark(_config())[:2]}
    calls = [sum(l["num_feed_forward"] for l in layers[i]) for i in (0, 1)]
    assert calls == [10, 8]
    path = tmp_path / "released.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ID", "Activation Distance", "Activation Distance Normalized"])
        w.writerow(["0", 5.0 * 30 * 10, 5.0])  # per-activation mean 5, 300 list entries
        w.writerow(["1", 7.0 * 34 * 8, 7.0])
    out = released_activation_distance(str(path))
    assert out["0"]["hooks"] == pytest.approx(30) and out["1"]["hooks"] == pytest.approx(34)
    assert out["0"]["released_corrected"] == pytest.approx(50.0)
    assert out["1"]["released_corrected"] == pytest.approx(56.0)


def _config():
    from lpzero_jax.configs.flexibert import get_config

    c = get_config()
    c.num_archs = 2
    return c


def test_grasp_with_two_masks_is_grasp_in_eval_mode(data_root):
    """In eval mode the second pass's dropout seed changes nothing, so it is the zoo's GraSP."""
    from experiments.open_causes import grasp_two_masks
    from lpzero_jax.proxies import PROXIES
    from tests.proxies.test_zoo import _context

    ctx = _context("gpt2", data_root)
    want = PROXIES.get("grasp")(ctx)
    assert np.isfinite(want) and want != 0
    assert grasp_two_masks(ctx) == pytest.approx(want, rel=1e-5)
