"""`subnet_search` mode: evolutionary search of LoNAS subnets of a LLaMA supernet under a parameter budget.

The algorithm (`evolve_subnets`) is independent of what is maximised: it takes a batch fitness
function fitness(choices) -> scores (higher is better). Steps, all driven by one seeded NumPy
generator (same seed, same search):
  1. `population` distinct random subnets within the budget (rejection sampling; a draw that keeps
     failing is repaired by shrinking random knobs until it fits);
  2. per generation: score the members not scored yet (one fitness call), keep the best
     `parent_fraction` as parents (elitism: they survive), fill the population with children: uniform
     crossover of two parents' layers (prob. `crossover_prob`, else a copy of one parent), then each
     (layer, knob) resampled with prob. `mutation_prob`; children over budget are redrawn, and repaired
     after `max_tries` draws; duplicates of population members are redrawn.
  3. the answer: the best `top_k` subnets ever scored.

Fitness kinds (`config.subnet_search.fitness`):
  params             the subnet's parameter count (a sanity check: the search must fill the budget);
  proxy:<name>       a registered hand-crafted proxy (lpzero_jax.proxies) of the subnet;
  genome:<genome>    a proxy genome, e.g. add(square(l1(W)),sqrt(softmax(W)));
  published:<key>    a genome of lpzero_jax.expression.published (default: the paper's LLaMA proxy).
Subnet weights are always SLICED from the supernet (random init with `config.seed`, or a local
checkpoint), never re-initialised: a subnet's proxy sees the supernet's weights.

Outputs in <workdir>/subnet_search/: evaluations.jsonl (every scored subnet, appended as scored; a
rerun replays the deterministic search and reuses them), best_subnets.json (the top_k with per-layer
values, params and fitness), summary.json (budget, history per generation, wall time).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from absl import logging

from lpzero_jax.benchmarks.base import Arch
from lpzero_jax.modes.base import register_mode
from lpzero_jax.files import write_json
from lpzero_jax.search.checkpoint import open_log, read_jsonl
from lpzero_jax.models.llama import LlamaConfig
from lpzero_jax.models.lonas import (Choice, LonasSpace, as_choice, choice_array,
                                     extract_subnet_params)
from lpzero_jax.proxies.base import ArchContext
from lpzero_jax.registry import Registry

Fitness = Callable[[Sequence[Choice]], Sequence[float]]


# ------------------------------------------------------------------------------------------------
# the evolutionary search


@dataclasses.dataclass(frozen=True)
class EvolutionSettings:
    population: int = 20
    generations: int = 10
    parent_fraction: float = 0.25
    mutation_prob: float = 0.1
    crossover_prob: float = 0.5
    max_tries: int = 100
    top_k: int = 5
    seed: int = 0


@dataclasses.dataclass
class EvolutionResult:
    best: List[Tuple[Choice, float]]  # best first
    history: List[Dict[str, float]]  # per generation: best, mean, evaluated so far
    scores: Dict[Choice, float]  # every subnet scored


def repair(space: LonasSpace, choice: Choice, max_params: int, rng: np.random.Generator) -> Choice:
    """Shrinks random knobs (one index step at a time) until the subnet fits in max_params."""
    arr = choice_array(choice).copy()
    limit = space.num_values() - 1
    while space.params_formula(arr)[0] > max_params:
        open_knobs = np.argwhere(arr < limit)
        if len(open_knobs) == 0:
            raise ValueError(f"even the smallest subnet ({space.params_formula(arr)[0]} params) exceeds "
                             f"the budget of {max_params}")
        l, k = open_knobs[rng.integers(len(open_knobs))]
        arr[l, k] += 1
    return as_choice(arr)


def feasible(space: LonasSpace, draw: Callable[[], Choice], max_params: int, rng: np.random.Generator,
             max_tries: int, avoid=frozenset()) -> Choice:
    """A draw within the budget and not in `avoid` (repaired after max_tries failed draws)."""
    choice = None
    for _ in range(max_tries):
        choice = draw()
        if space.params_formula(choice_array(choice))[0] <= max_params and choice not in avoid:
            return choice
    return repair(space, choice, max_params, rng)


def mutate(space: LonasSpace, choice: Choice, prob: float, rng: np.random.Generator) -> Choice:
    arr = choice_array(choice).copy()
    flip = rng.random(arr.shape) < prob
    fresh = rng.integers(0, space.num_values())
    return as_choice(np.where(flip, fresh, arr))


def crossover(a: Choice, b: Choice, rng: np.random.Generator) -> Choice:
    """Uniform crossover of whole layers."""
    take_a = rng.random(len(a)) < 0.5
    return tuple(x if t else y for x, y, t in zip(a, b, take_a))


def evolve_subnets(space: LonasSpace, fitness: Fitness, max_params: int, settings: EvolutionSettings,
                   on_scored: Optional[Callable[[int, Choice, float], None]] = None) -> EvolutionResult:
    """Maximises `fitness` over subnets with at most `max_params` parameters (see module doc)."""
    if settings.population < 2 or settings.generations < 1:
        raise ValueError("subnet search needs population >= 2 and generations >= 1")
    rng = np.random.default_rng(settings.seed)
    scores: Dict[Choice, float] = {}
    history = []

    def score(members: Sequence[Choice], generation: int) -> None:
        new = [c for c in dict.fromkeys(members) if c not in scores]
        if not new:
            return
        values = [float(v) for v in fitness(new)]
        if len(values) != len(new):
            raise ValueError(f"fitness returned {len(values)} scores for {len(new)} subnets")
        for c, v in zip(new, values):
            scores[c] = v
            if on_scored is not None:
                on_scored(generation, c, v)

    def key(c: Choice) -> float:
        v = scores[c]
        return v if math.isfinite(v) else -math.inf

    population: List[Choice] = []
    for _ in range(settings.population):
        population.append(feasible(space, lambda: space.random_choice(rng), max_params, rng,
                                   settings.max_tries, avoid=set(population)))
    n_parents = max(2, int(round(settings.parent_fraction * settings.population)))
    for generation in range(settings.generations):
        score(population, generation)
        population.sort(key=key, reverse=True)
        finite = [scores[c] for c in population if math.isfinite(scores[c])]
        history.append({"generation": generation, "best": key(population[0]),
                        "mean": float(np.mean(finite)) if finite else math.nan,
                        "scored": len(scores)})
        logging.info("generation %d: best %.6g, mean %.6g, %d subnets scored", generation,
                     history[-1]["best"], history[-1]["mean"], len(scores))
        if generation == settings.generations - 1:
            break
        parents = population[:n_parents]
        children: List[Choice] = list(parents)

        def child() -> Choice:
            i, j = rng.choice(len(parents), size=2, replace=False)
            base = (crossover(parents[i], parents[j], rng) if rng.random() < settings.crossover_prob
                    else parents[i])
            return mutate(space, base, settings.mutation_prob, rng)

        while len(children) < settings.population:
            children.append(feasible(space, child, max_params, rng, settings.max_tries,
                                     avoid=set(children)))
        population = children
    best = sorted(scores, key=key, reverse=True)[:settings.top_k]
    return EvolutionResult(best=[(c, scores[c]) for c in best], history=history, scores=scores)


# ------------------------------------------------------------------------------------------------
# fitness functions

FITNESS_KINDS: Registry[Callable[..., Fitness]] = Registry("subnet fitness kind")


class SubnetWorld:
    """What fitness functions may use: the space, supernet weights (loaded on first use), the run
    config and its text batch (made on first use). A params-only search never builds the weights."""

    def __init__(self, space: LonasSpace, family, super_params, config,
                 batch: Optional[Dict[str, np.ndarray]] = None):
        self.space = space
        self.family = family
        self._super_params = super_params  # a pytree, or a callable returning one
        self.config = config
        self.batch = batch

    @property
    def super_params(self):
        if callable(self._super_params):
            self._super_params = self._super_params()
        return self._super_params

    def arch(self, choice: Choice) -> Arch:
        return Arch(arch_id=choice_key(choice), config=self.space.config_of(choice).to_dict(),
                    score=math.nan)

    def context(self, choice: Choice) -> "SubnetContext":
        if self.batch is None:
            self.batch = self.family.make_batch(self.config)
        return SubnetContext(self.family, self.arch(choice), self.config, self.batch, self.super_params)

    def compact_inputs(self, choice: Choice, needed=None):
        """The subnet's compact proxy inputs (only those in `needed`, e.g. W alone needs no pass)."""
        from lpzero_jax.inputs import INPUT_NAMES, extract_proxy_inputs

        ctx = self.context(choice)
        return extract_proxy_inputs(self.family, ctx.model_config, ctx.params, ctx.batch,
                                    int(self.config.inputs.sample_size), int(self.config.inputs.sample_seed),
                                    needed=tuple(needed) if needed else INPUT_NAMES)


