"""`rank` mode end to end on a few real FlexiBERT archs (tiny batch): files, values, resume."""

import csv
import json

import numpy as np
import pytest

from lpzero_jax.modes import rank
from tests.conftest import tiny_config


def test_rank_writes_scores_and_ranking_and_resumes(tmp_path):
    config = tiny_config(num_archs=4, proxies="params,attention_confidence,add(abs(G),log(W))",
                         arch_reading="pytorch_reference")
    ranking = rank.run(config, tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "scores.csv")))
    assert [int(r["arch_id"]) for r in rows] == [0, 1, 2, 3]
    assert [float(r["params"]) for r in rows] == [13330176, 11106199, 8840082, 5526167]
    assert rows[0]["ground_truth"] == "74.73375"
    assert all(np.isfinite(float(r["attention_confidence"])) for r in rows)
    saved = json.load(open(tmp_path / "ranking.json"))
    assert set(saved) == {"params", "attention_confidence", "add(abs(G),log(W))"}
    assert saved["params"]["spearman_rho"] == pytest.approx(1.0)  # params track GLUE on ids 0-3
    assert saved["params"]["n"] == 4 and saved["params"]["seconds_per_arch"] > 0
    # resume: nothing is recomputed, the files are identical
    lines = (tmp_path / "rank_values.jsonl").read_text().splitlines()
    again = rank.run(config, tmp_path)
    assert (tmp_path / "rank_values.jsonl").read_text().splitlines() == lines
    assert again == ranking


def test_unknown_proxy_is_a_clear_error(tmp_path):
    with pytest.raises(KeyError, match="unknown proxy 'nope'"):
        rank.run(tiny_config(num_archs=2, proxies="params,nope"), tmp_path)


def test_shards_share_a_workdir_and_the_last_run_writes_the_tables(tmp_path):
    """rank_shard "i/n": each shard scores its own archs into the shared log; a shard that finds
    values missing writes no tables; a run without it then only writes them."""
    config = tiny_config(num_archs=5, proxies="params")
    config.rank_shard = "1/2"
    assert rank.run(config, tmp_path) == {}  # archs 1 and 3 only: 0, 2, 4 still missing
    logged = [json.loads(x) for x in (tmp_path / "rank_values.jsonl").read_text().splitlines()]
    assert sorted(int(r["arch_id"]) for r in logged) == [1, 3]
    config.rank_shard = "0/2"
    ranking = rank.run(config, tmp_path)  # completes the set: this shard writes the tables
    assert ranking["params"]["n"] == 5 and (tmp_path / "table.md").exists()
    lines = (tmp_path / "rank_values.jsonl").read_text().splitlines()
    config.rank_shard = ""
    assert rank.run(config, tmp_path) == ranking
    assert (tmp_path / "rank_values.jsonl").read_text().splitlines() == lines  # nothing recomputed


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "-1/2"])
def test_bad_shard_is_a_clear_error(text):
    with pytest.raises(ValueError, match="rank_shard"):
        rank.parse_shard(text)
