"""`search` mode end to end on real FlexiBERT archs with a tiny batch and budget."""

import json

import pytest

from lpzero_jax.errors import ConfigError, DataFileError
from lpzero_jax.modes import search
from tests.conftest import tiny_config


def search_config(**kw):
    c = tiny_config(num_archs=8, **kw)
    c.search.update(dict(population=6, generations=15, pool_ratio=0.34, sample_archs=5,
                         baselines="random", checkpoint_every=5))
    return c


def test_search_writes_results_and_resumes(tmp_path):
    result = search.run(search_config(), tmp_path)
    saved = json.load(open(tmp_path / "search.json"))
    assert saved["best_genome"] == result["best_genome"]
    assert -1 <= saved["fitness_on_sample"] <= 1
    assert saved["held_out"]["n"] == 3 and saved["all"]["n"] == 8
    assert saved["candidates_evaluated"] >= 6 + 1
    assert set(saved["seconds"]) >= {"input_extraction_sample", "compilation", "evaluation", "total"}
    assert saved["peak_rss_mb"] > 0
    assert "random" in saved["baselines"]
    # the answer (search/answer.py): the flexibert config returns the ranker; every method reported
    assert saved["answer"]["method"] == "ranker"
    assert saved["answer"]["methods"]["genome"]["held_out"]["spearman_rho"] == \
        pytest.approx(saved["held_out"]["spearman_rho"])
    assert saved["answer"]["choice"]["features"][-2:] == ["genome", "params"]
    assert (tmp_path / "ranker.json").is_file()
    assert set(saved["answer"]["methods"]) == {"genome", "best_zoo_on_S", "params", "ranker"}
    ranking = (tmp_path / "answer_ranking.csv").read_text().splitlines()
    assert ranking[0] == "rank,arch_id,score,labelled,label" and len(ranking) == 1 + 8
    assert (tmp_path / "evolution.png").stat().st_size > 1000
    history = (tmp_path / "history.csv").read_text().splitlines()
    assert history[0].startswith("generation,best_fitness,population_mean")
    assert len(history) == 1 + 16
    # a finished run with the same seed reproduces the same best genome, from its checkpoint
    again = search.run(search_config(), tmp_path)
    assert again["best_genome"] == result["best_genome"]


def test_more_generations_extend_a_finished_search_exactly(tmp_path):
    """search.generations is resumable (main's RESUMABLE_CHANGES and the checkpoint agree): 10
    generations then 15 gives the run of 15 from the start."""
    short = search_config()
    short.search.generations, short.search.baselines = 10, ""
    search.run(short, tmp_path / "a")
    longer = search_config()
    longer.search.baselines = ""
    extended = search.run(longer, tmp_path / "a")
    fresh = search.run(longer, tmp_path / "b")
    assert extended["best_genome"] == fresh["best_genome"]
    assert (tmp_path / "a" / "history.csv").read_text() == (tmp_path / "b" / "history.csv").read_text()
    with pytest.raises(ConfigError, match="search.generations=15 or more"):
        search.run(short, tmp_path / "a")


def test_a_damaged_checkpoint_names_the_file_and_line(tmp_path):
    config = search_config()
    config.search.baselines = ""
    search.run(config, tmp_path)
    path = tmp_path / "search_checkpoint.json"
    path.write_text(path.read_text()[:200])
    with pytest.raises(DataFileError, match=r"search_checkpoint.json line 1: not valid JSON.*delete it"):
        search.run(config, tmp_path)
