"""Every registered proxy on a tiny FlexiBERT (SA, LT and DSC layers; batch 2 x 16) gives a number."""

import math

import jax

import numpy as np
import pytest

from tests.conftest import tiny_config

LAYERS = [
    dict(operation_type="SA", operation_parameter="WMA", num_operation_heads=2,
         feed_forward_dimension=32, num_feed_forward=2),
    dict(operation_type="LT", operation_parameter="DCT", num_operation_heads=2,
         feed_forward_dimension=32, num_feed_forward=1),
    dict(operation_type="DSC", operation_parameter=5, num_operation_heads=4,
         feed_forward_dimension=32, num_feed_forward=1),
]
# documented "not applicable" cases: LTS's parameter groups do not exist for FlexiBERT
MAY_BE_NAN = {"flexibert": {"params_nonembedding", "params_attn", "params_ffn"}, "gpt2": set()}
# a tiny GPT-2 of the LTS space: 2 layers, d_model 32, adaptive embeddings (div_val 2, 4 clusters)
TINY_GPT2 = dict(n_token=50264, cutoffs=[19997, 39997, 199997, 50264], tie_projs=[False, True, True,
                 True], tie_weight=True, d_model=32, d_embed=32, div_val=2, n_head=[2, 4],
                 d_inner=[48, 64], tgt_len=16)


def _context(family_name: str, data_root):
    from lpzero_jax.benchmarks.base import Arch
    from lpzero_jax.families import get_family
    from lpzero_jax.proxies import ArchContext

    family = get_family(family_name)
    if family_name == "flexibert":
        config = tiny_config(data_root=str(data_root))
        arch = Arch("tiny", dict(hidden_size=32, encoder_layers=LAYERS), 1.0, {})
    else:
        config = tiny_config(data_root=str(data_root), family="gpt2")
        arch = Arch("tiny_gpt2", TINY_GPT2, -100.0, {})
    return ArchContext(family, arch, config, family.make_batch(config))


@pytest.fixture(scope="module")
def ctx(data_root):
    return _context("flexibert", data_root)


@pytest.fixture(scope="module")
def gpt2_ctx(data_root):
    return _context("gpt2", data_root)


def _names():
    import lpzero_jax.proxies  # noqa: F401
    from lpzero_jax.proxies import PROXIES

    return PROXIES.names()


@pytest.mark.parametrize("name", _names())
def test_proxy_is_finite(ctx, name):
    _check_finite(ctx, name, "flexibert")


@pytest.mark.parametrize("name", _names())
def test_proxy_is_finite_on_gpt2(gpt2_ctx, name):
    _check_finite(gpt2_ctx, name, "gpt2")


def _check_finite(ctx, name, family):
    from lpzero_jax.proxies import PROXIES

    value, seconds = ctx.timed_call(PROXIES.get(name))
    assert isinstance(value, float)
    assert seconds >= 0
    if name not in MAY_BE_NAN[family]:
        assert math.isfinite(value), f"{name} = {value}"


def test_zoo_has_the_issue_proxies():
    expected = {"snip", "grasp", "fisher", "grad_norm", "synflow", "logsynflow", "synaptic_saliency",
                "synaptic_diversity", "jacobian_cosine", "activation_distance", "softmax_confidence",
                "head_importance", "eznas", "wpca", "vanilla_pca", "zerolm", "zerolm_attention",
                "zerolm_ffn", "params", "attention_confidence", "params_nonembedding",
                "lpzero_flexibert", "lpzero_gpt2", "lpzero_llama"}
    assert expected <= set(_names())


def test_counting_proxies_are_exact(ctx):
    from lpzero_jax.proxies import PROXIES
    from lpzero_jax.models.init import count_params

    total = count_params(ctx.param_shapes)
    assert PROXIES.get("params")(ctx) == total


def test_wpca_is_params_times_pca(ctx):
    from lpzero_jax.proxies import PROXIES

    pca = PROXIES.get("vanilla_pca")(ctx)
    assert 0 < pca <= 3 * 15  # three layers, at most S - 1 = 15 components per input
    assert PROXIES.get("wpca")(ctx) == pytest.approx(PROXIES.get("params")(ctx) * pca)


def test_zerolm_combines_its_parts(ctx):
    from lpzero_jax.proxies import PROXIES

    a = PROXIES.get("zerolm_attention")(ctx)
    f = PROXIES.get("zerolm_ffn")(ctx)
    assert PROXIES.get("zerolm")(ctx) == pytest.approx(0.5 * a + 0.5 * f)


def test_fisher_stage_covers_every_linear_layer(ctx):
    fisher = ctx.linear_fisher()
    linear_modules = {p[:-1] for p in ctx.linear_paths()}
    assert set(fisher) == linear_modules
    assert all(np.all(np.asarray(v) >= 0) for v in fisher.values())


def test_hessian_gradient_product_matches_weights(ctx):
    hg = ctx.hessian_gradient_product()
    shapes = {p: ctx.param_shapes for p in ctx.linear_paths()}
    assert set(hg) == set(shapes)
    assert all(np.all(np.isfinite(np.asarray(v))) for v in hg.values())


def test_genome_proxies_follow_the_runs_aggregation(ctx):
    """A published genome named in config.proxies sums over layers by default and averages with
    search.aggregate=mean: on this 3-layer model the two differ."""
    from lpzero_jax.proxies.resolve import resolve_proxies

    fn = resolve_proxies("lpzero_llama")["lpzero_llama"]
    summed = fn(ctx)
    ctx.config.search.aggregate = "mean"
    try:
        averaged = fn(ctx)
    finally:
        ctx.config.search.aggregate = "sum"
    assert math.isfinite(summed) and math.isfinite(averaged)
    assert abs(summed - averaged) > 1e-6 * abs(summed)


