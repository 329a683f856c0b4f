"""A reduced LM vocabulary: the K-1 most frequent tokenizer ids of a corpus, plus one UNK id.

Small CPU-trained language models spend most of their time in the output softmax when the vocabulary
is GPT-2's 50257 tokens. The LLaMA mini-benchmark therefore keeps the most frequent tokens of its
training corpus (WikiText-2 `test.txt`; K = 4096 covers 92 % of its tokens and 86 % of `valid.txt`'s)
and maps every other token to UNK = K - 1. New id i < K-1 is the i-th most frequent tokenizer id
(ties broken by the smaller tokenizer id), so the mapping is a pure function of (corpus, tokenizer,
K); its `fingerprint` (SHA-1 of the kept ids) is stored in the benchmark file and checked on load.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from pathlib import Path
from typing import Optional

import numpy as np

from lpzero_jax import text


@dataclasses.dataclass(frozen=True)
class ReducedVocab:
    """kept_ids[i] = tokenizer id of new id i (i < size - 1); everything else -> unk_id = size - 1."""

    kept_ids: np.ndarray
    tokenizer_size: int

    @property
    def size(self) -> int:
        return len(self.kept_ids) + 1

    @property
    def unk_id(self) -> int:
        return len(self.kept_ids)

    @functools.cached_property
    def _table(self) -> np.ndarray:
        table = np.full(self.tokenizer_size, self.unk_id, np.int32)
        table[self.kept_ids] = np.arange(len(self.kept_ids), dtype=np.int32)
        return table

    def encode(self, ids: np.ndarray) -> np.ndarray:
        """Tokenizer ids (any shape) -> reduced ids, int32."""
        return self._table[np.asarray(ids)]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha1(np.asarray(self.kept_ids, np.int64).tobytes()).hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def reduced_vocab(corpus: str, size: int, kind: str = "gpt2",
                  vocab_path: Optional[str] = None) -> ReducedVocab:
    """The `size`-token vocabulary (size - 1 most frequent ids + UNK) of a corpus file."""
    if size < 2:
        raise ValueError(f"a reduced vocabulary needs at least 2 ids, got {size}")
    tokenizer_size = text.EXPECTED_VOCAB[kind]
    if size > tokenizer_size:
        raise ValueError(f"reduced vocabulary size {size} exceeds the {kind} tokenizer's {tokenizer_size}")
    ids = text.tokenize_corpus(str(Path(corpus)), kind, vocab_path)
    counts = np.bincount(ids, minlength=tokenizer_size)
    order = np.argsort(-counts, kind="stable")  # by count, ties by smaller id
    return ReducedVocab(kept_ids=order[:size - 1].astype(np.int64), tokenizer_size=tokenizer_size)


def lm_ids(corpus: Path, vocab_size: int, vocab_corpus: Optional[Path], kind: str = "gpt2",
           vocab_path: Optional[str] = None) -> np.ndarray:
    """All token ids of `corpus` in a model vocabulary of `vocab_size`.

    vocab_size >= the tokenizer's size: the tokenizer ids unchanged. Smaller: the reduced vocabulary
    counted on `vocab_corpus`.
    """
    ids = text.tokenize_corpus(str(Path(corpus)), kind, vocab_path)
    if vocab_size >= text.EXPECTED_VOCAB[kind]:
        return ids
    if vocab_corpus is None:
        raise ValueError(f"vocab_size {vocab_size} < the {kind} tokenizer's {text.EXPECTED_VOCAB[kind]} "
                         "needs a corpus to count the kept tokens on (vocab_corpus)")
    return reduced_vocab(str(Path(vocab_corpus)), vocab_size, kind, vocab_path).encode(ids)
