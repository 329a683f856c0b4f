"""Reader of our own trained mini-benchmarks (`scripts/llama_minibench.py` writes them).

File layout (JSON object):
  format      "lpzero_jax.minibench/1"
  family      the family whose model configs the entries hold ("llama")
  command     the exact command that produced the file
  vocab       {tokenizer, size, counted_on, fingerprint}: the LM vocabulary the models were trained in
  training    {train_corpus, valid_corpus, tokens, batch_size, seq_len, optimizer, ..., seed}
  archs       [{id, config, metrics: {valid_ppl, valid_loss, ...}, params, seconds}, ...]
Ground truth: score = -valid_ppl (higher is better, as every Arch score).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from lpzero_jax.paths import PACKAGE_DATA
from lpzero_jax.benchmarks.base import (Arch, BenchmarkFormatError, read_json_file, require,
                                        require_int, require_number)

FORMAT = "lpzero_jax.minibench/1"
DEFAULT_LLAMA_FILE = PACKAGE_DATA / "llama_minibench.json"
VOCAB_FIELDS = ("tokenizer", "size", "counted_on", "fingerprint")


def parse_arch(entry: Any, index: int, source: str,
               parse_config: Optional[Callable[[dict], Any]] = None) -> Arch:
    """Validates one `archs[]` entry; `parse_config` (e.g. llama_config_from_dict) checks its config."""
    where = f"{source} arch #{index}"
    arch_id = require(entry, "id", where)
    if not isinstance(arch_id, (str, int)) or isinstance(arch_id, bool):
        raise BenchmarkFormatError(f"{where}: id must be a string or an integer, got {arch_id!r}")
    where = f"{source} arch #{index} (id {arch_id!r})"
    config = require(entry, "config", where)
    if not isinstance(config, dict):
        raise BenchmarkFormatError(f"{where}: config must be a mapping")
    if parse_config is not None:
        try:
            parse_config(config)
        except (TypeError, ValueError, KeyError) as e:
            raise BenchmarkFormatError(f"{where}: invalid model config ({e})") from None
    metrics = require(entry, "metrics", where)
    ppl = require_number(require(metrics, "valid_ppl", where), "metrics.valid_ppl", where)
    if ppl <= 0:
        raise BenchmarkFormatError(f"{where}: metrics.valid_ppl must be positive, got {ppl}")
    extra = {"metrics": dict(metrics)}
    for key in ("params", "seconds", "seed"):
        if key in entry:
            extra[key] = entry[key]
    return Arch(arch_id=arch_id, config=config, score=-ppl, extra=extra)


def read_minibench(path: Path) -> Dict[str, Any]:
    """The whole file as a dict, with its header validated (not the entries)."""
    data = read_json_file(path)
    where = str(path)
    fmt = require(data, "format", where)
    if fmt != FORMAT:
        raise BenchmarkFormatError(f"{where}: format {fmt!r} is not {FORMAT!r}")
    vocab = require(data, "vocab", where)
    for key in VOCAB_FIELDS:
        require(vocab, key, f"{where} vocab")
    require_int(vocab["size"], "vocab.size", where, minimum=2)
    archs = require(data, "archs", where)
    if not isinstance(archs, list) or not archs:
        raise BenchmarkFormatError(f"{where}: archs must be a non-empty list")
    return data


def load_minibench(path: Path, num_archs: Optional[int] = None,
                   parse_config: Optional[Callable[[dict], Any]] = None,
                   family: Optional[str] = None) -> Tuple[List[Arch], Dict[str, Any]]:
    """(archs, header) of a mini-benchmark file; the first `num_archs` entries (all when None)."""
    data = read_minibench(path)
    if family is not None and data.get("family") != family:
        raise BenchmarkFormatError(f"{path}: holds family {data.get('family')!r}, not {family!r}")
    entries = data["archs"][:num_archs] if num_archs else data["archs"]
    archs = [parse_arch(e, i, str(path), parse_config) for i, e in enumerate(entries)]
    ids = [a.arch_id for a in archs]
    if len(set(ids)) != len(ids):
        dup = sorted({str(i) for i in ids if ids.count(i) > 1})
        raise BenchmarkFormatError(f"{path}: duplicate arch ids {dup[:5]}")
    header = {k: v for k, v in data.items() if k != "archs"}
    return archs, header


def check_vocab(header: Dict[str, Any], expected: Dict[str, Any], source: str) -> None:
    """Raises BenchmarkFormatError if the benchmark's vocabulary differs from the run's."""
    got = header["vocab"]
    diff = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    if diff:
        detail = ", ".join(f"{k}: benchmark {a!r} vs run {b!r}" for k, (a, b) in diff.items())
        raise BenchmarkFormatError(
            f"{source}: the models were trained in another vocabulary ({detail}); set the run's "
            "vocab_size / vocab_corpus to the benchmark's")


def summary(archs: List[Arch]) -> Dict[str, float]:
    """min / median / max validation perplexity of a loaded benchmark."""
    ppl = sorted(-a.score for a in archs)
    mid = len(ppl) // 2
    median = ppl[mid] if len(ppl) % 2 else 0.5 * (ppl[mid - 1] + ppl[mid])
    return {"n": len(ppl), "min_ppl": ppl[0], "median_ppl": median, "max_ppl": ppl[-1],
            "log_ppl_spread": math.log(ppl[-1]) - math.log(ppl[0])}
