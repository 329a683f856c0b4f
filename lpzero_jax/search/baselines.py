"""Baselines a few-shot method must beat, each chosen on the S labelled architectures only.

  best_zoo_on_S:  every hand-crafted (zoo) proxy scored on S; the one with the largest |rho|, with
                  its sign, is the answer (ties: the first in table order);
  params:         the parameter count (no choice made);
  oracle_zoo:     the zoo proxy with the largest |rho| over EVERY architecture, held-out ones
                  included: a reference line a user cannot draw, always labelled as an oracle.

Random search (the genome baseline) is `search/random_search.py`, run at evolution's budget by
`search/few_shot.py`.
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from lpzero_jax import evaluation


def best_by_abs_rho(values: np.ndarray, names: Sequence[str], truth: np.ndarray) -> Dict:
    """{name, index, sign, rho} of the column of `values` [n, F] with the largest |Spearman rho|
    with `truth` [n] (NaN rows of a column are left out of its rho; first of equals)."""
    best = None
    for j, name in enumerate(names):
        rho = evaluation.spearman_rho(values[:, j], truth)
        if np.isfinite(rho) and (best is None or abs(rho) > abs(best["rho"])):
            best = {"name": str(name), "index": j, "sign": 1.0 if rho >= 0 else -1.0, "rho": float(rho)}
    if best is None:
        raise ValueError("no proxy has a finite rank correlation on these architectures")
    return best


def best_zoo_on_S(values: np.ndarray, names: Sequence[str], truth_sample: np.ndarray,
                  sample_idx: np.ndarray) -> Dict:
    """The zoo proxy chosen on S: best_by_abs_rho over the sample rows only; adds `scores` [N]
    (sign * values of every row, the held-out ones to be scored against their truth)."""
    values = np.asarray(values, np.float64)
    pick = best_by_abs_rho(values[sample_idx], names, np.asarray(truth_sample, np.float64))
    return dict(pick, scores=pick["sign"] * values[:, pick["index"]])


def oracle_zoo(values: np.ndarray, names: Sequence[str], truth: np.ndarray) -> Dict:
    """ORACLE (labelled so in every output): the zoo proxy with the best |rho| over all rows."""
    values = np.asarray(values, np.float64)
    pick = best_by_abs_rho(values, names, np.asarray(truth, np.float64))
    return dict(pick, scores=pick["sign"] * values[:, pick["index"]])