class SubnetContext(ArchContext):
    """An ArchContext whose parameters are sliced from the supernet instead of initialised."""

    def __init__(self, family, arch: Arch, config, batch, super_params):
        super().__init__(family, arch, config, batch)
        self._super_params = super_params

    @property
    def params(self):
        return self._stage("init", lambda: extract_subnet_params(self._super_params, self.param_shapes))


def choice_key(choice: Choice) -> str:
    """'0-1|1-0|...' (per layer, knob indices joined by '-')."""
    return "|".join("-".join(str(i) for i in layer) for layer in choice)


def parse_choice_key(key: str) -> Choice:
    return tuple(tuple(int(i) for i in layer.split("-")) for layer in key.split("|"))


@FITNESS_KINDS.register("params")
def params_fitness(world: SubnetWorld, arg: str = "") -> Fitness:
    return lambda choices: [float(world.space.num_params(c)) for c in choices]


@FITNESS_KINDS.register("proxy")
def proxy_fitness(world: SubnetWorld, arg: str) -> Fitness:
    from lpzero_jax.proxies.resolve import resolve_proxies

    fn = resolve_proxies(arg)[arg]
    return lambda choices: [float(fn(world.context(c))) for c in choices]


@FITNESS_KINDS.register("genome")
def genome_fitness(world: SubnetWorld, arg: str) -> Fitness:
    # ---- call into the expression engine (lpzero_jax.expression, written by the lead) ----------
    from lpzero_jax.expression import compile_genome
    from lpzero_jax.inputs import stack_inputs

    search = world.config.get("search") or {}
    scorer = compile_genome(arg, search.get("aggregate", "sum"))
    needed = tuple(sorted(set(scorer.genome.inputs)))
    return lambda choices: list(scorer(stack_inputs([world.compact_inputs(c, needed) for c in choices])))


