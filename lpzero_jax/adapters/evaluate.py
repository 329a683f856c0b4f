"""Perplexity of LoNAS subnets with the super-adapter: its slice merged into the weights, then the
layer-by-layer evaluation of `models/llama_eval.py` (layers compiled once per FFN width)."""

from __future__ import annotations

import time
from typing import Dict, Optional

import numpy as np

from lpzero_jax.adapters.lora import AdapterSpec, merged_subnet
from lpzero_jax.models.llama_eval import perplexity
from lpzero_jax.models.lonas import Choice


def subnet_perplexity(spec: AdapterSpec, base, adapter: Optional[dict], choice: Choice, eval_windows: np.ndarray,
                      family, batch_size: int = 8) -> Dict[str, float]:
    """{loss, ppl, tokens, seconds} of one subnet on `eval_windows` [N, S]; adapter None: the
    sliced base weights alone (the damage-only benchmark's measure)."""
    t = time.perf_counter()
    config, params = merged_subnet(base, adapter, spec, choice, family)
    out = perplexity(config, params, eval_windows, batch_size)
    return dict(out, seconds=time.perf_counter() - t)
