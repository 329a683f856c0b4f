"""Your own benchmark as a plain JSON-lines file: one trained architecture per line.

Format `lpzero_jax.benchmark/1` (UTF-8, one JSON object per line, blank lines ignored):

  line 1, the header:
    {"format": "lpzero_jax.benchmark/1", "family": "gpt2", "metric": "valid_ppl",
     "higher_is_better": false, "description": "optional free text"}
  every further line, one architecture:
    {"id": "small-4x256", "config": {...the family's fields...}, "score": 31.7}

`score` is the measured value of `metric`; `higher_is_better` says its direction (false for a
perplexity or a loss, true for an accuracy or GLUE). Ranking always uses "higher is better"
internally, so a lower-is-better score is negated (`Arch.score`); the raw value stays in
`Arch.extra["metric"]`. Any other top-level field of a line (e.g. "params", "notes") is kept in
`Arch.extra`. Ids must be unique. `config` holds the family's fields (the family validates them;
see `FAMILY_FIELDS` below and docs/own_benchmarks.md):

  gpt2:      d_model, n_head (int or a list per layer), d_inner (int or a list per layer),
             n_layer (needed when n_head and d_inner are both ints); optional: n_token (50257),
             n_positions (1024), d_embed (d_model), div_val (1), cutoffs ([]: one plain softmax),
             tie_projs, tie_weight (true), weight_init_std (0.02), proj_init_std (0.01).
             The defaults are a GPT-2 with plain tied embeddings, as LTS builds it: the table
             scaled by sqrt(d_model) and a per-token output bias (n_token more parameters than
             HF GPT-2), head dim d_model / n_head. For HF's GPT-2 or a fixed head_size, use the
             decoder family.
  flexibert: hidden_size, encoder_layers [{operation_type, operation_parameter,
             num_operation_heads, feed_forward_dimension, num_feed_forward}, ...]
             (the `model_hparam_overrides.nas_config` fields of NAS-Bench-BERT).
  decoder:   a LitGPT-style config (LitGPT `Config` names, per-layer n_head / n_query_groups /
             intermediate_size lists) or a Hugging Face config.json dict (gpt2, gpt_neox, llama,
             mistral, qwen2, phi3); see `benchmarks/decoder_configs.py` and docs/decoder.md.
  llama:     a `LlamaConfig.to_dict()` (hidden_size, vocab_size, layers [{num_heads, num_kv_heads,
             intermediate_size, ...}], ...), vocab_size equal to the run's.

Every error names the file and the line (1-based) it comes from.
"""

from __future__ import annotations

import gzip
import json
import lzma
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from lpzero_jax.benchmarks.base import (
    Arch,
    BenchmarkFormatError,
    require,
    require_number,
)
from lpzero_jax.benchmarks.flexibert import parse_overrides
from lpzero_jax.benchmarks.lts import parse_model_config
from lpzero_jax.paths import open_text

FORMAT = "lpzero_jax.benchmark/1"
HEADER_FIELDS = ("format", "family", "metric", "higher_is_better")

ConfigParser = Callable[[Any, str], Dict[str, Any]]


def is_own_format(path: Path) -> bool:
    """Whether `path` is a file whose first non-blank line declares FORMAT."""
    path = Path(path)
    if not path.is_file():
        return False

    try:
        with open_text(path) as f:
            for line in f:
                if line.strip():
                    head = json.loads(line)
                    return isinstance(head, dict) and head.get("format") == FORMAT
    except (ValueError, OSError, EOFError, RecursionError, lzma.LZMAError):
        return False
    return False


def is_own_benchmark(path) -> bool:
    """Whether a run's `benchmark_file` is an own-format benchmark: named *.jsonl(.gz), or a file
    whose first line declares FORMAT."""
    return str(path).endswith((".jsonl", ".jsonl.gz")) or is_own_format(Path(path).expanduser())


def uses_own_benchmark(config) -> bool:
    """Whether a run config reads an own-format benchmark (`benchmark_file`, `is_own_benchmark`)."""
    path = config.get("benchmark_file") if config is not None else None
    return bool(path) and is_own_benchmark(path)


