"""lpzero_jax: LPZero zero-cost proxy search for language models, in JAX/Flax.

The Python API (lpzero_jax/api.py) is available from the package itself, imported on first use:
`lpzero_jax.rank`, `proxy_search`, `score_model`, `load_benchmark`, `text_batch`, `RankResult`,
`SearchResult`, `ModelFamily`; the few-shot ranking: `few_shot`, `fit_ranker`, `predict`.
"""

__version__ = "0.1.0"

API = ("rank", "proxy_search", "score_model", "load_benchmark", "text_batch", "benchmark_config",
       "experiment_config", "RankResult", "SearchResult", "ModelFamily", "few_shot", "fit_ranker",
       "predict")
__all__ = list(API)


def __getattr__(name):
    """Lazy re-export of the API (keeps `import lpzero_jax` free of JAX until it is used). The
    search is `proxy_search`: `lpzero_jax.search` is the subpackage of the search itself."""
    if name in API:
        from lpzero_jax import api

        return getattr(api, name)
    raise AttributeError(f"module 'lpzero_jax' has no attribute {name!r}")
