"""Compact proxy inputs: exact storage of small tensors, shared sample positions, stacking, staging."""

import jax.numpy as jnp
import numpy as np
import pytest

from lpzero_jax import inputs
from tests.conftest import tiny_config


def test_small_tensors_are_stored_exactly_and_large_ones_sampled():
    small = jnp.arange(10.0).reshape(2, 5)
    big = jnp.arange(1000.0)
    values, counts = inputs.compact_tensors([[small], [big, small]], 64, seed=0)
    assert values.shape == (2, 2, 64)
    assert counts.tolist() == [[10, 0], [1000, 10]]
    np.testing.assert_array_equal(np.asarray(values[0, 0, :10]), np.arange(10.0))
    assert np.all(np.asarray(values[0, 0, 10:]) == 0)
    sampled = np.asarray(values[1, 0])
    assert np.all(np.isin(sampled, np.arange(1000.0)))  # real values of the tensor
    assert len(np.unique(sampled)) > 40


def test_sample_positions_depend_on_slot_and_size_only():
    a = inputs.sample_indices(0, 2, 5000, 128)
    assert np.array_equal(a, inputs.sample_indices(0, 2, 5000, 128))
    assert not np.array_equal(a, inputs.sample_indices(0, 3, 5000, 128))
    assert a.min() >= 0 and a.max() < 5000


def _fake(layers, t, k=32, seed=0):
    rng = np.random.default_rng(seed)
    values = {n: rng.standard_normal((layers if n != "J" else 1, t, k)).astype(np.float32)
              for n in inputs.INPUT_NAMES}
    counts = {n: np.full((layers if n != "J" else 1, t), 1000, np.int64) for n in inputs.INPUT_NAMES}
    return inputs.CompactInputs(values, counts)


def test_stack_pads_layers_and_slots(tmp_path):
    a, b = _fake(2, 3), _fake(4, 1)
    st = inputs.stack_inputs([a, b])
    assert st.values["A"].shape == (2, 4, 3, 32)
    assert st.counts["A"][0, 2:].sum() == 0 and st.counts["A"][1, :, 1:].sum() == 0
    assert st.layer_mask.tolist() == [[True, True, False, False], [True] * 4]
    path = tmp_path / "x.npz"
    a.save(path)
    back = inputs.CompactInputs.load(path)
    for n in inputs.INPUT_NAMES:
        np.testing.assert_array_equal(back.values[n], a.values[n])


def test_staged_equals_whole_model_extraction(data_root):
    from lpzero_jax.families import get_family
    from lpzero_jax.models.flexibert import FlexiBertConfig, LayerConfig

    family = get_family("flexibert")
    config = tiny_config()
    batch = family.make_batch(config)
    mc = FlexiBertConfig(hidden_size=128, layers=(LayerConfig("SA", "SDP", 2, 128, 1),
                                                  LayerConfig("DSC", 9, 4, 128, 2),
                                                  LayerConfig("LT", "DCT", 4, 128, 1)))
    params = family.init_params(mc, 0)
    staged = inputs.extract_proxy_inputs(family, mc, params, batch, 256, staged=True)
    whole = inputs.extract_proxy_inputs(family, mc, params, batch, 256, staged=False)
    for n in inputs.INPUT_NAMES:
        assert np.array_equal(staged.counts[n], whole.counts[n]), n
        np.testing.assert_allclose(staged.values[n], whole.values[n], rtol=1e-4, atol=1e-7, err_msg=n)
    assert staged.values["A"].shape == (3, 2, 256)
    assert np.all(np.isfinite(staged.values["G"])) and np.abs(staged.values["G"]).max() > 0


