"""`subnet_search` mode: evolutionary search of subnets of a family's supernet under a parameter budget.

The family gives the supernet (`Family.supernet`: LLaMA random init or a local checkpoint, SmolLM2's
GGUF); `lpzero_jax/search/subnets.py` holds the LoNAS search space, its fitness kinds
(`config.subnet_search.fitness`: params | proxy:<name> | genome:<genome> | published:<key>) and the
generational settings of the one evolutionary loop (`search/evolution.py`).

Outputs in <workdir>/subnet_search/: evaluations.jsonl (every scored subnet, appended as scored; a
rerun replays the deterministic search and reuses them), best_subnets.json (the top_k with per-layer
values, params and fitness), summary.json (budget, history per generation, wall time).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Dict, List, Sequence

from absl import logging

from lpzero_jax.families import get_family
from lpzero_jax.modes.base import register_mode
from lpzero_jax.results import open_log, read_jsonl, write_json
from lpzero_jax.search.subnets import (
    Choice,
    EvolutionSettings,
    SubnetWorld,
    choice_key,
    evolve_subnets,
    lonas_space,
    make_fitness,
    parse_choice_key,
    subnet_budget,
)


def evaluations_path(config, space, source: dict, workdir: Path) -> Path:
    """One evaluations file per (fitness, space, supernet source, batch, seeds)."""
    ss = config.subnet_search
    blob = json.dumps({"fitness": ss.fitness, "space": repr(space), **source, "seed": config.seed,
                       "batch": [config.get("corpus"), config.get("batch_size"), config.get("seq_len")],
                       "inputs": config.inputs.to_dict()}, sort_keys=True, default=str)
    return Path(workdir) / f"evaluations_{hashlib.sha1(blob.encode()).hexdigest()[:10]}.jsonl"


def stored_fitness(fitness, space, path: Path):
    """`fitness` with every value appended to the JSON-lines file `path` and read back from it (a
    rerun replays the deterministic search without scoring again)."""
    cached: Dict[Choice, float] = {parse_choice_key(r["key"]): float(r["fitness"])
                                   for r in read_jsonl(path)}
    if cached:
        logging.info("resuming: %d subnets already scored in %s", len(cached), path)

    def scored(choices: Sequence[Choice]) -> List[float]:
        todo = [c for c in choices if c not in cached]
        if todo:
            for c, v in zip(todo, fitness(todo)):
                cached[c] = float(v)
                with open_log(path) as f:
                    f.write(json.dumps({"key": choice_key(c), "fitness": float(v),
                                        "params": space.num_params(c)}) + "\n")
        return [cached[c] for c in choices]

    return scored


def evolution_settings(ss) -> EvolutionSettings:
    return EvolutionSettings(population=int(ss.population), generations=int(ss.generations),
                             parent_fraction=float(ss.parent_fraction),
                             mutation_prob=float(ss.mutation_prob),
                             crossover_prob=float(ss.crossover_prob), top_k=int(ss.top_k),
                             seed=int(ss.seed))


def write_results(out: Path, ss, space, super_count: int, max_params: int, result,
                  seconds: float) -> dict:
    """best_subnets.json and summary.json; returns {"best", "summary"}."""
    best = [{"rank": i + 1, "key": choice_key(c), "fitness": v, "params": space.num_params(c),
             "params_without_adapters": space.num_params(c, adapters=False),
             "params_fraction": space.num_params(c) / super_count, "layers": space.values_of(c)}
            for i, (c, v) in enumerate(result.best)]
    write_json(out / "best_subnets.json", best, indent=1)
    summary = {"fitness": ss.fitness, "supernet_params": super_count, "max_params": max_params,
               "budget_fraction": float(ss.budget_fraction), "space_size": str(space.size()),
               "scored": len(result.scores), "history": result.history, "wall_seconds": seconds}
    write_json(out / "summary.json", summary, indent=1)
    for b in best:
        logging.info("#%d fitness %.6g params %d (%.3f): ffn %s", b["rank"], b["fitness"], b["params"],
                     b["params_fraction"], [l["ffn_width"] for l in b["layers"]])
    return {"best": best, "summary": summary}


def run(config, workdir: Path) -> dict:

    started = time.perf_counter()
    ss = config.subnet_search
    out = Path(workdir) / "subnet_search"
    out.mkdir(parents=True, exist_ok=True)
    family = get_family(config.family)
    supernet = family.supernet(config)  # params: built on first use
    space = lonas_space(supernet.config, ss)
    super_count, max_params = subnet_budget(space, ss.budget_fraction)
    logging.info("subnet_search: %d layers, %d subnets, supernet %d params, budget %d (%.3f), fitness %s",
                 space.num_layers, space.size(), super_count, max_params, ss.budget_fraction, ss.fitness)
    fitness = make_fitness(ss.fitness, SubnetWorld(space, family, supernet.params, config))
    fitness = stored_fitness(fitness, space, evaluations_path(config, space, supernet.source, out))
    result = evolve_subnets(space, fitness, max_params, evolution_settings(ss))
    return write_results(out, ss, space, super_count, max_params, result,
                         time.perf_counter() - started)


register_mode("subnet_search")(run)
