"""Architecture descriptors: numbers read off an architecture's config, for any family, at no cost.

A learned ranker can read the architecture itself besides proxy values (the surrogate predictors of
NAS use such encodings). `describe(config)` flattens one `Arch.config` (plain data) into named
numbers, the same way for every family:

  a number or bool at path p             -> p
  a string at path p                     -> "p=<value>": 1 (a one-hot count)
  a list of numbers at path p            -> p.len, p.sum, p.mean, p.max, p.min
  a list of mappings at path p           -> p.len, and over the items, per key k:
                                            numbers -> p.k.sum / .mean / .max / .min,
                                            strings -> "p.k=<value>": how many items have it
  a mapping                              -> its keys, recursively

`descriptor_table(configs)` aligns the descriptors of several architectures into [N, F] columns: a
count ("=" in its name, or .len) missing from an architecture is 0 (it has none), any other missing
value NaN; columns constant over the given architectures are dropped (they say nothing). Names
carry the prefix "arch:" so they never collide with proxy names.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

PREFIX = "arch:"


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, bool, np.integer, np.floating))


def _stats(path: str, values: Sequence[float], out: Dict[str, float]) -> None:
    v = np.asarray(values, np.float64)
    out[f"{path}.sum"], out[f"{path}.mean"] = float(v.sum()), float(v.mean())
    out[f"{path}.max"], out[f"{path}.min"] = float(v.max()), float(v.min())


def describe(config: Any, path: str = "") -> Dict[str, float]:
    """The descriptors of one architecture config (module docstring), names without the prefix."""
    out: Dict[str, float] = {}
    if isinstance(config, Mapping):
        for key in sorted(config, key=str):
            out.update(describe(config[key], f"{path}.{key}" if path else str(key)))
    elif _is_number(config):
        out[path] = float(config)
    elif isinstance(config, str):
        out[f"{path}={config}"] = 1.0
    elif isinstance(config, (list, tuple)):
        out[f"{path}.len"] = float(len(config))
        if config and all(_is_number(x) for x in config):
            _stats(path, config, out)
        elif config and all(isinstance(x, Mapping) for x in config):
            keys = sorted({k for item in config for k in item}, key=str)
            for k in keys:
                items = [item[k] for item in config if k in item]
                if items and all(_is_number(x) for x in items):
                    _stats(f"{path}.{k}", items, out)
                elif items and all(isinstance(x, str) for x in items):
                    for value in sorted(set(items)):
                        out[f"{path}.{k}={value}"] = float(sum(x == value for x in items))
    return out


def _is_count(name: str) -> bool:
    return "=" in name or name.endswith(".len")


def descriptor_table(configs: Sequence[Any], names: Optional[Sequence[str]] = None
                     ) -> Tuple[List[str], np.ndarray]:
    """(names with the "arch:" prefix, [N, F] values) of the architectures' descriptors. With
    `names` given (e.g. a fitted ranker's), exactly those columns, in that order (none dropped)."""
    rows = [describe(c) for c in configs]
    if names is None:
        found = sorted({k for r in rows for k in r})
        values = np.asarray([[r.get(k, 0.0 if _is_count(k) else np.nan) for k in found] for r in rows],
                            np.float64).reshape(len(rows), len(found))
        keep = [j for j in range(len(found)) if len(np.unique(values[:, j][np.isfinite(values[:, j])])) > 1]
        return [PREFIX + found[j] for j in keep], values[:, keep]
    bare = [n[len(PREFIX):] if n.startswith(PREFIX) else n for n in names]
    values = np.asarray([[r.get(k, 0.0 if _is_count(k) else np.nan) for k in bare] for r in rows],
                        np.float64).reshape(len(rows), len(bare))
    return list(names), values
