"""`rank` mode end to end on a few real FlexiBERT archs (tiny batch): files, values, resume."""

import csv
import json

import numpy as np
import pytest

from lpzero_jax.errors import DataFileError, RepeatedFailureError
from lpzero_jax.modes import rank
from lpzero_jax.proxies.scoring import pass_breakdown
from tests.conftest import tiny_config


def test_rank_writes_scores_and_ranking_and_resumes(tmp_path):
    config = tiny_config(num_archs=4, proxies="params,attention_confidence,add(abs(G),log(W))",
                         arch_reading="pytorch_reference")
    ranking = rank.run(config, tmp_path).ranking
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
    again = rank.run(config, tmp_path).ranking
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
    assert rank.run(config, tmp_path) is None  # archs 1 and 3 only: 0, 2, 4 still missing
    logged = [json.loads(x) for x in (tmp_path / "rank_values.jsonl").read_text().splitlines()]
    assert sorted(int(r["arch_id"]) for r in logged) == [1, 3]
    config.rank_shard = "0/2"
    ranking = rank.run(config, tmp_path).ranking  # completes the set: this shard writes the tables
    assert ranking["params"]["n"] == 5 and (tmp_path / "table.md").exists()
    lines = (tmp_path / "rank_values.jsonl").read_text().splitlines()
    config.rank_shard = ""
    assert rank.run(config, tmp_path).ranking == ranking
    assert (tmp_path / "rank_values.jsonl").read_text().splitlines() == lines  # nothing recomputed


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "-1/2"])
def test_bad_shard_is_a_clear_error(text):
    with pytest.raises(ValueError, match="rank_shard"):
        rank.parse_shard(text)


def _proxies_with(monkeypatch, **extra):
    """rank.run's proxies: the real `params` plus test proxies (name -> fn(ctx))."""
    from lpzero_jax.proxies import Proxy
    from lpzero_jax.proxies.resolve import resolve_proxies

    def resolve(spec):
        out = resolve_proxies("params")
        out.update({name: Proxy(fn) for name, fn in extra.items()})
        return out

    monkeypatch.setattr(rank, "resolve_proxies", resolve)


def _log(path):
    return [json.loads(x) for x in (path / "rank_values.jsonl").read_text().splitlines()]


