"""LoNAS subnets of a supernet as a search space, and what a subnet's fitness may be.

`SubnetSpace` (a `search.space.SearchSpace`): members are choices (per layer, one index per knob of
`models.lonas.LonasSpace`); valid: within the parameter budget; an over-budget draw is repaired by
shrinking random knobs. `evolve_subnets` runs the evolutionary loop (`search/evolution.py`) on it in
the generational regime:
  1. `population` distinct random subnets within the budget (rejection sampling; a draw that keeps
     failing is repaired by shrinking random knobs until it fits);
  2. per generation: score the members not scored yet (one fitness call), keep the best
     `parent_fraction` as parents (elitism: they survive), fill the population with children: uniform
     crossover of two parents' layers (prob. `crossover_prob`, else a copy of one parent), then each
     (layer, knob) resampled with prob. `mutation_prob`; children over budget are redrawn, and repaired
     after `max_tries` draws; duplicates of population members are redrawn.
  3. the answer: the best `top_k` subnets ever scored.

Fitness kinds (`make_fitness`):
  params             the subnet's parameter count (a sanity check: the search must fill the budget);
  proxy:<name>       a registered hand-crafted proxy (lpzero_jax.proxies) of the subnet;
  genome:<genome>    a proxy genome, e.g. add(square(l1(W)),sqrt(softmax(W)));
  published:<key>    a genome of lpzero_jax.expression.published (default: the paper's LLaMA proxy).
Subnet weights are always SLICED from the supernet (`Family.supernet`), never re-initialised: a
subnet's proxy sees the supernet's weights.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from lpzero_jax.benchmarks.base import Arch
from lpzero_jax.expression import compile_genome
from lpzero_jax.expression.published import PUBLISHED
from lpzero_jax.inputs import INPUT_NAMES, extract_proxy_inputs, stack_inputs
from lpzero_jax.models.lonas import (
    Choice,
    LonasSpace,
    as_choice,
    choice_array,
    extract_subnet_params,
)
from lpzero_jax.proxies.base import ArchContext
from lpzero_jax.proxies.resolve import resolve_proxies
from lpzero_jax.registry import Registry
from lpzero_jax.search.evolution import (
    LoopSettings,
    SearchState,
    draw_valid,
    evolve_members,
)

Fitness = Callable[[Sequence[Choice]], Sequence[float]]


def lonas_space(supernet, settings) -> LonasSpace:
    """The LoNAS space of a supernet config under `config.subnet_search` (width ratios, adapter
    ranks, whether gate/up adapters have their own rank knob)."""
    return LonasSpace(supernet, tuple(float(r) for r in settings.width_ratios),
                      tuple(int(r) for r in settings.rank_choices), bool(settings.separate_ffn_rank))


def subnet_budget(space: LonasSpace, fraction: float) -> Tuple[int, int]:
    """(supernet params, the largest subnet params allowed); a ValueError naming the fix when even
    the smallest subnet is over budget."""
    super_count = space.num_params(space.max_choice())
    max_params = int(math.floor(float(fraction) * super_count))
    min_count = space.num_params(space.min_choice())
    if min_count > max_params:
        raise ValueError(f"budget_fraction {fraction} allows {max_params} params, but the smallest "
                         f"subnet has {min_count} ({min_count / super_count:.3f} of the supernet): raise "
                         "budget_fraction, or use a supernet whose FFNs weigh more than its embeddings")
    return super_count, max_params


def choice_key(choice: Choice) -> str:
    """'0-1|1-0|...' (per layer, knob indices joined by '-')."""
    return "|".join("-".join(str(i) for i in layer) for layer in choice)


def parse_choice_key(key: str) -> Choice:
    return tuple(tuple(int(i) for i in layer.split("-")) for layer in key.split("|"))


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


class SubnetSpace:
    """LoNAS subnets within `max_params` (see the module doc); `mutation_prob`: per (layer, knob)."""

    def __init__(self, space: LonasSpace, max_params: int, mutation_prob: float = 0.1):
        self.space = space
        self.max_params = max_params
        self.mutation_prob = mutation_prob

    def random_member(self, rng: np.random.Generator) -> Choice:
        return self.space.random_choice(rng)

    def mutate(self, member: Choice, rng: np.random.Generator) -> Choice:
        arr = choice_array(member).copy()
        flip = rng.random(arr.shape) < self.mutation_prob
        fresh = rng.integers(0, self.space.num_values())
        return as_choice(np.where(flip, fresh, arr))

    def crossover(self, a: Choice, b: Choice, rng: np.random.Generator) -> Choice:
        """Uniform crossover of whole layers."""
        take_a = rng.random(len(a)) < 0.5
        return tuple(x if t else y for x, y, t in zip(a, b, take_a))

    def is_valid(self, member: Choice) -> bool:
        return self.space.params_formula(choice_array(member))[0] <= self.max_params

    def repair(self, member: Choice, rng: np.random.Generator) -> Choice:
        return repair(self.space, member, self.max_params, rng)

    def key(self, member: Choice) -> str:
        return choice_key(member)

    def parse(self, text: str) -> Choice:
        return parse_choice_key(text)


def feasible(space: LonasSpace, draw: Callable[[], Choice], max_params: int, rng: np.random.Generator,
             max_tries: int, avoid=frozenset()) -> Choice:
    """A draw within the budget and not in `avoid` (repaired after max_tries failed draws)."""

    return draw_valid(SubnetSpace(space, max_params), draw, avoid, max_tries, rng)


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


def evolve_subnets(space: LonasSpace, fitness: Fitness, max_params: int,
                   settings: EvolutionSettings) -> EvolutionResult:
    """Maximises `fitness` over subnets with at most `max_params` parameters (see module doc):
    `settings.generations` scored populations, i.e. generations - 1 breeding steps."""
    if settings.population < 2 or settings.generations < 1:
        raise ValueError("subnet search needs population >= 2 and generations >= 1")
    loop = LoopSettings(population=settings.population, steps=settings.generations - 1,
                        parents=max(2, int(round(settings.parent_fraction * settings.population))),
                        regime="generational", crossover_rate=settings.crossover_prob,
                        mutation_rate=1.0, distinct_parents=True, max_tries=settings.max_tries,
                        seed=settings.seed)

    def key(c: Choice, scores) -> float:
        v = scores[c]
        return v if math.isfinite(v) else -math.inf

    def record(state: SearchState) -> dict:
        ranked = sorted(state.population, key=lambda c: key(c, state.scores), reverse=True)
        finite = [state.scores[c] for c in ranked if math.isfinite(state.scores[c])]
        return {"generation": state.generation, "best": key(ranked[0], state.scores),
                "mean": float(np.mean(finite)) if finite else math.nan, "scored": len(state.scores)}

    state = evolve_members(SubnetSpace(space, max_params, settings.mutation_prob), fitness, loop,
                           record, log_every=1)
    best = sorted(state.scores, key=lambda c: key(c, state.scores), reverse=True)[:settings.top_k]
    return EvolutionResult(best=[(c, state.scores[c]) for c in best], history=state.history,
                           scores=state.scores)


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


@FITNESS_KINDS.register("params")
def params_fitness(world: SubnetWorld, arg: str = "") -> Fitness:
    return lambda choices: [float(world.space.num_params(c)) for c in choices]


@FITNESS_KINDS.register("proxy")
def proxy_fitness(world: SubnetWorld, arg: str) -> Fitness:

    fn = resolve_proxies(arg)[arg]
    return lambda choices: [float(fn(world.context(c))) for c in choices]


@FITNESS_KINDS.register("genome")
def genome_fitness(world: SubnetWorld, arg: str) -> Fitness:

    search = world.config.get("search") or {}
    scorer = compile_genome(arg, search.get("aggregate", "sum"))
    needed = tuple(sorted(set(scorer.genome.inputs)))
    return lambda choices: list(scorer(stack_inputs([world.compact_inputs(c, needed) for c in choices])))


@FITNESS_KINDS.register("published")
def published_fitness(world: SubnetWorld, arg: str) -> Fitness:

    if arg not in PUBLISHED:
        raise KeyError(f"unknown published genome {arg!r}; known: {', '.join(sorted(PUBLISHED))}")
    return genome_fitness(world, PUBLISHED[arg])


def make_fitness(spec: str, world: SubnetWorld) -> Fitness:
    """'params', 'proxy:<name>', 'genome:<genome>' or 'published:<key>' -> fitness function."""
    kind, _, arg = spec.partition(":")
    return FITNESS_KINDS.get(kind.strip())(world, arg.strip())
