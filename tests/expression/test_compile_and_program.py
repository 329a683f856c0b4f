"""The per-genome compiler and the compile-once program agree, and aggregate as documented."""

import numpy as np
import pytest

from lpzero_jax import inputs
from lpzero_jax.expression import compile_genome, parse_genome
from lpzero_jax.expression.genome import random_genome
from lpzero_jax.expression.program import GenomeProgram


def fake_items(n=6, k=32, seed=0):
    """n CompactInputs of synthetic architectures (2-4 layers, 1-3 tokens per layer)."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        layers = 2 + (i % 3)
        values, counts = {}, {}
        for name in inputs.INPUT_NAMES:
            l = 1 if name == "J" else layers
            t = 1 + (i + len(name)) % 3
            values[name] = (rng.standard_normal((l, t, k)) * (1 + i)).astype(np.float32)
            counts[name] = np.full((l, t), 20 + 50 * i, np.int64)  # some smaller than k, some larger
            counts[name][:, -1] = 0 if t > 1 else counts[name][:, -1]
        items.append(inputs.CompactInputs(values, counts))
    return items


def fake_archs(n=6, k=32, seed=0):
    return inputs.stack_inputs(fake_items(n, k, seed))


@pytest.mark.parametrize("aggregate", ["mean", pytest.param("sum", marks=pytest.mark.slow)])
def test_program_equals_compiled_on_random_genomes(aggregate):
    stacked = fake_archs()
    program = GenomeProgram(stacked, n_unary=2, aggregate=aggregate)
    rng = np.random.default_rng(3)
    genomes = [random_genome(rng, 2) for _ in range(40)]
    got = program.scores(genomes)
    for g, row in zip(genomes, got):
        ref = compile_genome(g, aggregate)(stacked)
        both_nan = np.isnan(ref) & np.isnan(row)
        np.testing.assert_allclose(np.where(both_nan, 0, row), np.where(both_nan, 0, ref),
                                   rtol=2e-4, atol=1e-5, err_msg=str(g))


@pytest.mark.parametrize("aggregate,reduce", [("sum", np.sum), ("mean", np.mean)])
def test_aggregation_of_tensors_and_layers(aggregate, reduce):
    """score = reduce over layers of (reduce over A's tensors - reduce over H's tensors)."""
    stacked = fake_archs(n=3)
    g = parse_genome("sub(identity(identity(A)),identity(identity(H)))")
    got = compile_genome(g, aggregate)(stacked)
    for i in range(3):
        per_layer = []
        for l in np.nonzero(stacked.layer_mask[i])[0]:
            per_input = {}
            for name in ("A", "H"):
                c = stacked.counts[name][i, l]
                v = stacked.values[name][i, l]
                per_input[name] = reduce([v[t, :min(c[t], v.shape[-1])].mean() for t in np.nonzero(c)[0]])
            per_layer.append(per_input["A"] - per_input["H"])
        assert got[i] == pytest.approx(reduce(per_layer), rel=1e-5)


def test_pruned_branch_yields_the_other_and_j_broadcasts():
    stacked = fake_archs(n=3)
    only_h = compile_genome("mul(prune(A),abs(H))")(stacked)
    np.testing.assert_allclose(only_h, compile_genome("add(abs(H),prune(W))")(stacked), rtol=1e-6)
    j_alone = compile_genome("add(mean(J),prune(A))", "mean")(stacked)
    j_mean = [np.mean([stacked.values["J"][i, 0, t, :min(c, 32)].mean()
                       for t, c in enumerate(stacked.counts["J"][i, 0]) if c > 0]) for i in range(3)]
    np.testing.assert_allclose(j_alone, j_mean, rtol=1e-5)
    j_sum = [np.sum([stacked.values["J"][i, 0, t, :min(c, 32)].mean()
                     for t, c in enumerate(stacked.counts["J"][i, 0]) if c > 0]) for i in range(3)]
    s = compile_genome("add(mean(J),prune(A))", "sum")(stacked)
    np.testing.assert_allclose(s, np.asarray(j_sum) * stacked.layer_mask.sum(1), rtol=1e-5)
