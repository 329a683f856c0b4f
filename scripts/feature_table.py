"""A benchmark's feature table for few-shot ranking, built from rank-mode workdirs.

    python scripts/feature_table.py --workdir RUN [--workdir RUN2 ...] --out DIR/flexibert.csv \
        [--cores "2 cores shared with ..."] [--inputs-cache PATH]

Writes, atomically (a reader never sees half a file):
- OUT (CSV): arch_id, score, then one column per proxy of the runs, in their order. `score` is the
  package's ground truth (`Arch.score`, higher is better: the GLUE average for FlexiBERT, minus the
  validation perplexity for GPT-2 / LLaMA / SmolLM2), the column the rank mode's scores.csv calls
  ground_truth. A value not computed (yet) is an empty cell. Derived proxies (ZeroLM with an alpha
  fitted on ground truth) are left out: a feature must not have seen a label.
- the table's name with .cost.json for .csv: per proxy the architectures computed, the mean / median / max of
  the proxy's seconds per architecture as if computed alone (shared passes included) and whether
  it needs a second-order (HVP) pass; the score's meaning and direction; the runs' settings; and
  `complete` (every architecture has every proxy). A table that is not complete is written as
  OUT with `.partial` before `.csv` instead (its cost file likewise), so a reader of OUT only ever
  sees a complete table.
- the table's name with .seconds.json for .csv: proxy -> mean seconds per architecture (the form
  the few_shot mode's `few_shot.seconds` reads).

Several workdirs (e.g. a cheap-proxy run, then the expensive proxies) must share the benchmark and
the proxy-input settings; a value present in several comes from the first workdir giving it.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from ml_collections import ConfigDict

from lpzero_jax.families import get_family
from lpzero_jax.files import atomic_write
from lpzero_jax.input_store import fingerprint_fields
from lpzero_jax.proxies.scoring import load_log
from lpzero_jax.proxies import PROXIES
from lpzero_jax.proxies.resolve import resolve_proxies
from lpzero_jax.results import load_json, write_json

# settings the proxy values depend on besides the proxy: the runs merged into one table must agree
SETTINGS = ("family", "arch_reading", "proxy_loss", "batch_size", "seq_len", "seed", "data")


def read_run(workdir: Path) -> Tuple[ConfigDict, List[str], Dict[Tuple[str, str], Tuple[float, float]]]:
    """(config, proxy names in order, (arch_id, proxy) -> (value, seconds)) of a rank workdir."""
    saved = load_json(workdir / "config_rank.json")
    if saved is None:
        sys.exit(f"{workdir}: no config_rank.json; give the workdir of a rank-mode run")
    saved.pop("data_digests", None)
    config = ConfigDict(saved)
    values, _failures = load_log(workdir / "rank_values.jsonl")
    return config, list(resolve_proxies(config.proxies)), values


def build(workdirs: List[Path]) -> Tuple[list, List[str], dict, ConfigDict, Dict[str, List[float]]]:
    """(archs, proxy names, (arch_id, proxy) -> value, config, proxy -> seconds of each arch)."""
    runs = [read_run(w) for w in workdirs]
    config = runs[0][0]
    reference = {k: v for k, v in fingerprint_fields(config).items() if k in SETTINGS}
    for w, (c, _, _) in zip(workdirs[1:], runs[1:]):
        other = {k: v for k, v in fingerprint_fields(c).items() if k in SETTINGS}
        differ = [k for k in SETTINGS if reference.get(k) != other.get(k)]
        if differ:
            sys.exit(f"{w}: other settings than {workdirs[0]} ({', '.join(differ)}); "
                     "one table merges runs of one benchmark and one input setting only")
    names: List[str] = []
    values: Dict[Tuple[str, str], float] = {}
    seconds: Dict[str, List[float]] = {}
    for _, run_names, run_values in runs:
        names += [n for n in run_names if n not in names]
        for (arch_id, name), (value, secs) in run_values.items():
            if (arch_id, name) not in values:
                values[arch_id, name] = value
                seconds.setdefault(name, []).append(secs)
    archs = get_family(config.family).load_benchmark(config)
    return archs, names, values, config, seconds


def cost_summary(names: List[str], seconds: Dict[str, List[float]], n_archs: int) -> dict:
    """proxy -> {archs, seconds_mean/median/max, needs_hvp} (None where not a registered proxy)."""
    out = {}
    for n in names:
        s = np.asarray(seconds.get(n, []), np.float64)
        out[n] = {"archs": int(s.size), "of": n_archs,
                  "seconds_mean": round(float(s.mean()), 4) if s.size else None,
                  "seconds_median": round(float(np.median(s)), 4) if s.size else None,
                  "seconds_max": round(float(s.max()), 4) if s.size else None,
                  "needs_hvp": PROXIES.get(n).needs_hvp if n in PROXIES else None}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", action="append", required=True, type=Path,
                   help="a rank-mode workdir (repeat to merge runs of other proxies)")
    p.add_argument("--out", required=True, type=Path, help="the CSV to write, e.g. flexibert.csv")
    p.add_argument("--cores", default="", help="what shared the CPU while the runs ran")
    p.add_argument("--inputs-cache", default="", help="where the runs' six proxy inputs are cached")
    args = p.parse_args(argv)

    archs, names, values, config, seconds = build(args.workdir)
    missing = sum((str(a.arch_id), n) not in values for a in archs for n in names)
    complete = missing == 0
    out = args.out if complete else args.out.with_name(f"{args.out.stem}.partial.csv")
    with atomic_write(out) as f:
        w = csv.writer(f)
        w.writerow(["arch_id", "score"] + names)
        for a in archs:
            cells = [values.get((str(a.arch_id), n)) for n in names]
            w.writerow([a.arch_id, repr(float(a.score))] +
                       ["" if c is None else repr(c) for c in cells])
    cost = {
        "table": out.name, "complete": complete, "rows": len(archs), "proxies": len(names),
        "missing_values": missing,
        "score": {"column": "score", "higher_is_better": True,
                  "meaning": "the package's Arch.score: GLUE average (FlexiBERT); minus the "
                             "validation perplexity (GPT-2, LLaMA, SmolLM2)"},
        "settings": {k: config.get(k) for k in ("family", "arch_reading", "proxy_loss",
                                                "batch_size", "seq_len", "seed", "benchmark_file")},
        "workdirs": [str(w) for w in args.workdir], "inputs_cache": args.inputs_cache,
        "cores": args.cores,
        "seconds_per_arch": cost_summary(names, seconds, len(archs)),
        "seconds_note": "each proxy as if computed alone (its shared passes included), from the "
                        "rank log; passes shared by several proxies are counted in each",
    }
    write_json(out.with_name(f"{out.stem}.cost.json"), cost, indent=2)
    write_json(out.with_name(f"{out.stem}.seconds.json"),  # what few_shot.seconds reads
               {n: v["seconds_mean"] for n, v in cost["seconds_per_arch"].items()
                if v["seconds_mean"] is not None}, indent=2)
    print(json.dumps({"table": str(out), "rows": len(archs), "proxies": len(names),
                      "missing_values": missing}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
