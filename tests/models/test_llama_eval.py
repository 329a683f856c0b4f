"""Layer-by-layer perplexity equals the whole-model loss; evaluation windows are spread and fixed."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from lpzero_jax.families import get_family
from lpzero_jax.models.llama import Llama, LlamaConfig, LlamaLayerConfig, lm_loss
from lpzero_jax.models.llama_eval import perplexity, spread_windows, windows_nll


def test_layerwise_nll_equals_whole_model_loss():
    layers = (LlamaLayerConfig(24, 4, 2), LlamaLayerConfig(16, 4, 2), LlamaLayerConfig(24, 4, 2))
    config = LlamaConfig(vocab_size=50, hidden_size=16, layers=layers, tie_word_embeddings=True)
    params = get_family("llama").init_params(config, 1)
    ids = np.random.default_rng(0).integers(0, 50, size=(5, 9)).astype(np.int32)
    model = Llama(config)
    x = jnp.asarray(ids)
    want = float(lm_loss(model.apply(params, model.apply(params, x, method=model.embed)), x))
    total, count = windows_nll(config, params, ids, batch_size=2)  # batches 2, 2, 1
    assert count == 5 * 8
    assert total / count == pytest.approx(want, rel=1e-5)
    m = perplexity(config, params, ids, batch_size=5)
    assert m["ppl"] == pytest.approx(math.exp(want), rel=1e-5) and m["tokens"] == 40


def test_spread_windows_cover_the_text_evenly():
    ids = np.arange(100)
    w = spread_windows(ids, 4, 10)
    assert w[:, 0].tolist() == [0, 30, 60, 90] and w.shape == (4, 10) and w.dtype == np.int32
    with pytest.raises(ValueError, match="fewer than 11 windows"):
        spread_windows(ids, 11, 10)
