"""Shared fixtures: the data root (../shared/data or $LPZERO_DATA) and small real-text batches."""

import os

import numpy as np
import pytest

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def data_root():
    from lpzero_jax.paths import data_root as resolve

    return resolve()


@pytest.fixture(scope="session")
def bert_ids(data_root):
    """[2, 16] BERT WordPiece ids of real WikiText."""
    from lpzero_jax import text

    return text.bert_batch(data_root / "wikitext-2" / "valid.txt", 2, 16, seed=0)


def tiny_config(**overrides):
    """A small FlexiBERT run config (2 x 16 tokens, 256-value samples)."""
    from ml_collections import ConfigDict

    c = ConfigDict(dict(family="flexibert", seed=0, data_root=None, benchmark_file=None, num_archs=0,
                        arch_reading="benchmark", corpus="wikitext-2/valid.txt", corpus_file=None,
                        vocab_path=None, batch_size=2, seq_len=16, proxies="params", proxy_loss="tied_lm",
                        inputs=dict(sample_size=256, sample_seed=0, cache_dir=None)))
    c.update(overrides)
    return c


@pytest.fixture
def rng():
    return np.random.default_rng(0)