def test_cheapest_level_yields_what_is_needed(data_root, tmp_path):
    from lpzero_jax.families import get_family
    from lpzero_jax.input_store import InputStore
    from lpzero_jax.models.flexibert import FlexiBertConfig, LayerConfig
    from lpzero_jax.proxies.base import ArchContext
    from lpzero_jax.benchmarks.base import Arch

    assert inputs.level_for(["W"]) == "weights"
    assert inputs.level_for(["A", "W"]) == "forward"
    assert inputs.level_for(["G"]) == "backward"
    with pytest.raises(KeyError, match="unknown proxy inputs"):
        inputs.level_for(["Q"])
    family = get_family("flexibert")
    config = tiny_config()
    batch = family.make_batch(config)
    mc = FlexiBertConfig(hidden_size=128, layers=(LayerConfig("SA", "WMA", 2, 128, 2),
                                                  LayerConfig("LT", "DFT", 2, 128, 1)))
    params = family.init_params(mc, 0)
    full = inputs.extract_proxy_inputs(family, mc, params, batch, 256)
    fwd = inputs.extract_proxy_inputs(family, mc, params, batch, 256, needed=("A", "S"))
    w = inputs.extract_proxy_inputs(family, mc, params, batch, 256, needed=("W",))
    assert set(fwd.values) == {"A", "H", "S", "W"} and set(w.values) == {"W"}
    for n in fwd.values:
        np.testing.assert_allclose(fwd.values[n], full.values[n], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(w.values["W"], full.values["W"])  # NumPy path, same samples
    # the store saves partial levels beside full files and serves the cheapest covering one
    store = InputStore(config, tmp_path)
    layers = [dict(operation_type="SA", operation_parameter="WMA", num_operation_heads=2,
                   feed_forward_dimension=128, num_feed_forward=2),
              dict(operation_type="LT", operation_parameter="DFT", num_operation_heads=2,
                   feed_forward_dimension=128, num_feed_forward=1)]
    arch = Arch(arch_id="x", config={"hidden_size": 128, "encoder_layers": layers}, score=0.0)
    ctx = ArchContext(family, arch, config, batch)
    assert ctx.model_config == mc
    got = store(ctx, ("W",))
    assert store.path("x", "weights").exists() and not store.path("x").exists()
    assert store.has("x", ("W",)) and not store.has("x", ("A",))
    np.testing.assert_array_equal(got.values["W"], full.values["W"])
    # collect_inputs builds the same architecture without the zoo (input_store.ArchInputs)
    from lpzero_jax.input_store import collect_inputs

    other = InputStore(config, tmp_path / "other")
    (collected,), _ = collect_inputs(other, family, [arch], config, batch, needed=("W",))
    np.testing.assert_array_equal(collected.values["W"], full.values["W"])


def test_staged_full_tensors_equal_whole_model(data_root):
    import jax

    from lpzero_jax.families import get_family
    from lpzero_jax.models.flexibert import FlexiBertConfig, LayerConfig
    from lpzero_jax.engine.sweep import forward_full

    family = get_family("flexibert")
    batch = {k: jax.numpy.asarray(v) for k, v in family.make_batch(tiny_config()).items()}
    mc = FlexiBertConfig(hidden_size=128, layers=(LayerConfig("DSC", 5, 2, 128, 1),
                                                  LayerConfig("SA", "WMA", 2, 128, 2)))
    model, params = family.build_model(mc), family.init_params(mc, 0)
    ref = inputs.forward_backward(model, params, batch)
    got = forward_full(family.stages(mc), params, batch, True)
    close = lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4,  # noqa
                                                    atol=1e-7)
    close(got[0], ref[0])
    jax.tree_util.tree_map(close, got[1], ref[1])  # intermediates
    jax.tree_util.tree_map(close, got[2], ref[2])  # every parameter's gradient, embeddings included
    close(got[3], ref[3])
    loss, inter = forward_full(family.stages(mc), params, batch, False)
    close(loss, ref[0])
    jax.tree_util.tree_map(close, inter, ref[1])


def test_the_input_store_and_engine_do_not_import_the_zoo():
    """The store, the staged engine and the inputs import neither the proxy zoo nor each other in
    a circle (a fresh interpreter, so other tests' imports do not count)."""
    import subprocess
    import sys

    code = ("import sys, lpzero_jax.input_store, lpzero_jax.engine.passes, lpzero_jax.inputs; "
            "print(sorted(m for m in sys.modules if m.startswith('lpzero_jax.proxies')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    code = ("import lpzero_jax.engine.sweep, lpzero_jax.engine.passes, sys; "
            "print('lpzero_jax.inputs' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
