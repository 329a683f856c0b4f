"""`joint_search` mode over synthetic pools: its fitness is the minimum sample rho over the benchmarks."""

import pytest

from lpzero_jax import evaluation
from lpzero_jax.expression.genome import parse_genome
from lpzero_jax.inputs import stack_inputs
from lpzero_jax.modes import joint_search
from lpzero_jax.search.fitness import FitnessEvaluator
from lpzero_jax.study.transfer import genome_correlations
from tests.modes.conftest import study_config


@pytest.mark.slow  # two pools' extraction (~20 s shared)
def test_joint_search_fitness_is_the_minimum_sample_rho(tmp_path, two_pools):
    config, genomes = study_config(tmp_path, "joint_search")
    out = joint_search.run_joint(config, tmp_path / "run")
    best = parse_genome(out["best_genome"])
    sample_rho = {}
    for name, (c, pool) in two_pools.items():
        sample, held = evaluation.sample_split(pool.size, c.search.sample_archs, config.seed)  # == search's
        ev = FitnessEvaluator(stack_inputs([pool.inputs[i] for i in sample]), pool.truth[sample],
                              aggregate=c.search.aggregate)
        sample_rho[name] = ev(best).rho
        row = out["per_benchmark"][name]
        assert row["sample_rho"] == pytest.approx(sample_rho[name])
        assert row["held_out_size"] == pool.size - c.search.sample_archs
        assert row["held_out"] == pytest.approx(genome_correlations(
            [pool.inputs[i] for i in held], pool.truth[held], out["best_genome"], c.search.aggregate))
        assert row["searched_on_llama"]["genome"] == genomes["llama"]
    assert out["fitness_on_samples"] == pytest.approx(min(sample_rho.values()))
    history = (tmp_path / "run" / "joint_history.csv").read_text().splitlines()
    assert len(history) == 1 + config.search.generations + 1
    md = (tmp_path / "run" / "joint.md").read_text()
    assert "| joint search |" in md and "| searched on flexibert |" in md