def test_environment_error_stops_the_run_and_is_never_a_score(tmp_path, monkeypatch):
    """A full disk while caching inputs: the run stops with the OSError, nothing is scored NaN,
    and the rerun (disk freed) gives the values of an undisturbed run."""
    import errno

    from lpzero_jax import files

    genome = "add(abs(W),log(W))"  # W only: the cheap 'weights' level, cached like the others
    config = tiny_config(num_archs=3, proxies=f"params,{genome}", arch_reading="pytorch_reference")
    clean = rank.run(config, tmp_path / "clean").ranking
    config.inputs.cache_dir = str(tmp_path / "cache")  # not the clean run's: extracts again

    sync, synced = files._sync, []

    def full_disk(f):  # the disk fills up after the first architecture's inputs are cached
        if synced:
            raise OSError(errno.ENOSPC, "No space left on device")
        synced.append(f)
        sync(f)

    monkeypatch.setattr(files, "_sync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        rank.run(config, tmp_path / "run")
    logged = _log(tmp_path / "run")
    # the first architecture's values are kept, not lost (in the order the passes are scored)
    assert sorted((r["arch_id"], r["proxy"]) for r in logged) == sorted(("0", name) for name in clean)
    assert all(np.isfinite(r["value"]) and "error" not in r for r in logged)
    assert not (tmp_path / "run" / "scores.csv").exists()
    monkeypatch.undo()
    again = rank.run(config, tmp_path / "run").ranking
    assert {k: v["spearman_rho"] for k, v in again.items()} == \
        {k: v["spearman_rho"] for k, v in clean.items()}
    assert (tmp_path / "run" / "scores.csv").read_text() == \
        (tmp_path / "clean" / "scores.csv").read_text()


def test_a_proxy_failure_is_recorded_with_its_reason_and_retried(tmp_path, monkeypatch):
    calls = []

    def flaky(ctx):
        calls.append(ctx.arch.arch_id)
        if ctx.arch.arch_id == 1 and calls.count(1) == 1:
            raise FloatingPointError("non-finite gradient")
        return float(ctx.arch.arch_id)

    _proxies_with(monkeypatch, flaky=flaky)
    config = tiny_config(num_archs=4)
    ranking = rank.run(config, tmp_path).ranking
    failed = [r for r in _log(tmp_path) if "error" in r]
    assert [(r["arch_id"], r["proxy"], r["error"]) for r in failed] == \
        [("1", "flaky", "FloatingPointError: non-finite gradient")]
    assert ranking["flaky"]["failures"] == {"1": "FloatingPointError: non-finite gradient"}
    assert ranking["flaky"]["n"] == 3
    rows = list(csv.DictReader(open(tmp_path / "scores.csv")))
    assert rows[1]["flaky"] == "nan"
    again = rank.run(config, tmp_path).ranking  # retried, not kept as a final value
    assert calls == [0, 1, 2, 3, 1]
    assert "failures" not in again["flaky"] and again["flaky"]["n"] == 4
    assert np.isfinite(again["flaky"]["spearman_rho"])


def test_the_same_error_on_the_first_archs_stops_the_run(tmp_path, monkeypatch):
    def broken(ctx):
        raise ValueError("sequence length 192 exceeds the 32 positions")

    _proxies_with(monkeypatch, broken=broken)
    with pytest.raises(RepeatedFailureError, match=r"proxy broken failed on each of the "
                       r"first 3 architectures \(0, 1, 2\).*sequence length 192"):
        rank.run(tiny_config(num_archs=6), tmp_path)
    assert sorted({r["arch_id"] for r in _log(tmp_path)}) == ["0", "1", "2"]  # not the whole benchmark


def test_a_wrongly_typed_log_line_names_the_file_and_line(tmp_path):
    config = tiny_config(num_archs=2)
    rank.run(config, tmp_path)
    path = tmp_path / "rank_values.jsonl"
    path.write_text(path.read_text() + '{"arch_id": 0, "proxy": "x", "value": "abc", "seconds": 1}\n')
    with pytest.raises(DataFileError, match=r"rank_values.jsonl line 3: .*delete that line"):
        rank.run(config, tmp_path)
    path.write_text(path.read_text().splitlines()[0] + "\n[1, 2]\n")
    with pytest.raises(DataFileError, match="line 2: expected a JSON object"):
        rank.run(config, tmp_path)


def test_a_line_cut_by_a_kill_is_recomputed_and_the_log_stays_readable(tmp_path):
    config = tiny_config(num_archs=3)
    first = rank.run(config, tmp_path).ranking
    path = tmp_path / "rank_values.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][:17])  # killed mid-write
    again = rank.run(config, tmp_path).ranking
    assert again["params"]["spearman_rho"] == first["params"]["spearman_rho"]
    records = [x for x in path.read_text().splitlines()]
    same = lambda r: {k: v for k, v in json.loads(r).items() if k not in ("seconds", "own_seconds")}  # noqa: E731
    assert records[2] == lines[2][:17] and same(records[3]) == same(lines[2])


def test_arch_ids_score_only_those_and_log_own_seconds(tmp_path):
    """rank.arch_ids picks architectures by id (a timing sample); each record carries the proxy's
    exclusive seconds (its call minus the shared stages it built), at most its seconds."""
    config = tiny_config(num_archs=5, proxies="params,attention_confidence")
    config.rank.arch_ids = "3,1"
    ranking = rank.run(config, tmp_path).ranking
    logged = [json.loads(x) for x in (tmp_path / "rank_values.jsonl").read_text().splitlines()]
    assert sorted({r["arch_id"] for r in logged}) == ["1", "3"] and ranking["params"]["n"] == 2
    for r in logged:
        assert 0 <= r["own_seconds"] <= r["seconds"] + 1e-9
    # attention_confidence builds the forward pass: that is the shared stage's, not its own
    conf = [r for r in logged if r["proxy"] == "attention_confidence"]
    assert all(r["own_seconds"] < r["seconds"] for r in conf)


def test_unknown_arch_id_is_a_clear_error(tmp_path):
    config = tiny_config(num_archs=3, proxies="params")
    config.rank.arch_ids = "1,nope"
    with pytest.raises(ValueError, match="rank.arch_ids: nope not among the 3"):
        rank.run(config, tmp_path)


def test_pass_breakdown_counts_each_second_once():
    line = pass_breakdown({"backward": 2.0, "hvp": 3.0}, {"grasp": 0.75, "params": 0.25})
    assert line == "hvp 3.00s, backward 2.00s, [grasp] 0.75s, [other proxies] 0.25s, total 6.00s"
