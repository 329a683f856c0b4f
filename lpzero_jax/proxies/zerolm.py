"""ZeroLM (Chen, Ding, Wang & Pedrycz, 2025): data-free module capacity from weight SVDs, with the
attention and FFN parts balanced by alpha.

What the paper's text (the part we have: title, summary, abstract, figure captions) specifies:
a data-free proxy; the capacity of a module is estimated from SVD statistics of its weights; the
Transformer is split into Attention and FFN sub-modules whose capacities are aggregated with a
balance parameter alpha; alpha is set either by "benchmark sampling" or by a "heuristic
correlation approach" (FlexiBERT: rho 0.76, tau 0.53). The formulas are not in that text, so the
following are our choices (see docs/proxies.md):

- capacity of a weight matrix: its nuclear norm ||W||_* (the sum of its singular values, the
  standard SVD measure of a matrix's capacity / convex surrogate of its rank);
- module capacity: the sum over the module's linear weights at initialisation (no data, no
  forward pass); Attention = `family.weight_role` "attention" + "attention_output", FFN = "ffn";
- aggregation: S(alpha) = alpha * log C_attn + (1 - alpha) * log C_ffn, i.e. the weighted geometric
  mean of the two capacities. In log space a rescaling of either capacity only shifts S, so alpha
  alone sets how much each part moves the ranking;
- alpha by benchmark sampling (`alpha_by_sampling`): the alpha in [0, 1] (grid step 0.01) that
  maximises Spearman's rho on a random sample of benchmark architectures (default 50, the sample
  size LPZero searches with), then applied to all architectures;
- alpha by heuristic correlation (`alpha_by_correlation`): each part weighted by its own rank
  correlation with the ground truth on the same sample, alpha = rho_attn+ / (rho_attn+ + rho_ffn+)
  (negative correlations clipped to 0; 0.5 when both are 0).

Registered per-architecture proxies: 'zerolm_attention' (log C_attn), 'zerolm_ffn' (log C_ffn)
and 'zerolm' (S at `config.zerolm.alpha`, default 0.5). The two fitted variants are derived from
the component columns after all architectures are scored (`DERIVED` entry below).
"""

from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple

import numpy as np

from lpzero_jax import evaluation
from lpzero_jax.proxies.base import (
    NO_PASS,
    WEIGHTS_ONLY,
    ArchContext,
    register_derived,
    register_proxy,
)
from lpzero_jax.proxies.common import nuclear_norm, pick, role_selector

DEFAULT_ALPHA = 0.5
DEFAULT_SAMPLE_SIZE = 50
ALPHA_GRID = np.round(np.linspace(0.0, 1.0, 101), 2)


PARTS = {"attention": ("attention", "attention_output"), "ffn": ("ffn",)}


def log_capacities(ctx: ArchContext) -> Dict[str, float]:
    """{'attention': log C_attn, 'ffn': log C_ffn} from the initial weights (NaN for a part the
    model does not have). One cached stage per architecture, shared by the ZeroLM proxies."""
    def build():
        params, out = ctx.params, {}
        for part, roles in PARTS.items():
            paths = ctx.linear_paths(role_selector(ctx.family, *roles))
            capacity = sum(nuclear_norm(w) for w in pick(params, paths))
            out[part] = math.log(capacity) if capacity > 0 else float("nan")
        return out
    return ctx.cached("zerolm_capacity", build)


def combine(log_attn, log_ffn, alpha: float):
    """S(alpha) = alpha * log C_attn + (1 - alpha) * log C_ffn (element-wise for arrays)."""
    return alpha * np.asarray(log_attn, np.float64) + (1.0 - alpha) * np.asarray(log_ffn, np.float64)


@register_proxy("zerolm_attention", factors=WEIGHTS_ONLY, passes=NO_PASS)
def zerolm_attention(ctx: ArchContext) -> float:
    return log_capacities(ctx)["attention"]


@register_proxy("zerolm_ffn", factors=WEIGHTS_ONLY, passes=NO_PASS)
def zerolm_ffn(ctx: ArchContext) -> float:
    return log_capacities(ctx)["ffn"]


@register_proxy("zerolm", factors=WEIGHTS_ONLY, passes=NO_PASS)
def zerolm(ctx: ArchContext) -> float:
    alpha = float((ctx.config.get("zerolm") or {}).get("alpha", DEFAULT_ALPHA))
    parts = log_capacities(ctx)
    return float(combine(parts["attention"], parts["ffn"], alpha))


def alpha_by_sampling(log_attn, log_ffn, truth, sample: Sequence[int]) -> float:
    """The grid alpha with the highest Spearman rho on the sampled architectures."""
    idx = np.asarray(sample)
    a, f, t = (np.asarray(x, np.float64)[idx] for x in (log_attn, log_ffn, truth))
    rhos = [evaluation.spearman_rho(combine(a, f, alpha), t) for alpha in ALPHA_GRID]
    rhos = np.nan_to_num(np.asarray(rhos), nan=-np.inf)
    return float(ALPHA_GRID[int(np.argmax(rhos))])


def alpha_by_correlation(log_attn, log_ffn, truth, sample: Sequence[int]) -> float:
    """alpha = rho_attn+ / (rho_attn+ + rho_ffn+) from each part's Spearman rho on the sample."""
    idx = np.asarray(sample)
    t = np.asarray(truth, np.float64)[idx]
    rho_a = evaluation.spearman_rho(np.asarray(log_attn, np.float64)[idx], t)
    rho_f = evaluation.spearman_rho(np.asarray(log_ffn, np.float64)[idx], t)
    rho_a, rho_f = (max(0.0, r) if np.isfinite(r) else 0.0 for r in (rho_a, rho_f))
    return 0.5 if rho_a + rho_f == 0 else float(rho_a / (rho_a + rho_f))


@register_derived("zerolm")
def fitted_variants(columns: Dict[str, np.ndarray], truth: np.ndarray,
                    config) -> Dict[str, Tuple[np.ndarray, str]]:
    """'zerolm_sampled_alpha' and 'zerolm_heuristic_alpha' from the two component columns.

    Both fit alpha on the same random sample (`config.zerolm.sample_size`, seed `config.seed`) of
    architectures whose component values are finite; the returned scores cover all of them.
    """
    if "zerolm_attention" not in columns or "zerolm_ffn" not in columns:
        return {}
    log_attn, log_ffn = columns["zerolm_attention"], columns["zerolm_ffn"]
    finite = np.flatnonzero(np.isfinite(log_attn) & np.isfinite(log_ffn) & np.isfinite(truth))
    size = int((config.get("zerolm") or {}).get("sample_size", DEFAULT_SAMPLE_SIZE))
    if len(finite) < 3:
        return {}
    size = min(size, len(finite))
    sample_pos, _ = evaluation.sample_split(len(finite), size, int(config.get("seed", 0)))
    sample = finite[sample_pos]
    out = {}
    for name, fit in (("zerolm_sampled_alpha", alpha_by_sampling),
                      ("zerolm_heuristic_alpha", alpha_by_correlation)):
        alpha = fit(log_attn, log_ffn, truth, sample)
        out[name] = (combine(log_attn, log_ffn, alpha),
                     f"alpha={alpha:.2f} fitted on {size} sampled archs")
    return out
