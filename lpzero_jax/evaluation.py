"""Rank correlations between proxy scores and ground truth (scipy.stats), and held-out splits."""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np
from scipy import stats


def _finite_pairs(scores: Sequence[float], truth: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if s.shape != t.shape:
        raise ValueError(f"{s.shape[0]} scores for {t.shape[0]} ground-truth values")
    keep = np.isfinite(s) & np.isfinite(t)
    return s[keep], t[keep]


def spearman_rho(scores: Sequence[float], truth: Sequence[float]) -> float:
    """Spearman's rho over the finite pairs; NaN if fewer than 3 pairs or constant scores."""
    s, t = _finite_pairs(scores, truth)
    if len(s) < 3 or np.all(s == s[0]):
        return float("nan")
    return float(stats.spearmanr(s, t)[0])


def kendall_tau(scores: Sequence[float], truth: Sequence[float]) -> float:
    """Kendall's tau-b over the finite pairs; NaN if fewer than 3 pairs or constant scores."""
    s, t = _finite_pairs(scores, truth)
    if len(s) < 3 or np.all(s == s[0]):
        return float("nan")
    return float(stats.kendalltau(s, t)[0])


def rank_correlations(scores: Sequence[float], truth: Sequence[float]) -> Dict[str, float]:
    """{'kendall_tau', 'spearman_rho', 'n' (finite pairs used), 'n_nonfinite' (dropped)}."""
    s = np.asarray(scores, dtype=np.float64)
    n_bad = int(np.sum(~np.isfinite(s)))
    return {"kendall_tau": kendall_tau(scores, truth), "spearman_rho": spearman_rho(scores, truth),
            "n": int(len(s) - n_bad), "n_nonfinite": n_bad}


def sample_split(num: int, sample_size: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """(sample, held_out) index arrays: `sample_size` indices drawn without replacement, and the rest."""
    if not 0 < sample_size <= num:
        raise ValueError(f"cannot sample {sample_size} of {num} architectures")
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(num, size=sample_size, replace=False))
    held_out = np.setdiff1d(np.arange(num), sample)
    return sample, held_out
