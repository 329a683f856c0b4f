"""subnet_search mode: it writes its files and resumes; proxy fitness sees the supernet's (sliced)
weights. (The search space and its evolution: tests/search/test_subnets.py.)"""

import json

import jax
import numpy as np
import pytest

from lpzero_jax.families import get_family
from lpzero_jax.models.lonas import extract_subnet_params
from lpzero_jax.modes import MODES
from lpzero_jax.search.subnets import SubnetWorld, make_fitness
from tests.conftest import tiny_llama_config
from tests.search.test_subnets import space

FAMILY = get_family("llama")


def mode_config(tmp_path, **ss):
    c = tiny_llama_config(mode="subnet_search", workdir=str(tmp_path), batch_size=2, seq_len=8,
                          vocab_size=256)
    c.subnet_search.supernet.update(hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                                    num_attention_heads=2, num_key_value_heads=2)
    c.subnet_search.update(dict(rank_choices=(4, 3), fitness="params", population=6, generations=4,
                                parent_fraction=0.5, mutation_prob=0.2, top_k=3, seed=1))
    c.subnet_search.update(ss)
    return c


def test_mode_writes_best_subnets_and_resumes(tmp_path):
    config = mode_config(tmp_path)
    out = MODES.get("subnet_search")(config, tmp_path)
    best = json.loads((tmp_path / "subnet_search" / "best_subnets.json").read_text())
    summary = json.loads((tmp_path / "subnet_search" / "summary.json").read_text())
    assert len(best) == 3 and best == out["best"]
    assert all(b["params"] <= summary["max_params"] for b in best)
    assert best[0]["fitness"] == best[0]["params"] and best[0]["params_fraction"] <= 0.85
    assert [l["ffn_width"] for l in best[0]["layers"]] and summary["scored"] >= 6
    evaluations = list((tmp_path / "subnet_search").glob("evaluations_*.jsonl"))
    assert len(evaluations) == 1
    lines = evaluations[0].read_text().splitlines()
    again = MODES.get("subnet_search")(config, tmp_path)  # replays from the stored evaluations
    assert again["best"] == out["best"] and evaluations[0].read_text().splitlines() == lines


def test_proxy_fitness_uses_the_sliced_supernet_weights(tmp_path, data_root):
    config = mode_config(tmp_path, fitness="proxy:attention_confidence")
    s = space(2)
    super_params = FAMILY.init_params(s.supernet, 0)
    config.vocab_size = 512
    world = SubnetWorld(s, FAMILY, super_params, config)
    choice = ((1, 3), (0, 1))
    ctx = world.context(choice)
    sliced = extract_subnet_params(super_params, FAMILY.param_shapes(s.config_of(choice)))
    jax.tree_util.tree_map(np.testing.assert_array_equal, ctx.params, sliced)
    scores = make_fitness("proxy:attention_confidence", world)([choice, s.max_choice()])
    assert len(scores) == 2 and all(np.isfinite(scores))
    assert make_fitness("params", world)([choice]) == [float(s.num_params(choice))]
    with pytest.raises(KeyError, match="unknown subnet fitness kind 'nope'"):
        make_fitness("nope:x", world)


def test_genome_fitness_scores_subnets(tmp_path, data_root):
    from lpzero_jax.expression import PUBLISHED, compile_genome
    from lpzero_jax.inputs import extract_proxy_inputs, stack_inputs

    config = mode_config(tmp_path)
    s = space(2)
    world = SubnetWorld(s, FAMILY, lambda: FAMILY.init_params(s.supernet, 0), config)
    config.vocab_size = 512
    choices = [((1, 3), (0, 1)), s.max_choice(), s.min_choice()]
    genome = "mul(mean(relu(W)),l1(square(G)))"
    got = make_fitness(f"genome:{genome}", world)(choices)
    # the same genome on inputs extracted by hand from the sliced weights
    ctx = world.context(choices[0])
    inputs = extract_proxy_inputs(FAMILY, ctx.model_config, ctx.params, ctx.batch,
                                  config.inputs.sample_size, config.inputs.sample_seed)
    want = compile_genome(genome)(stack_inputs([inputs]))[0]
    assert got[0] == pytest.approx(float(want), rel=1e-5)
    assert len(set(got)) == 3 and all(np.isfinite(got))
    published = make_fitness("published:lpzero_llama", world)(choices)
    assert all(np.isfinite(published)) and PUBLISHED["lpzero_llama"]
    with pytest.raises(KeyError, match="unknown published genome"):
        make_fitness("published:nope", world)
