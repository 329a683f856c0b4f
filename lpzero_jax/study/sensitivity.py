"""Sensitivity: how much a proxy's rho moves with the initialisation and with the mini-batch.

Zero-cost proxies see one random initialisation and one mini-batch, both drawn from config.seed.
Here one factor varies at a time: the init seed (the batch of config.seed) or the batch seed (the
init of config.seed). Each setting's inputs are extracted once into the input store under a
fingerprint that names both seeds (the setting of config.seed for both is the ordinary cache), and
fixed genomes are scored over the same architectures in every setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Sequence

import numpy as np

from lpzero_jax.errors import ConfigError
from lpzero_jax.input_store import InputStore, collect_inputs, fingerprint_fields
from lpzero_jax.inputs import inputs_fingerprint
from lpzero_jax.study.transfer import genome_correlations


def parse_seeds(text: str, setting: str) -> List[int]:
    """A comma list of distinct non-negative seeds; ConfigError naming `setting` otherwise."""
    try:
        seeds = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{setting} {text!r}: expected a comma list of integers") from None
    if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise ConfigError(f"{setting} {seeds}: seeds must be distinct and >= 0")
    return seeds


def settings(config) -> List[Dict[str, int]]:
    """[{factor, init_seed, batch_seed}]: config.seed for both first, then one factor at a time."""
    base = int(config.seed)
    out = [{"factor": "base", "init_seed": base, "batch_seed": base}]
    for s in parse_seeds(config.study.init_seeds, "study.init_seeds"):
        if s != base:
            out.append({"factor": "init", "init_seed": s, "batch_seed": base})
    for s in parse_seeds(config.study.batch_seeds, "study.batch_seeds"):
        if s != base:
            out.append({"factor": "batch", "init_seed": base, "batch_seed": s})
    return out


def setting_store(config, init_seed: int, batch_seed: int, workdir: Path) -> InputStore:
    """The input store of one setting: the ordinary one when both seeds are config.seed, else
    one whose fingerprint (and folder) also names the batch seed."""
    c = config.copy_and_resolve_references()
    c.seed = int(init_seed)  # what ArchInputs builds the parameters from
    store = InputStore(c, workdir)
    if batch_seed != init_seed:
        store.fingerprint = inputs_fingerprint(dict(fingerprint_fields(c), batch_seed=int(batch_seed)))
        store.dir = store.dir.parent / store.fingerprint
    return store


def setting_inputs(config, family, archs, init_seed: int, batch_seed: int, workdir: Path):
    """CompactInputs of `archs` at this init seed and batch seed (extracted once, then cached)."""
    store = setting_store(config, init_seed, batch_seed, workdir)
    init_config = config.copy_and_resolve_references()
    init_config.seed = int(init_seed)
    batch_config = config.copy_and_resolve_references()
    batch_config.seed = int(batch_seed)
    missing = any(not store.has(a.arch_id) for a in archs)
    batch = family.make_batch(batch_config) if missing else None
    inputs, _ = collect_inputs(store, family, archs, init_config, batch,
                               f"inputs init {init_seed} batch {batch_seed}")
    return inputs


def summarize(rows: Sequence[dict], proxies: Mapping[str, str]) -> Dict[str, dict]:
    """proxy -> factor ('init', 'batch') -> {rho_mean, rho_sd, tau_mean, tau_sd, n_settings}; each
    factor's settings include the base one (config.seed for both)."""
    out = {}
    for name in proxies:
        out[name] = {}
        for factor in ("init", "batch"):
            chosen = [r for r in rows if r["factor"] in ("base", factor)]
            entry = {"n_settings": len(chosen)}
            for metric, short in (("spearman_rho", "rho"), ("kendall_tau", "tau")):
                v = np.asarray([r["proxies"][name][metric] for r in chosen], np.float64)
                entry[f"{short}_mean"] = float(np.mean(v))
                entry[f"{short}_sd"] = float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")
            out[name][factor] = entry
    return out

