"""LoNAS subnets as a search space: the evolution respects the budget, improves its fitness, is
deterministic, and follows exactly the trajectory it followed before the loop was shared with the
proxy search (search/evolution.py)."""

import hashlib
import json

import numpy as np
import pytest

from lpzero_jax.models.llama import LlamaConfig
from lpzero_jax.models.lonas import LonasSpace
from lpzero_jax.search.subnets import (EvolutionSettings, choice_key, evolve_subnets, parse_choice_key,
                                       repair)


def space(layers=6):
    supernet = LlamaConfig.uniform(vocab_size=512, hidden_size=16, intermediate_size=64,
                                   num_hidden_layers=layers, num_attention_heads=2, attn_lora_rank=8,
                                   ffn_lora_rank=8)
    return LonasSpace(supernet, rank_choices=(8, 7))


def test_evolution_fills_the_budget_with_params_fitness():
    s = space()
    budget = int(0.85 * s.num_params(s.max_choice()))
    fitness = lambda cs: [s.num_params(c) for c in cs]  # noqa: E731
    settings = EvolutionSettings(population=8, generations=8, seed=3)
    result = evolve_subnets(s, fitness, budget, settings)
    assert all(s.num_params(c) <= budget for c in result.scores)
    first = result.history[0]["best"]
    best_choice, best = result.best[0]
    assert best == s.num_params(best_choice) and best > first  # the search improved on generation 0
    assert budget - best < 0.01 * budget  # and (nearly) filled the budget
    assert [h["best"] for h in result.history] == sorted(h["best"] for h in result.history)  # elitism
    again = evolve_subnets(s, fitness, budget, settings)
    assert again.best == result.best and again.history == result.history  # deterministic
    other = evolve_subnets(s, fitness, budget, EvolutionSettings(population=8, generations=8, seed=4))
    assert set(other.scores) != set(result.scores)


def test_repair_and_impossible_budget():
    s = space(2)
    rng = np.random.default_rng(0)
    budget = s.num_params(s.medium_choice())
    fixed = repair(s, s.max_choice(), budget, rng)
    assert s.num_params(fixed) <= budget
    with pytest.raises(ValueError, match="smallest subnet"):
        repair(s, s.max_choice(), s.num_params(s.min_choice()) - 1, rng)


def test_choice_keys_roundtrip():
    c = ((0, 4), (1, 2))
    assert choice_key(c) == "0-4|1-2" and parse_choice_key("0-4|1-2") == c


def test_the_generational_loop_keeps_its_trajectory():
    """Golden values of the subnet GA before it ran on the shared loop (main at e8bbd62): the best
    subnets, the last history line and the order in which every subnet was scored. A fitness with
    ties and NaNs exercises the ranking rules too."""
    s = space()
    budget = int(0.85 * s.num_params(s.max_choice()))

    def fitness(cs):
        return [float("nan") if sum(map(sum, c)) % 7 == 0 else float(s.num_params(c) // 50) for c in cs]

    want = {3: ("1-4|1-2|0-2|0-2|1-1|1-3", {"generation": 11, "best": 908.0, "mean": 903.1666666666666,
                                           "scored": 70}, "40faa804eaaab1329a53cae4754a26c78160db98"),
            11: ("1-2|1-2|1-3|1-2|0-1|0-4", {"generation": 11, "best": 908.0, "mean": 901.625,
                                            "scored": 67}, "b432892296ee3eec59a9df115df586cabebd7d1e")}
    for seed, (best, last, order) in want.items():
        r = evolve_subnets(s, fitness, budget, EvolutionSettings(population=8, generations=12, seed=seed,
                                                                  mutation_prob=0.2))
        assert (choice_key(r.best[0][0]), r.best[0][1]) == (best, 908.0)
        assert r.history[-1] == last
        assert hashlib.sha1(json.dumps([choice_key(c) for c in r.scores]).encode()).hexdigest() == order
