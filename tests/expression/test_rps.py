"""Rule-based Pruning Strategy: each Table 11 rule rejects its example; runtime checks."""

import numpy as np
import pytest

from lpzero_jax.expression import parse_genome
from lpzero_jax.expression.rps import STATIC_RULES, runtime_violation, static_violation


@pytest.mark.parametrize("rule_id,first,then", [(r[0], r[2][0], r[2][1]) for r in STATIC_RULES])
def test_each_static_rule_rejects_its_example(rule_id, first, then):
    g = parse_genome(f"add({then}({first}(A)),identity(identity(H)))")
    assert static_violation(g) == rule_id


def test_identity_between_ops_does_not_hide_a_rule():
    assert static_violation(parse_genome("add(log(identity(exp(A))),abs(H))")) == "inverse_log_exp"


def test_structural_rules():
    assert static_violation(parse_genome("add(prune(A),log(prune(H)))")) == "both_branches_pruned"
    assert static_violation(parse_genome("add(softmax(fro(A)),abs(H))")) == "normalised_scalar"
    assert static_violation(parse_genome("add(std(mean(A)),abs(H))")) == "normalised_scalar"


def test_valid_genomes_pass():
    for text in ["add(square(reciprocal(H)),log(fro(A)))", "mul(l1(W),sqrt(G))",
                 "sub(prune(A),abs(H))"]:
        assert static_violation(parse_genome(text)) is None


def test_runtime_checks():
    assert runtime_violation([1.0, np.nan, 2.0]) == "nonfinite_scores"
    assert runtime_violation([1.0, np.inf]) == "nonfinite_scores"
    assert runtime_violation([3.0, 3.0, 3.0]) == "constant_scores"
    assert runtime_violation([1.0, 2.0, 3.0]) is None
