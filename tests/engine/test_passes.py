"""The zoo's gradient passes on the engine's stages (lpzero_jax/engine/passes.py) equal the
whole-model programs (lpzero_jax/proxies/whole_model.py): FlexiBERT (unbucketed layers) and GPT-2
(layers run bucketed: FFN widths padded to 256, 8 fine heads mixed by `head_mix`)."""

import jax
import numpy as np
import pytest

from tests.proxies.test_zoo import TINY_GPT2, _context, assert_trees_close

# the zoo's gradient-pass proxies (they read grads, Fisher, Synflow, H g or d loss / d embeds)
GRADIENT_PROXIES = ("snip", "grad_norm", "fisher", "synflow", "logsynflow", "grasp",
                    "jacobian_cosine", "jacobian_cosine_reference", "synaptic_saliency",
                    "synaptic_diversity", "head_importance", "eznas", "lpzero_gpt2_reference",
                    "activation_distance_reference")  # GPT-2: from the backward's linear outputs
# float32 sums reordered by the per-layer programs (and padded matmuls): relative tolerance
RTOL = 2e-4
# GPT-2's Synflow objective, the sum of ln_f's outputs, does not depend on ln_f's input in exact
# arithmetic (unit scale: the normalised entries of a row sum to 0), so every gradient but ln_f's
# is float rounding noise, in the whole model as in the engine: Synflow there is compared by size
# only (see `test_gpt2_synflow_is_rounding_noise_below_ln_f`)
NOISE = {("gpt2", "synflow"): 0.5, ("gpt2", "logsynflow"): 0.1}


def _pair(family_name, data_root):
    """(whole-model context, engine context) of the same tiny architecture."""
    whole, engine = _context(family_name, data_root), _context(family_name, data_root)
    whole.layer_by_layer = False
    return whole, engine


@pytest.fixture(scope="module", params=["flexibert", "gpt2"])
def pair(request, data_root):
    return _pair(request.param, data_root)


def test_the_engine_runs_them(pair):
    whole, engine = pair
    assert engine._layerwise() is not None and whole._layerwise() is None


def test_gpt2_layers_run_bucketed(data_root):
    """Guards the GPT-2 comparisons: its layers really run padded, as fine heads."""
    from lpzero_jax.engine import sweep

    _, engine = _pair("gpt2", data_root)
    stages = engine._layerwise()
    for module, _ in stages.layers:
        pad = sweep.padding(stages, module, (2, 16, TINY_GPT2["d_model"]))
        assert pad is not None and pad.run.d_inner == 256 and pad.run.n_head == 8
        assert pad.run.d_inner != module.d_inner


@pytest.mark.parametrize("stage", ["grads", "linear_fisher",
                                   pytest.param("synflow_grads", marks=pytest.mark.slow),
                                   "hessian_gradient_product", "intermediates"])
def test_engine_equals_whole_model(pair, stage):
    whole, engine = pair
    a, b = getattr(whole, stage)(), getattr(engine, stage)()
    rtol, atol_scale = RTOL, 1e-5
    if whole.family.name == "gpt2" and stage == "synflow_grads":
        # the rest is rounding noise (below); ln_f's scale gradient sums the normalised final
        # rows, which at |params| and all-ones inputs are near-constant (x - mean cancels): 1 %
        a, b = a["params"]["ln_f"], b["params"]["ln_f"]
        rtol, atol_scale = 1e-2, 1e-3
    if isinstance(a, dict) and not isinstance(next(iter(a)), str):  # {path: array}
        assert list(a) == list(b)
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert np.shape(x) == np.shape(y)  # cut back to the real shapes
    assert_trees_close(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), rtol=rtol,
                       atol_scale=atol_scale)


def test_engine_backward_outputs(pair):
    whole, engine = pair
    (loss_a, _, _, j_a), (loss_b, _, _, j_b) = whole.backward(), engine.backward()
    assert float(loss_b) == pytest.approx(float(loss_a), rel=1e-5)
    assert_trees_close([j_a], [j_b], rtol=RTOL)


@pytest.mark.parametrize("name", GRADIENT_PROXIES)
def test_gradient_proxies_equal_whole_model(pair, name):
    from lpzero_jax.proxies import PROXIES

    whole, engine = pair
    a, b = PROXIES.get(name)(whole), PROXIES.get(name)(engine)
    if np.isnan(a):
        assert np.isnan(b)
    else:
        assert b == pytest.approx(a, rel=NOISE.get((whole.family.name, name), RTOL), abs=1e-12)


