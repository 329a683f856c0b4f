"""Reader of a LoNAS subnet benchmark: subnets sliced out of one pretrained LLaMA, with perplexity.

`scripts/smollm_lonas_bench.py` writes it (SmolLM2-135M's GGUF as the supernet). Subnets differ
only in their layers' FFN widths (LoNAS's elastic width, the leading channels kept), so an entry
stores its width per layer and the supernet config lives once in the header.

File layout (JSON object):
  format      "lpzero_jax.lonas_bench/1"
  family      the family that reads it ("smollm")
  command     the exact command that produced the file
  supernet    {file, sha256, config: LlamaConfig.to_dict()}: the GGUF the weights are sliced from
  space       {width_ratios, widths (per layer, largest first), seed, num_random}
  evaluation  {corpus, windows, seq_len, placement, tokens}: the fixed text slice of the perplexity
  cost        {total_seconds, mean_seconds, host}
  archs       [{id, ffn: [width per layer], params, metrics: {ppl, loss, tokens}, seconds}, ...]
Ground truth: score = -ppl (higher is better, as every Arch score).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from lpzero_jax.benchmarks.base import (
    Arch,
    BenchmarkFormatError,
    read_json_file,
    require,
    require_int,
    require_number,
)
from lpzero_jax.models.llama import llama_config_from_dict
from lpzero_jax.paths import PACKAGE_DATA

FORMAT = "lpzero_jax.lonas_bench/1"
DEFAULT_SMOLLM_FILE = PACKAGE_DATA / "smollm2_lonas.json"


def supernet_config(header: Dict[str, Any], where: str):
    """The header's supernet as a LlamaConfig."""

    supernet = require(header, "supernet", where)
    try:
        return llama_config_from_dict(require(supernet, "config", f"{where} supernet"))
    except (TypeError, ValueError, KeyError) as e:
        raise BenchmarkFormatError(f"{where}: invalid supernet config ({e})") from None


def subnet_config(supernet, ffn, where: str):
    """The supernet with the given FFN width per layer (each at most the supernet's)."""
    if not isinstance(ffn, list) or len(ffn) != supernet.num_layers:
        raise BenchmarkFormatError(f"{where}: ffn must list {supernet.num_layers} widths, got {ffn!r}")
    layers = []
    for i, (w, sup) in enumerate(zip(ffn, supernet.layers)):
        require_int(w, f"ffn[{i}]", where)
        if w > sup.intermediate_size:
            raise BenchmarkFormatError(f"{where}: ffn[{i}] = {w} exceeds the supernet's "
                                       f"{sup.intermediate_size}")
        layers.append(dataclasses.replace(sup, intermediate_size=w))
    return dataclasses.replace(supernet, layers=tuple(layers))


def load_lonas_bench(path: Path, num_archs: Optional[int] = None,
                     family: Optional[str] = None) -> Tuple[List[Arch], Dict[str, Any]]:
    """(archs, header) of a LoNAS subnet benchmark; the first `num_archs` entries (all when None).
    Each Arch's config is the full subnet `LlamaConfig.to_dict()`."""
    where = str(path)
    data = read_json_file(path)
    if require(data, "format", where) != FORMAT:
        raise BenchmarkFormatError(f"{where}: format {data['format']!r} is not {FORMAT!r}")
    if family is not None and data.get("family") != family:
        raise BenchmarkFormatError(f"{where}: holds family {data.get('family')!r}, not {family!r}")
    supernet = supernet_config(data, where)
    entries = require(data, "archs", where)
    if not isinstance(entries, list) or not entries:
        raise BenchmarkFormatError(f"{where}: archs must be a non-empty list")
    archs = []
    for i, e in enumerate(entries[:num_archs] if num_archs else entries):
        at = f"{where} arch #{i}"
        arch_id = require(e, "id", at)
        at = f"{where} arch #{i} (id {arch_id!r})"
        config = subnet_config(supernet, require(e, "ffn", at), at)
        metrics = require(e, "metrics", at)
        ppl = require_number(require(metrics, "ppl", at), "metrics.ppl", at)
        if ppl <= 0:
            raise BenchmarkFormatError(f"{at}: metrics.ppl must be positive, got {ppl}")
        extra = {"metrics": dict(metrics), "ffn": list(e["ffn"])}
        for key in ("params", "seconds"):
            if key in e:
                extra[key] = e[key]
        archs.append(Arch(arch_id=arch_id, config=config.to_dict(), score=-ppl, extra=extra))
    ids = [a.arch_id for a in archs]
    if len(set(ids)) != len(ids):
        raise BenchmarkFormatError(f"{where}: duplicate arch ids")
    return archs, {k: v for k, v in data.items() if k != "archs"}
