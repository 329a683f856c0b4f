"""Synthetic pools for the study tests: random compact inputs whose ground truth follows one of
their statistics, so that a search has something to find (no model, no extraction)."""

import numpy as np
from ml_collections import ConfigDict

from lpzero_jax import inputs
from lpzero_jax.study.pool import Pool


def fake_pool(n=24, k=32, seed=0, family="flexibert", groups=False) -> Pool:
    rng = np.random.default_rng(seed)
    items, truth = [], []
    for i in range(n):
        layers = 2 + (i % 3)
        values, counts = {}, {}
        for name in inputs.INPUT_NAMES:
            rows = 1 if name == "J" else layers
            values[name] = (rng.standard_normal((rows, 2, k)) * (1 + rng.random())).astype(np.float32)
            counts[name] = np.full((rows, 2), k, np.int64)
        items.append(inputs.CompactInputs(values, counts))
        truth.append(layers * float(np.abs(values["W"]).mean()) + 0.1 * rng.standard_normal())
    references = {"params": rng.random(n) * 1e6}
    if groups:
        references["params_attn"] = rng.random(n) * 1e5
    return Pool(family=family, arch_ids=[f"a{i}" for i in range(n)], truth=np.asarray(truth),
                inputs=items, references=references, fingerprint=f"fake{seed}",
                positions=np.arange(n), benchmark_size=n)


def fake_search_config(config: ConfigDict, sample_archs=10) -> ConfigDict:
    """`config` with a tiny search: population 6, 12 generations, S = sample_archs."""
    config.search.update(dict(population=6, generations=12, pool_ratio=0.34,
                              sample_archs=sample_archs, checkpoint_every=5))
    return config
