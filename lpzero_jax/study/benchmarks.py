"""Several benchmarks in one study: their configs, pools and searched genomes (transfer, joint search).

A benchmark is named by its shipped experiment config (flexibert, gpt2, llama). The running config's
own family uses the running config; the others their shipped config with this run's data root and
compilation cache, and the input cache dir given in `study.cache_dirs` ("name=path,...").
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from lpzero_jax.configs import NAMES, shipped_config
from lpzero_jax.errors import ConfigError
from lpzero_jax.results import load_json
from lpzero_jax.study.pool import load_pool


def benchmark_names(config) -> List[str]:
    """study.benchmarks as a list (distinct, shipped config names)."""
    names = [x.strip() for x in str(config.study.benchmarks).split(",") if x.strip()]
    unknown = [n for n in names if n not in NAMES]
    if unknown or len(set(names)) != len(names) or not names:
        raise ConfigError(f"study.benchmarks {config.study.benchmarks!r}: expected distinct names of "
                          f"{', '.join(NAMES)}")
    return names


def assignments(text: str, setting: str, names: List[str]) -> Dict[str, str]:
    """A "name=path,name=path" setting as a dict; ConfigError naming a malformed or unknown entry."""
    out = {}
    for part in (p.strip() for p in str(text or "").split(",") if p.strip()):
        name, sep, path = part.partition("=")
        if not sep or not path.strip() or name.strip() not in names:
            raise ConfigError(f"{setting}: {part!r} is not 'name=path' with a name of "
                              f"{', '.join(names)}")
        out[name.strip()] = path.strip()
    return out


def benchmark_config(config, name: str):
    """The config of benchmark `name` in this study (see the module docstring)."""
    names = benchmark_names(config)
    caches = assignments(config.study.cache_dirs, "study.cache_dirs", names)
    if name == config.family:
        c = config.copy_and_resolve_references()
    else:
        c = shipped_config(name)
        c.data_root = config.get("data_root")
        c.compilation_cache_dir = config.compilation_cache_dir
        c.seed = config.seed
        if name not in caches:
            raise ConfigError(f"benchmark {name}: its input cache is not given; set "
                              f"--config.study.cache_dirs={name}=DIR (where its search run cached "
                              "its inputs)")
    if name in caches:
        c.inputs.cache_dir = caches[name]
    return c


def searched_genome(config, name: str) -> str:
    """The best genome of benchmark `name`'s search run (study.search_dirs): its search.json, or,
    while that run still extracts its held-out inputs, its finished evolution's checkpoint."""
    dirs = assignments(config.study.search_dirs, "study.search_dirs", benchmark_names(config))
    if name not in dirs:
        raise ConfigError(f"benchmark {name}: no search run given; set "
                          f"--config.study.search_dirs={name}=WORKDIR (of its `search` run)")
    run = Path(dirs[name]).expanduser()
    saved = load_json(run / "search.json")
    if saved is not None and saved.get("best_genome"):
        return str(saved["best_genome"])
    checkpoint = load_json(run / "search_checkpoint.json") or {}
    state, settings = checkpoint.get("state") or {}, checkpoint.get("config") or {}
    if state.get("history") and state.get("generation") == settings.get("generations"):
        return str(state["history"][-1]["best_genome"])
    raise ConfigError(f"{run}: neither search.json nor a finished search_checkpoint.json; run the "
                      f"search of {name} first")


def pool_spec(config, name: str) -> str:
    """study.pool for benchmark `name`: one spec for all ('all', 'cached', an id file), or
    "name=spec,..." per benchmark ('all' for a benchmark not named)."""
    text = str(config.study.pool)
    if "=" not in text:
        return text
    return assignments(text, "study.pool", benchmark_names(config)).get(name, "all")


def benchmark_pools(config, workdir: Path, min_size: int = 3) -> Dict[str, tuple]:
    """name -> (its config, its pool) for every benchmark of the study; joint_search needs S + 3
    architectures in each pool."""
    out = {}
    for name in benchmark_names(config):
        c = benchmark_config(config, name)
        size = int(c.search.sample_archs) + 3 if config.mode == "joint_search" else min_size
        out[name] = (c, load_pool(c, workdir, pool_spec(config, name), min_size=size))
    return out