@pytest.mark.parametrize("family_name", ["flexibert", pytest.param("gpt2", marks=pytest.mark.slow)])
def test_fused_backward_hvp_equals_separate_passes(family_name, data_root):
    """ArchContext(fuse_hvp=True) (one linearized program) gives the separate passes' values."""
    separate, fused = _context(family_name, data_root), _context(family_name, data_root)
    fused.fuse_hvp = True
    separate.layer_by_layer = fused.layer_by_layer = False  # the whole-model programs
    for name in ("grads", "linear_fisher", "hessian_gradient_product"):
        a = jax.tree_util.tree_leaves(getattr(separate, name)())
        b = jax.tree_util.tree_leaves(getattr(fused, name)())
        assert_trees_close(a, b)
    assert float(fused.backward()[0]) == pytest.approx(float(separate.backward()[0]), rel=1e-6)
    assert set(fused.pass_seconds) >= {"backward"} and "hvp" not in fused.pass_seconds


def assert_trees_close(a, b, rtol=1e-4, atol_scale=1e-5):
    """Leaf lists equal up to float32 reordering: rtol, and atol relative to the largest entry."""
    assert len(a) == len(b) > 0
    scale = max(float(np.max(np.abs(np.asarray(x)))) for x in a)
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=rtol, atol=atol_scale * scale)


@pytest.mark.parametrize("family_name", ["flexibert", "gpt2"])
def test_eznas_reads_the_reference_weights(family_name, data_root):
    """EZNAS sums the reference's weights: FlexiBERT's token mixer only, every GPT-2 Conv1D."""
    from lpzero_jax.proxies import PROXIES
    from lpzero_jax.proxies.common import flat_params
    from lpzero_jax.proxies.eznas import eznas_term

    ctx = _context(family_name, data_root)
    grads = flat_params(ctx.grads())
    terms = {p: float(eznas_term(grads[p], ctx.family.reference_weight_layout(p)))
             for p in ctx.linear_paths()}
    roles = {p: ctx.family.weight_role(p) for p in terms}
    read = {p for p in terms if family_name == "gpt2" or roles[p] == "attention"}
    assert 0 < len(read) < len(terms) if family_name == "flexibert" else read == set(terms)
    assert PROXIES.get("eznas")(ctx) == pytest.approx(sum(terms[p] for p in read), abs=1e-6)
    if family_name == "gpt2":  # mlp c_proj: its d_inner x d_inner sign Gram has rank <= d_model
        assert all(terms[p] == 0.0 for p in terms if p[-3:-1] == ("mlp", "c_proj"))


def test_reference_variants_read_the_reference_tensors(gpt2_ctx):
    """On GPT-2 the reference Jacobian Cosine reads the wpe gradient's columns and the reference
    Activation Distance every Conv1D output of the first input (c_fc before its GELU)."""
    from lpzero_jax.proxies import PROXIES
    from lpzero_jax.proxies.activation_distance_reference import kernel_entry_sum
    from lpzero_jax.proxies.common import flat_params
    from lpzero_jax.proxies.jacobian_cosine import jacobian_cosine_score
    from lpzero_jax.engine.passes import with_output_deltas
    from lpzero_jax.proxies.whole_model import proxy_loss

    wpe = flat_params(gpt2_ctx.grads())[("params", "wpe", "embedding")]
    assert PROXIES.get("jacobian_cosine_reference")(gpt2_ctx) == pytest.approx(
        jacobian_cosine_score(wpe.T))
    outputs = {}
    with_output_deltas(gpt2_ctx.family, None, outputs,
                       lambda: proxy_loss(gpt2_ctx.model, gpt2_ctx.params, gpt2_ctx.device_batch()))
    assert {k + ("kernel",) for k in outputs} == set(gpt2_ctx.linear_paths())  # all 4 per layer
    expected = sum(float(kernel_entry_sum(y[0])) for y in outputs.values())
    assert PROXIES.get("activation_distance_reference")(gpt2_ctx) == expected
    seq, width = outputs[("params", "layer_0", "mlp", "c_fc")].shape[1:]
    assert expected > seq * seq * width  # at least the c_fc output's share (each entry >= S^2/2)


def test_reference_jacobian_cosine_needs_a_position_table(ctx, monkeypatch):
    """Not applicable (NaN, never a crash) to a family without a learned position table."""
    from lpzero_jax.proxies import PROXIES

    assert math.isfinite(PROXIES.get("jacobian_cosine_reference")(ctx))
    monkeypatch.setattr(ctx.family, "position_table_path", None)
    assert math.isnan(PROXIES.get("jacobian_cosine_reference")(ctx))


def test_pass_seconds_exclude_the_passes_built_inside(ctx):
    """A shared stage's seconds are its own: a stage built inside another is not counted twice,
    and a proxy's own seconds leave out the stages it built."""
    import time

    from lpzero_jax.proxies import ArchContext

    fresh = ArchContext(ctx.family, ctx.arch, ctx.config, ctx.batch)

    def outer():
        fresh.cached("inner_stage", lambda: time.sleep(0.3))
        time.sleep(0.1)

    def proxy(c):
        c.cached("outer_stage", outer)
        time.sleep(0.05)
        return 1.0

    value, seconds = fresh.timed_call(proxy)
    assert fresh.pass_seconds["inner_stage"] == pytest.approx(0.3, abs=0.08)
    assert fresh.pass_seconds["outer_stage"] == pytest.approx(0.1, abs=0.08)
    assert fresh.own_seconds == pytest.approx(0.05, abs=0.04)
    assert seconds == pytest.approx(0.45, abs=0.1)
