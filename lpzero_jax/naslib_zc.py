"""A rank run's scores in NASLib's zero-cost benchmark layout (NAS-Bench-Suite-Zero), for NAS tools.

NASLib loads `zc_<search_space>.json` with `get_zc_benchmark_api(search_space, dataset)`, which
returns `data[dataset]`, and reads `data[dataset][arch][proxy]["score"]` (and "time") for each
zero-cost proxy and `data[dataset][arch]["val_accuracy"]` as the ground truth. We write:

  {dataset: {arch_id: {proxy: {"score": value, "time": seconds}, ...,
                       "val_accuracy": ground truth (higher is better), "metric": raw value,
                       "id": index in the benchmark}}}

- search space: the benchmark's name (an own benchmark file's stem, e.g. `gpt_s` for gpt_s.jsonl;
  else the family: `gpt2` = LTS, `flexibert`, `llama`), so the file is `zc_<benchmark>.json`;
- dataset: an own benchmark header's "dataset" field, else the benchmark's name again;
- val_accuracy: the benchmark's ground truth as the tool ranks it, higher is better (a perplexity is
  negated: `Arch.score`); the raw measured value is beside it under "metric" when the reader kept it;
- time: seconds of that proxy on that architecture (its shared passes included, as in
  rank_values.jsonl); NaN for the derived proxies (fitted from other columns, e.g. ZeroLM's alpha)
  and for scores that failed. Non-finite scores are written as NaN (Python's json reads them).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from lpzero_jax.benchmarks import own
from lpzero_jax.files import write_text


def benchmark_name(config: Optional[Mapping[str, Any]]) -> str:
    """The run's benchmark name: an own file's stem, else the family name."""
    if own.uses_own_benchmark(config):
        name = Path(config.get("benchmark_file")).name
        for suffix in (".gz", ".jsonl", ".json"):
            name = name[:-len(suffix)] if name.endswith(suffix) else name
        return name
    return str((config or {}).get("family", "benchmark"))


def dataset_name(config: Optional[Mapping[str, Any]]) -> str:
    """An own benchmark header's "dataset", else the benchmark name."""
    if own.uses_own_benchmark(config):
        dataset = own.read_header(Path(config.get("benchmark_file"))).get("dataset")
        if isinstance(dataset, str) and dataset:
            return dataset
    return benchmark_name(config)


def zc_payload(archs: Sequence, columns: Mapping[str, Sequence[float]],
               done: Mapping[Tuple[str, str], Tuple[float, float]], dataset: str) -> Dict[str, Any]:
    """{dataset: {arch_id: {proxy: {score, time}, val_accuracy, metric, id}}} (module docstring)."""
    out: Dict[str, Any] = {}
    for i, arch in enumerate(archs):
        key = str(arch.arch_id)
        entry: Dict[str, Any] = {}
        for name, scores in columns.items():
            seconds = done.get((key, name), (math.nan, math.nan))[1]
            entry[name] = {"score": float(scores[i]), "time": float(seconds)}
        entry["val_accuracy"] = float(arch.score)
        if "metric" in (arch.extra or {}):
            entry["metric"] = float(arch.extra["metric"])
        entry["id"] = i
        out[key] = entry
    return {dataset: out}


def write_zc_json(workdir: Path, config, archs: Sequence, columns: Mapping[str, Sequence[float]],
                  done: Mapping[Tuple[str, str], Tuple[float, float]]) -> Path:
    """Writes workdir/zc_<benchmark>.json (atomically); returns its path."""
    path = Path(workdir) / f"zc_{benchmark_name(config)}.json"
    write_text(path, json.dumps(zc_payload(archs, columns, done, dataset_name(config))))
    return path
