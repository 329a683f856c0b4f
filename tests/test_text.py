"""Real-text batches: local vocabularies, determinism, clear errors."""

import numpy as np
import pytest

from lpzero_jax import text
from lpzero_jax.paths import DataNotFoundError


def test_bert_vocab_is_bert_uncased():
    tok = text.load_tokenizer("bert_uncased")
    assert len(tok) == 30522
    assert tok.convert_tokens_to_ids(["[CLS]", "[SEP]", "[MASK]", "the"]) == [101, 102, 103, 1996]


def test_gpt2_vocab():
    tok = text.load_tokenizer("gpt2")
    assert len(tok) == 50257
    assert tok("Hello world")["input_ids"] == [15496, 995]


def test_bert_batch_is_deterministic_real_text(data_root):
    corpus = data_root / "wikitext-2" / "valid.txt"
    a = text.bert_batch(corpus, 4, 32, seed=3)
    b = text.bert_batch(corpus, 4, 32, seed=3)
    c = text.bert_batch(corpus, 4, 32, seed=4)
    assert a.shape == (4, 32) and a.dtype == np.int32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.all(a[:, 0] == 101) and np.all(a[:, -1] == 102)
    assert np.all(a[:, 1:-1] != 0)  # no padding
    assert (a[:, 1:-1] == 100).mean() < 0.2  # mostly real words, not [UNK]


def test_missing_vocab_and_corpus_are_clear_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="vocab"):
        text.resolve_bert_vocab(str(tmp_path / "missing.txt"))
    # a user path that exists but is not a vocab file of the right size
    bad = tmp_path / "vocab.txt"
    bad.write_text("[PAD]\n[UNK]\n")
    text.load_tokenizer.cache_clear()
    with pytest.raises(ValueError, match="expected 30522"):
        text.load_tokenizer("bert_uncased", str(bad))
    text.load_tokenizer.cache_clear()
    with pytest.raises(DataNotFoundError, match="corpus file"):
        text.read_corpus(tmp_path / "nope.txt")