@FITNESS_KINDS.register("published")
def published_fitness(world: SubnetWorld, arg: str) -> Fitness:
    # ---- the paper's Appendix B genomes (lpzero_jax.expression.published, written by the lead) --
    from lpzero_jax.expression.published import PUBLISHED

    if arg not in PUBLISHED:
        raise KeyError(f"unknown published genome {arg!r}; known: {', '.join(sorted(PUBLISHED))}")
    return genome_fitness(world, PUBLISHED[arg])


def make_fitness(spec: str, world: SubnetWorld) -> Fitness:
    """'params', 'proxy:<name>', 'genome:<genome>' or 'published:<key>' -> fitness function."""
    kind, _, arg = spec.partition(":")
    return FITNESS_KINDS.get(kind.strip())(world, arg.strip())


# ------------------------------------------------------------------------------------------------
# the mode


def supernet_from_config(config, family) -> Tuple[LlamaConfig, Callable[[], object]]:
    """(supernet LlamaConfig, a function returning its params): a local checkpoint if given, else the
    family init with config.seed. The params are only built when a fitness asks for them."""
    ss = config.subnet_search
    rank = int(max(ss.rank_choices))
    if ss.get("from_gguf"):  # a pretrained GGUF supernet without adapters (families/smollm.py)
        from lpzero_jax.families.smollm import gguf_file, supernet_params

        if rank:
            raise ValueError("a GGUF supernet has no adapters: set subnet_search.rank_choices=(0,)")
        supernet, _ = supernet_params(str(gguf_file(config)))
        return supernet, lambda: supernet_params(str(gguf_file(config)))[1]
    if ss.get("checkpoint"):
        from lpzero_jax.models.llama_checkpoint import load_llama_checkpoint, read_hf_config

        supernet = LlamaConfig.from_hf(read_hf_config(Path(ss.checkpoint)), rank, rank,
                                       float(ss.lora_scaling))

        def load():
            return load_llama_checkpoint(Path(ss.checkpoint), family, rank, rank, float(ss.lora_scaling),
                                         ss.get("adapter_path"), int(config.seed))[1]

        return supernet, load
    s = ss.supernet
    supernet = LlamaConfig.uniform(
        vocab_size=int(config.vocab_size), hidden_size=int(s.hidden_size),
        intermediate_size=int(s.intermediate_size), num_hidden_layers=int(s.num_hidden_layers),
        num_attention_heads=int(s.num_attention_heads),
        num_key_value_heads=int(s.get("num_key_value_heads") or s.num_attention_heads),
        attn_lora_rank=rank, ffn_lora_rank=rank, rope_theta=float(s.rope_theta),
        tie_word_embeddings=bool(s.tie_word_embeddings), lora_scaling=float(ss.lora_scaling))
    return supernet, lambda: family.init_params(supernet, int(config.seed))


