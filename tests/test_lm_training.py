"""Short LM training runs: deterministic, and they learn (loss far below uniform on a learnable text)."""

import numpy as np
import pytest

from lpzero_jax.families import get_family
from lpzero_jax.lm_training import TrainConfig, batch_order, train_lm, windows
from lpzero_jax.models.llama import LlamaConfig

FAMILY = get_family("llama")


def test_windows_and_batch_order():
    w = windows(np.arange(10), 3)
    assert w.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    order = batch_order(5, 2, 6, data_seed=0)
    assert order.shape == (6, 2)
    assert sorted(order.ravel()[:5].tolist()) == [0, 1, 2, 3, 4]  # each epoch is a permutation
    np.testing.assert_array_equal(order, batch_order(5, 2, 6, data_seed=0))
    with pytest.raises(ValueError, match="fewer than one window"):
        windows(np.arange(2), 3)


def test_training_is_deterministic_and_learns():
    rng = np.random.default_rng(0)
    pattern = rng.integers(0, 32, 50)  # a periodic text: learnable from context
    train, valid = np.tile(pattern, 40), np.tile(pattern, 8)
    config = LlamaConfig.uniform(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2)
    tc = TrainConfig(tokens=40 * 8 * 16, batch_size=8, seq_len=16, learning_rate=1e-2, eval_batch_size=25)
    a = train_lm(FAMILY, config, train, valid, tc, init_seed=0, data_seed=0)
    b = train_lm(FAMILY, config, train, valid, tc, init_seed=0, data_seed=0)
    assert a["valid_ppl"] == b["valid_ppl"] and a["train_loss_end"] == b["train_loss_end"]
    assert a["steps"] == 40 and a["valid_tokens"] == 25 * 15
    assert a["valid_ppl"] < 8 < 32  # far below the uniform perplexity of 32
    c = train_lm(FAMILY, config, train, valid, tc, init_seed=1, data_seed=0)
    assert c["valid_ppl"] != a["valid_ppl"]