def test_gpt2_synflow_is_rounding_noise_below_ln_f(data_root):
    """GPT-2's Synflow gradients below ln_f are zero up to float rounding in both paths (so the
    engine's differ from the whole model's there); ln_f's bias gradient is the position count."""
    whole, engine = _pair("gpt2", data_root)
    for ctx in (whole, engine):
        grads = ctx.synflow_grads()["params"]
        assert float(np.max(grads["ln_f"]["bias"])) == pytest.approx(2 * 16)  # batch 2 x 16
        rest = [x for k, v in grads.items() if k != "ln_f" for x in jax.tree_util.tree_leaves(v)]
        assert max(float(np.max(np.abs(np.asarray(x)))) for x in rest) < 1e-3 * 32


def test_hessian_vector_product_is_not_the_gradient(pair):
    """Guards the comparison above: H g differs from g (and is nonzero) on this model."""
    _, engine = pair
    hg = engine.hessian_gradient_product()
    grads = engine.grads()
    norms = [float(np.linalg.norm(np.asarray(v))) for v in hg.values()]
    assert max(norms) > 0
    first = next(iter(hg))
    assert not np.allclose(np.asarray(hg[first]), 0)
    g_first = grads
    for key in first:
        g_first = g_first[key]
    assert not np.allclose(np.asarray(hg[first]), np.asarray(g_first))


def test_gpt2_layer_programs_are_shared_across_widths(data_root):
    """A second GPT-2 architecture whose layers differ in real FFN width and head count but fall
    in the same buckets (same embedding side) compiles no new program for its gradient passes."""
    from lpzero_jax.benchmarks.base import Arch
    from lpzero_jax.engine import staging
    from lpzero_jax.proxies import ArchContext

    first = _context("gpt2", data_root)
    first.grads(), first.synflow_grads(), first.hessian_gradient_product(), first.intermediates()
    before = staging.compiled_programs()
    second = ArchContext(first.family, Arch("b", dict(TINY_GPT2, n_head=[4, 8], d_inner=[100, 200]),
                                            -100.0, {}), first.config, first.batch)
    second.grads(), second.synflow_grads(), second.hessian_gradient_product(), second.intermediates()
    assert second.model_config.d_inner == (100, 200)
    assert staging.compiled_programs() == before


def test_gpt2_reference_activation_distance_runs_no_program_of_its_own(data_root):
    """On the engine, GPT-2's reference Activation Distance reads the positive counts the backward
    pass records (no whole-model program per architecture) and the forward intermediates are the
    backward's (no second forward): equal to the whole model's values."""
    from lpzero_jax.proxies import PROXIES
    from lpzero_jax.proxies import activation_distance_reference as adr

    whole, engine = _pair("gpt2", data_root)
    engine.backward()
    before = adr._compiled_linear_output_sums.cache_info().misses
    value = PROXIES.get("activation_distance_reference")(engine)
    assert adr._compiled_linear_output_sums.cache_info().misses == before
    assert value == PROXIES.get("activation_distance_reference")(whole)  # exact integer counts
    assert engine.intermediates() is engine.backward()[1] and "forward" not in engine.pass_seconds
    assert_trees_close(jax.tree_util.tree_leaves(engine.intermediates()),
                       jax.tree_util.tree_leaves(whole.intermediates()), rtol=RTOL)


def test_bounded_residuals_recompute_layers_with_the_same_values(pair):
    """keep_bytes: layers past the bound run their forward program again in the backward step
    instead of keeping its residuals; every output is bit-for-bit the kept-residuals one."""
    from lpzero_jax.engine import passes, sweep

    _, engine = pair
    stages, params, batch = engine._layerwise(), engine.params, engine.device_batch()
    calls = []

    def counted(module):
        fwd = sweep.plain_layer_forward(module)
        return lambda p, x: calls.append(1) or fwd(p, x)

    outs = {}
    for keep in (None, 0, 1 << 40):  # all kept; none kept (recomputed); a bound never reached
        calls.clear()
        outs[keep] = sweep.backward_sweep(stages, params, batch, counted,
                                          sweep.plain_layer_backward, keep_bytes=keep)[:4]
        n = len(stages.layers)
        assert len(calls) == (2 * n if keep == 0 else n)
    for keep in (0, 1 << 40):
        for a, b in zip(jax.tree_util.tree_leaves(outs[None]), jax.tree_util.tree_leaves(outs[keep])):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the zoo's passes pass the bound through (Fisher's backward and Synflow)
    full = passes.backward(engine.family, stages, params, batch)
    bounded = passes.backward(engine.family, stages, params, batch, keep_bytes=0)
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(bounded)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(jax.tree_util.tree_leaves(passes.synflow_grads(engine.family, stages, params, batch)),
                    jax.tree_util.tree_leaves(passes.synflow_grads(engine.family, stages, params,
                                                                   batch, keep_bytes=0))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