def read_header(path: Path) -> Dict[str, Any]:
    """The validated header of an own-format file (the file's first non-blank line)."""
    return _read(path)[0]


def _read(path: Path) -> Tuple[Dict[str, Any], List[Tuple[int, Any]]]:
    """(header, [(line number, parsed object), ...]) of the file."""

    path = Path(path)
    if not path.is_file():
        raise BenchmarkFormatError(f"{path}: benchmark file does not exist")
    rows, number = [], 0
    try:
        with open_text(path) as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise BenchmarkFormatError(f"{path} line {number}: not valid JSON ({e.msg}, "
                                               f"column {e.colno})") from None
    except RecursionError:
        raise BenchmarkFormatError(f"{path} line {number + 1}: not valid JSON (nested too "
                                   "deeply)") from None
    except (UnicodeDecodeError, EOFError, lzma.LZMAError, gzip.BadGzipFile) as e:
        raise BenchmarkFormatError(f"{path} line {number + 1}: not a UTF-8 text file "
                                   f"({' '.join(str(e).split())[:120]}); a benchmark file is "
                                   "JSON lines (optionally .gz / .xz)") from None
    if not rows:
        raise BenchmarkFormatError(f"{path}: the file is empty; the first line must be a header "
                                   f'{{"format": "{FORMAT}", "family": ..., "metric": ..., '
                                   '"higher_is_better": ...}')
    number, header = rows[0]
    where = f"{path} line {number} (header)"
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BenchmarkFormatError(f"{where}: the first line must be a header with "
                                   f'"format": "{FORMAT}"')
    for key in HEADER_FIELDS:
        require(header, key, where)
    if not isinstance(header["higher_is_better"], bool):
        raise BenchmarkFormatError(f"{where}: higher_is_better must be true or false, got "
                                   f"{header['higher_is_better']!r}")
    if not isinstance(header["metric"], str) or not header["metric"]:
        raise BenchmarkFormatError(f"{where}: metric must name the measured score, e.g. \"valid_ppl\"")
    if len(rows) < 2:
        raise BenchmarkFormatError(f"{path}: no architecture lines after the header")
    return header, rows[1:]


def load_own(path: Path, family: str, parse_config: ConfigParser,
             num_archs: Optional[int] = None,
             allow_missing_score: bool = False) -> Tuple[List[Arch], Dict[str, Any]]:
    """(archs, header) of an own-format file for `family`; the first `num_archs` lines (all when
    None). `parse_config(raw, where)` validates one line's config and returns it as the family's
    Arch config (raising BenchmarkFormatError naming `where`). `allow_missing_score` (only for
    ranking new candidates, the `predict` mode): a line without "score" (or with null) gets NaN."""
    header, rows = _read(path)
    if header["family"] != family:
        raise BenchmarkFormatError(f"{path} line 1: the file holds family {header['family']!r}, "
                                   f"the run is {family!r}; set --config=<{header['family']}> "
                                   "or fix the header")
    if num_archs is not None:
        rows = rows[:num_archs]
    archs, seen = [], {}
    for number, row in rows:
        where = f"{path} line {number}"
        arch_id = require(row, "id", where)
        if not isinstance(arch_id, (str, int)) or isinstance(arch_id, bool):
            raise BenchmarkFormatError(f"{where}: id must be a string or an integer, got {arch_id!r}")
        if arch_id in seen:
            raise BenchmarkFormatError(f"{where}: id {arch_id!r} is already used on line {seen[arch_id]}")
        seen[arch_id] = number
        where = f"{path} line {number} (id {arch_id!r})"
        if allow_missing_score and isinstance(row, dict) and row.get("score") is None:
            value = float("nan")  # an unscored candidate, for `predict`
        else:
            value = require_number(require(row, "score", where), "score", where)
            check_metric_value(header["metric"], value, where)
        config = parse_config(require(row, "config", where), where)
        extra = {k: v for k, v in row.items() if k not in ("id", "config", "score")}
        extra["metric"] = value
        archs.append(Arch(arch_id=arch_id, config=config,
                          score=value if header["higher_is_better"] else -value, extra=extra))
    return archs, header