def evaluations_path(config, space: LonasSpace, workdir: Path) -> Path:
    """One evaluations file per (fitness, space, supernet source, batch, seeds)."""
    ss = config.subnet_search
    blob = json.dumps({"fitness": ss.fitness, "space": repr(space), "checkpoint": ss.get("checkpoint"),
                       "gguf": config.get("gguf_path") if ss.get("from_gguf") else None,
                       "seed": config.seed, "batch": [config.get("corpus"), config.get("batch_size"),
                                                      config.get("seq_len")],
                       "inputs": config.inputs.to_dict()}, sort_keys=True, default=str)
    return Path(workdir) / f"evaluations_{hashlib.sha1(blob.encode()).hexdigest()[:10]}.jsonl"


def run(config, workdir: Path) -> dict:
    from lpzero_jax.families import get_family

    started = time.perf_counter()
    ss = config.subnet_search
    out = Path(workdir) / "subnet_search"
    out.mkdir(parents=True, exist_ok=True)
    family = get_family(config.family)
    supernet, super_params = supernet_from_config(config, family)  # params: lazy
    space = LonasSpace(supernet, tuple(float(r) for r in ss.width_ratios),
                       tuple(int(r) for r in ss.rank_choices), bool(ss.separate_ffn_rank))
    super_count = space.num_params(space.max_choice())
    max_params = int(math.floor(float(ss.budget_fraction) * super_count))
    min_count = space.num_params(space.min_choice())
    if min_count > max_params:
        raise ValueError(f"budget_fraction {ss.budget_fraction} allows {max_params} params, but the smallest "
                         f"subnet has {min_count} ({min_count / super_count:.3f} of the supernet): raise "
                         "budget_fraction, or use a supernet whose FFNs weigh more than its embeddings")
    logging.info("subnet_search: %d layers, %d subnets, supernet %d params, budget %d (%.3f), fitness %s",
                 space.num_layers, space.size(), super_count, max_params, ss.budget_fraction, ss.fitness)

    world = SubnetWorld(space, family, super_params, config)
    fitness = make_fitness(ss.fitness, world)
    cache_path = evaluations_path(config, space, out)
    cached: Dict[Choice, float] = {parse_choice_key(r["key"]): float(r["fitness"])
                                   for r in read_jsonl(cache_path)}
    if cached:
        logging.info("resuming: %d subnets already scored in %s", len(cached), cache_path)

    def cached_fitness(choices: Sequence[Choice]) -> List[float]:
        todo = [c for c in choices if c not in cached]
        if todo:
            for c, v in zip(todo, fitness(todo)):
                cached[c] = float(v)
                with open_log(cache_path) as f:
                    f.write(json.dumps({"key": choice_key(c), "fitness": float(v),
                                        "params": space.num_params(c)}) + "\n")
        return [cached[c] for c in choices]

    settings = EvolutionSettings(population=int(ss.population), generations=int(ss.generations),
                                 parent_fraction=float(ss.parent_fraction),
                                 mutation_prob=float(ss.mutation_prob),
                                 crossover_prob=float(ss.crossover_prob), top_k=int(ss.top_k),
                                 seed=int(ss.seed))
    result = evolve_subnets(space, cached_fitness, max_params, settings)
    best = [{"rank": i + 1, "key": choice_key(c), "fitness": v, "params": space.num_params(c),
             "params_without_adapters": space.num_params(c, adapters=False),
             "params_fraction": space.num_params(c) / super_count, "layers": space.values_of(c)}
            for i, (c, v) in enumerate(result.best)]
    write_json(out / "best_subnets.json", best, indent=1)
    summary = {"fitness": ss.fitness, "supernet_params": super_count, "max_params": max_params,
               "budget_fraction": float(ss.budget_fraction), "space_size": str(space.size()),
               "scored": len(result.scores), "history": result.history,
               "wall_seconds": time.perf_counter() - started}
    write_json(out / "summary.json", summary, indent=1)
    for b in best:
        logging.info("#%d fitness %.6g params %d (%.3f): ffn %s", b["rank"], b["fitness"], b["params"],
                     b["params_fraction"], [l["ffn_width"] for l in b["layers"]])
    return {"best": best, "summary": summary}


register_mode("subnet_search")(run)
