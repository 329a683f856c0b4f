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
    """The FlexiBERT experiment config shrunk for tests: 2 x 16 tokens, 256-value samples, no
    persistent compilation cache."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "experiments" / "flexibert.py"
    spec = importlib.util.spec_from_file_location("flexibert_experiment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.seed = 0
    c.batch_size, c.seq_len = 2, 16
    c.proxies = "params"
    c.compilation_cache_dir = ""
    c.inputs.sample_size = 256
    c.update(overrides)
    return c


@pytest.fixture
def rng():
    return np.random.default_rng(0)
