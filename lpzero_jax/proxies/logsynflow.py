"""LogSynflow (Cavagnero et al., 2023): S = sum over linear weights of |W| * |log |dR/dW||.

Same data-free pass as Synflow (|params|, all-ones word embeddings, R the family's synflow
objective); the formula is LPZero's `logsynflow` (weights already made absolute there). Weights
whose gradient is exactly zero carry no signal and contribute 0 (the reference would produce
|log 0| = inf and a useless score).
"""

import numpy as np

from lpzero_jax.proxies.base import SYNFLOW, ArchContext, data_free_pass_factors, register_proxy
from lpzero_jax.proxies.common import finite_or_nan, host_sum, pick


def _log_saliency(w: np.ndarray, g: np.ndarray) -> np.ndarray:
    """sum |w| * |log |g||, entries with g == 0 left out."""
    mag = np.abs(g)
    safe = np.where(mag > 0, mag, np.float32(1.0))
    return np.sum(np.where(mag > 0, np.abs(w) * np.abs(np.log(safe)), np.float32(0.0)))


@register_proxy("logsynflow", factors=data_free_pass_factors, passes=SYNFLOW)
def logsynflow(ctx: ArchContext) -> float:
    paths = ctx.linear_paths()
    return finite_or_nan(host_sum(_log_saliency, pick(ctx.params, paths),
                                  pick(ctx.synflow_grads(), paths)))