# metrics whose values are positive by definition (a perplexity is exp of a mean NLL >= 0)
_POSITIVE_METRICS = ("ppl", "perplexity")


def check_metric_value(metric: str, value: float, where: str) -> None:
    """BenchmarkFormatError when `value` is impossible for `metric`: a perplexity must be > 0."""
    name = str(metric).lower()
    if any(k in name for k in _POSITIVE_METRICS) and value <= 0:
        raise BenchmarkFormatError(f"{where}: score {value!r} is not a {metric} (a perplexity is "
                                   "positive); fix the score or the header's metric")


def check_fields(raw: Any, required: Tuple[str, ...], optional: Tuple[str, ...], where: str) -> dict:
    """`raw` as a dict after checking it is a mapping with every required field and no unknown one."""
    if not isinstance(raw, dict):
        raise BenchmarkFormatError(f"{where}: config must be a JSON object, got {type(raw).__name__}")
    missing = [k for k in required if k not in raw]
    if missing:
        raise BenchmarkFormatError(f"{where}: config misses {missing}; required: {list(required)}")
    unknown = sorted(set(raw) - set(required) - set(optional))
    if unknown:
        raise BenchmarkFormatError(f"{where}: unknown config field(s) {unknown}; known: "
                                   f"{sorted(required + optional)}")
    return dict(raw)


# --- per-family config readers -------------------------------------------------------------------

GPT2_REQUIRED = ("d_model", "n_head", "d_inner")
GPT2_OPTIONAL = ("n_layer", "n_token", "n_positions", "d_embed", "div_val", "cutoffs", "tie_projs",
                 "tie_weight", "weight_init_std", "proj_init_std")
GPT2_N_TOKEN = 50257  # GPT-2's byte-level BPE
GPT2_N_POSITIONS = 1024


def parse_gpt2_config(raw: Any, where: str) -> Dict[str, Any]:
    """An own-format GPT-2 config -> the fields `benchmarks.lts.parse_model_config` returns (so the
    family builds it exactly as an LTS architecture). Defaults: a plain tied-embedding GPT-2."""

    d = check_fields(raw, GPT2_REQUIRED, GPT2_OPTIONAL, where)
    lists = [d[k] for k in ("n_head", "d_inner") if isinstance(d[k], list)]
    if "n_layer" not in d:
        if not lists:
            raise BenchmarkFormatError(f"{where}: give n_layer, or n_head / d_inner as per-layer lists")
        d["n_layer"] = len(lists[0])
    n_token = d.get("n_token", GPT2_N_TOKEN)
    cutoffs = list(d.get("cutoffs", []))
    if isinstance(n_token, int) and (not cutoffs or cutoffs[-1] != n_token):
        cutoffs.append(n_token)  # the last cluster ends at the vocabulary size
    lts_fields = {
        "n_layer": d["n_layer"], "d_model": d["d_model"], "n_head": d["n_head"],
        "d_inner": d["d_inner"], "d_embed": d.get("d_embed", -1), "n_token": n_token,
        "div_val": d.get("div_val", 1), "cutoffs": cutoffs,
        "tie_projs": d.get("tie_projs", [False] * len(cutoffs)),
        "tie_weight": d.get("tie_weight", True), "tgt_len": d.get("n_positions", GPT2_N_POSITIONS),
        "weight_init_std": d.get("weight_init_std", 0.02),
        "proj_init_std": d.get("proj_init_std", 0.01),
    }
    return parse_model_config(lts_fields, where)


def parse_flexibert_config(raw: Any, where: str) -> Dict[str, Any]:
    """An own-format FlexiBERT config (hidden_size, encoder_layers) -> the reader's Arch config."""

    d = check_fields(raw, ("hidden_size", "encoder_layers"), (), where)
    return parse_overrides(d["hidden_size"], d["encoder_layers"], where)

