"""Sensitivity: how much a proxy's rho moves with the initialisation and with the mini-batch.

Zero-cost proxies see one random initialisation and one mini-batch, both drawn from config.seed.
Here one factor varies at a time: the init seed (the batch of config.seed) or the batch seed (the
init of config.seed). Each setting's inputs are extracted once into the input store under a
fingerprint that names both seeds (the setting of config.seed for both is the ordinary cache), and
fixed genomes are scored over the same architectures in every setting.

Hand-crafted proxies of the zoo (study.proxies) are scored per setting with the `rank` machinery
(`proxies.scoring.score_into_log`: params from the init seed, passes on the batch of the batch seed,
compact inputs from the setting's store), each value appended to DIR/zoo/<setting>.jsonl as it is
produced (a killed run keeps them; the file name carries a digest of what the values depend on,
so a changed setting never reads stale ones). A proxy is computed only at the values of the
factors it reads (`Proxy.factors`): #Params at config.seed alone, a weight-only proxy once per
init seed; its spread over a factor it does not read is 0 by construction, and is reported so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, FrozenSet, List, Mapping, Sequence, Tuple

import numpy as np
from absl import logging

from lpzero_jax import evaluation
from lpzero_jax.errors import ConfigError
from lpzero_jax.input_store import InputStore, collect_inputs, fingerprint_fields
from lpzero_jax.inputs import inputs_fingerprint
from lpzero_jax.proxies import scoring
from lpzero_jax.proxies.resolve import resolve_proxies

FACTOR_NAMES = ("init", "batch")  # the factors varied, in the order of the tables


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


def at_seed(config, seed: int):
    """A copy of `config` with `seed` replaced (the init seed: what ArchInputs builds the
    parameters from; the batch seed: what `family.make_batch` draws from)."""
    c = config.copy_and_resolve_references()
    c.seed = int(seed)
    return c


def setting_store(config, init_seed: int, batch_seed: int, workdir: Path) -> InputStore:
    """The input store of one setting: the ordinary one when both seeds are config.seed, else
    one whose fingerprint (and folder) also names the batch seed."""
    c = at_seed(config, init_seed)
    store = InputStore(c, workdir)
    if batch_seed != init_seed:
        store.fingerprint = inputs_fingerprint(dict(fingerprint_fields(c), batch_seed=int(batch_seed)))
        store.dir = store.dir.parent / store.fingerprint
    return store


def setting_inputs(config, family, archs, init_seed: int, batch_seed: int, workdir: Path):
    """CompactInputs of `archs` at this init seed and batch seed (extracted once, then cached)."""
    store = setting_store(config, init_seed, batch_seed, workdir)
    missing = any(not store.has(a.arch_id) for a in archs)
    batch = family.make_batch(at_seed(config, batch_seed)) if missing else None
    inputs, _ = collect_inputs(store, family, archs, at_seed(config, init_seed), batch,
                               f"inputs init {init_seed} batch {batch_seed}")
    return inputs


def summarize(rows: Sequence[dict], proxies: Mapping[str, object],
              reads: Mapping[str, FrozenSet[str]] = None) -> Dict[str, dict]:
    """proxy -> factor ('init', 'batch') -> {rho_mean, rho_sd, tau_mean, tau_sd, n_settings,
    read}; each factor's settings include the base one (config.seed for both). `reads`: proxy ->
    the factors it reads (default both); over a factor it does not read every setting has its
    base value, so the mean is that value and the sd 0 by construction (read False)."""
    out = {}
    for name in proxies:
        out[name] = {}
        for factor in FACTOR_NAMES:
            chosen = [r for r in rows if r["factor"] in ("base", factor)]
            read = reads is None or name not in reads or factor in reads[name]
            entry = {"n_settings": len(chosen), "read": read}
            for metric, short in (("spearman_rho", "rho"), ("kendall_tau", "tau")):
                v = np.asarray([r["proxies"][name][metric] for r in chosen], np.float64)
                if not read:
                    v = v[:1]  # every setting holds the base value
                entry[f"{short}_mean"] = float(np.mean(v))
                entry[f"{short}_sd"] = (0.0 if not read else float(np.std(v, ddof=1)) if len(v) > 1
                                        else float("nan"))
            out[name][factor] = entry
    return out


def zoo_proxies(config) -> dict:
    """study.proxies resolved as the rank mode resolves config.proxies (zoo names, genomes);
    {} when empty. ConfigError naming the setting for an unknown name."""

    spec = str(config.study.get("proxies", "")).strip()
    if not spec:
        return {}
    try:
        return resolve_proxies(spec)
    except (KeyError, ValueError) as e:
        message = e.args[0] if e.args else str(e)
        raise ConfigError(f"study.proxies: {message}; fix --config.study.proxies (a comma list "
                          "of the zoo's proxy names)") from None


def proxy_setting(setting: Mapping[str, int], reads: FrozenSet[str], base: int) -> Tuple[int, int]:
    """(init seed, batch seed) at which a proxy reading the factors `reads` is computed for
    `setting`: the base seed for each factor it does not read."""
    return (int(setting["init_seed"]) if "init" in reads else int(base),
            int(setting["batch_seed"]) if "batch" in reads else int(base))


def zoo_values_path(config, init_seed: int, batch_seed: int, workdir: Path) -> Path:
    """DIR/zoo/init<i>_batch<b>_<digest>.jsonl: the zoo's values of one setting, the digest naming
    what they depend on (the setting's inputs fingerprint, the zoo's own settings)."""
    store = setting_store(config, init_seed, batch_seed, workdir)
    digest = inputs_fingerprint({"inputs": store.fingerprint, "aggregate": config.search.aggregate,
                                 "zerolm": dict(config.get("zerolm") or {}), "version": 1})
    return Path(workdir) / "zoo" / f"init{init_seed}_batch{batch_seed}_{digest}.jsonl"


def zoo_values(config, family, archs, proxies: Mapping[str, object], setting_list, workdir: Path
               ) -> Dict[Tuple[int, int], Dict[str, dict]]:
    """(init seed, batch seed) -> proxy -> {values [N] (NaN where it failed), seconds (mean per
    arch), failures}: each proxy at each distinct `proxy_setting` of `setting_list`, every value
    read from or appended to that setting's `zoo_values_path` (scored by `modes.rank`)."""

    base = int(config.seed)
    wanted: Dict[Tuple[int, int], List[str]] = {}
    for s in setting_list:
        for name, proxy in proxies.items():
            names = wanted.setdefault(proxy_setting(s, proxy.factors_for(family), base), [])
            if name not in names:
                names.append(name)
    out = {}
    nan = (float("nan"), float("nan"))
    for (init_seed, batch_seed), names in wanted.items():
        path = zoo_values_path(config, init_seed, batch_seed, workdir)
        done, failed = scoring.load_log(path)
        todo = [a for a in archs if any((str(a.arch_id), n) not in done for n in names)]
        logging.info("zoo at init seed %d, batch seed %d: %s; %d of %d architectures to score -> %s",
                     init_seed, batch_seed, ", ".join(names), len(todo), len(archs), path)
        if todo:
            path.parent.mkdir(parents=True, exist_ok=True)
            scoring.score_into_log(family, todo, at_seed(config, init_seed),
                                family.make_batch(at_seed(config, batch_seed)),
                                {n: proxies[n] for n in names},
                                setting_store(config, init_seed, batch_seed, workdir), path, done,
                                failed)
        out[(init_seed, batch_seed)] = {n: {
            "values": np.asarray([done.get((str(a.arch_id), n), nan)[0] for a in archs]),
            "seconds": float(np.nanmean([done.get((str(a.arch_id), n), nan)[1] for a in archs])),
            "failures": {str(a.arch_id): failed[(str(a.arch_id), n)] for a in archs
                         if (str(a.arch_id), n) in failed}} for n in names}
    return out


def zoo_rows(config, family, archs, proxies: Mapping[str, object], setting_list, workdir: Path
             ) -> List[Dict[str, dict]]:
    """Per setting of `setting_list`: proxy -> rho/tau over `archs` (rank_correlations, with the
    per-arch `values`, `seconds_per_arch`, `failures` and `computed_at`: the [init seed, batch
    seed] the values were computed at) of the zoo proxies."""
    table = zoo_values(config, family, archs, proxies, setting_list, workdir)
    truth = np.asarray([a.score for a in archs], np.float64)
    rows = []
    for s in setting_list:
        row = {}
        for name, proxy in proxies.items():
            at = proxy_setting(s, proxy.factors_for(family), int(config.seed))
            entry = table[at][name]
            row[name] = dict(evaluation.rank_correlations(entry["values"], truth),
                             values=entry["values"].tolist(), seconds_per_arch=entry["seconds"],
                             failures=entry["failures"], computed_at=list(at))
        rows.append(row)
    return rows

