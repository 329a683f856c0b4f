"""Rule-based Pruning Strategy (paper Section 3.2, Appendix D / Table 11).

Static rules are data: (rule id, relationship from Table 11, the adjacent op pair in application order
that triggers it, why). A genome is pruned before evaluation when any branch contains a triggering
pair, when both branches are pruned, or when a branch normalises a scalar (its value is then the same
constant for every architecture). Runtime checks run after evaluation: non-finite scores (NaN/Inf)
and constant scores across architectures mark the candidate invalid with a reason; nothing crashes.
(Shape mismatches cannot occur: every op is defined on every tensor rank, see ops.py.)
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

import numpy as np

from lpzero_jax.expression.genome import Genome
from lpzero_jax.expression.ops import UNARY

# (first op, then op) pairs in application order, i.e. `then(first(x))`
STATIC_RULES: Tuple[Tuple[str, str, Tuple[str, str], str], ...] = (
    ("inverse_log_exp", "inverse", ("exp", "log"), "log(exp(x)) = x"),
    ("inverse_exp_log", "inverse", ("log", "exp"), "exp(log(x)) = x for x > 0"),
    ("inverse_square_sqrt", "inverse", ("square", "sqrt"), "sqrt(x^2) = |x|"),
    ("inverse_sqrt_square", "inverse", ("sqrt", "square"), "sqrt(x)^2 = relu(x)"),
    ("inverse_reciprocal", "inverse for non-zero", ("reciprocal", "reciprocal"), "1/(1/x) = x"),
    ("inverse_neg", "inverse", ("neg", "neg"), "-(-x) = x"),
    ("conflict_neg_log", "conflict", ("neg", "log"), "log of negated positive inputs is undefined"),
    ("conflict_neg_sqrt", "conflict", ("neg", "sqrt"), "sqrt of negated positive inputs is undefined"),
    ("redundant_abs_abslog", "derivative", ("abs", "abslog"), "abslog(|x|) = abslog(x)"),
    ("redundant_abs_l1", "generalization", ("abs", "l1"), "L1 norm already takes |x|"),
    ("redundant_abs_abs", "idempotent", ("abs", "abs"), "||x|| = |x|"),
    ("redundant_relu_relu", "special case", ("relu", "relu"), "relu(relu(x)) = relu(x)"),
    ("redundant_log_logsoftmax", "derivative", ("softmax", "log"), "log(softmax(x)) = logsoftmax(x)"),
    ("redundant_minmax_minmax", "type", ("minmax", "minmax"), "min-max scaling is idempotent"),
)
RULE_IDS = tuple(r[0] for r in STATIC_RULES) + ("both_branches_pruned", "normalised_scalar")
RUNTIME_REASONS = ("nonfinite_scores", "constant_scores")


def static_violation(genome: Genome) -> Optional[str]:
    """The id of the first static rule the genome breaks, or None if it may be evaluated."""
    if genome.branch_pruned(0) and genome.branch_pruned(1):
        return "both_branches_pruned"
    for chain in genome.unary:
        ops = [op for op in chain if op != "identity"]
        if "prune" in ops:
            continue
        for first, then in zip(ops, ops[1:]):
            for rule_id, _, pair, _ in STATIC_RULES:
                if (first, then) == pair:
                    return rule_id
        reduced = False
        for op in ops:
            kind = UNARY[op].kind
            if reduced and (kind == "normalise" or op == "std"):
                return "normalised_scalar"
            reduced = reduced or kind == "reduce"
    return None


def runtime_violation(scores: Sequence[float]) -> Optional[str]:
    """'nonfinite_scores' or 'constant_scores' if the candidate's scores are unusable, else None."""
    s = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        return "nonfinite_scores"
    if np.ptp(s) <= 1e-12 * max(1.0, float(np.max(np.abs(s)))):
        return "constant_scores"
    return None


@dataclasses.dataclass
class PruneCounter:
    """Counts of pruned candidates per rule (for the search report)."""

    counts: dict = dataclasses.field(default_factory=lambda: {r: 0 for r in RULE_IDS + RUNTIME_REASONS})

    def add(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1

    def total(self) -> int:
        return int(sum(self.counts.values()))
