"""The joint fitness is the lowest of the benchmarks' rho, and invalid where any is invalid."""

import numpy as np
import pytest

from lpzero_jax.expression.genome import random_genome
from lpzero_jax.inputs import stack_inputs
from lpzero_jax.search.fitness import FitnessEvaluator
from lpzero_jax.study.joint import JointEvaluator
from tests.study.fakes import fake_pool


def evaluators(use_rps=True):
    out = {}
    for seed, name in enumerate(("a", "b")):
        pool = fake_pool(n=12, seed=seed)
        out[name] = FitnessEvaluator(stack_inputs(pool.inputs), pool.truth, use_rps=use_rps,
                                     backend="program")
    return out


def test_joint_fitness_is_the_minimum_over_benchmarks():
    joint = JointEvaluator(evaluators())
    alone = evaluators()
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(30):
        g = random_genome(rng, 2)
        fit = joint(g)
        singles = {n: ev(g) for n, ev in alone.items()}
        if all(f.valid for f in singles.values()):
            assert fit.valid and fit.rho == pytest.approx(min(f.rho for f in singles.values()))
            assert joint.rho_per_benchmark(g) == pytest.approx({n: f.rho for n, f in singles.items()})
            checked += 1
        else:
            bad = next(n for n, f in singles.items() if not f.valid)
            assert not fit.valid and fit.reason.startswith(f"{bad}:")
    assert checked >= 5
    # a candidate that passes the static rules counts once, however many benchmarks score it
    assert joint.evaluated == alone["a"].evaluated


def test_a_statically_pruned_genome_is_not_counted():
    joint = JointEvaluator(evaluators())
    rng = np.random.default_rng(0)
    g = next(g for g in (random_genome(rng, 2) for _ in range(1000))
             if joint.evaluators["a"].static_check(g) is not None)
    assert not joint(g).valid and joint.evaluated == 0


def test_evaluators_must_agree_on_rps():
    mixed = evaluators()
    mixed["b"] = evaluators(use_rps=False)["b"]
    with pytest.raises(ValueError, match="disagree on RPS"):
        JointEvaluator(mixed)
