"""workdir.run refuses to resume a workdir whose saved config differs in a value-changing field."""

import json

import pytest

from lpzero_jax.workdir import config_conflicts, run
from tests.conftest import tiny_config


def test_conflicts_ignore_paths_proxies_and_missing_fields():
    old = {"seed": 1, "workdir": "a", "proxies": "params", "search": {"population": 8,
           "generations": 5}, "inputs": {"cache_dir": "x", "sample_size": 64}, "legacy": 3,
           "study": {"proxies": "", "pool": "all"}}
    new = {"seed": 1, "workdir": "b", "proxies": "all", "search": {"population": 8,
           "generations": 50}, "inputs": {"cache_dir": "y", "sample_size": 64},
           "study": {"proxies": "wpca", "pool": "all"}}
    assert config_conflicts(old, new) == []
    new["seed"], new["inputs"]["sample_size"], new["search"]["population"] = 2, 128, 9
    new["study"]["pool"] = "cached"
    assert config_conflicts(old, new) == ["inputs.sample_size", "search.population", "seed",
                                          "study.pool"]


def test_rerun_with_other_settings_is_refused(tmp_path, data_root):
    config = tiny_config(data_root=str(data_root), mode="rank", num_archs=2,
                         workdir=str(tmp_path), proxies="params")
    run(config)
    first = json.loads((tmp_path / "ranking.json").read_text())
    run(config)  # same settings: resumes (nothing left to do), same result
    assert json.loads((tmp_path / "ranking.json").read_text()) == first
    config.batch_size = 4
    with pytest.raises(ValueError, match="batch_size differ"):
        run(config)


def test_a_start_that_fails_writes_no_config_so_the_fixed_command_runs(tmp_path, data_root):
    from lpzero_jax.errors import ConfigError

    config = tiny_config(data_root=str(data_root), mode="rank", num_archs=2,
                         workdir=str(tmp_path), proxies="params", batch_size=0)
    with pytest.raises(ConfigError, match="batch_size"):
        run(config)
    config.batch_size, config.num_archs = 2, 900
    with pytest.raises(ConfigError, match="num_archs 900 exceeds the 500"):
        run(config)
    assert not (tmp_path / "config_rank.json").exists()
    config.num_archs = 2
    assert run(config).ranking["params"]["n"] == 2


def test_changed_corpus_content_is_refused_on_resume(tmp_path, data_root):
    """corpus_file may move (its path is resumable) but not change: values computed on the old
    text must not be reported as the new one's."""
    import shutil

    corpus = tmp_path / "corpus.txt"
    shutil.copy(data_root / "wikitext-2" / "valid.txt", corpus)
    config = tiny_config(data_root=str(data_root), mode="rank", num_archs=2,
                         workdir=str(tmp_path / "run"), proxies="params", corpus_file=str(corpus))
    run(config)
    moved = tmp_path / "moved.txt"
    shutil.copy(corpus, moved)
    config.corpus_file = str(moved)
    run(config)  # same content elsewhere: resumes
    moved.write_text(moved.read_text()[1000:])
    with pytest.raises(ValueError, match=r"data_digests\.corpus differ"):
        run(config)
    saved = json.loads((tmp_path / "run" / "config_rank.json").read_text())
    assert set(saved["data_digests"]) == {"benchmark", "corpus", "vocab"}


def test_main_prints_a_user_error_as_one_line_with_a_nonzero_status(tmp_path):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "lpzero_jax.main", "--config=experiments/flexibert.py",
           "--config.mode=search", "--config.search.checkpoint_every=0",
           f"--config.workdir={tmp_path}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    lines = [x for x in out.stderr.splitlines() if x.startswith("lpzero:")]
    assert lines == ["lpzero: error: search.checkpoint_every must be an integer >= 1, got 0; set "
                     "--config.search.checkpoint_every=N (details: rerun with --traceback)"]
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "config_search.json").exists()


@pytest.mark.slow
def test_the_traceback_flag_shows_the_whole_traceback(tmp_path):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "lpzero_jax.main", "--config=experiments/flexibert.py",
           "--config.batch_size=0", f"--config.workdir={tmp_path}", "--traceback"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "Traceback" in out.stderr and "ConfigError" in out.stderr


def test_report_error_sorts_errors():
    import errno

    from lpzero_jax.errors import ConfigError
    from lpzero_jax.main import report_error

    assert report_error(ConfigError("x")) == 2
    assert report_error(OSError(errno.ENOSPC, "No space left on device")) == 1
    assert report_error(RuntimeError("a bug")) == 0  # re-raised with its traceback


def test_two_runs_on_one_workdir_are_refused(tmp_path, data_root):
    from lpzero_jax import files
    from lpzero_jax.errors import WorkdirBusyError

    config = tiny_config(data_root=str(data_root), mode="rank", num_archs=2,
                         workdir=str(tmp_path), proxies="params")
    with files.workdir_lock(tmp_path):  # another process's run
        with pytest.raises(WorkdirBusyError, match="in use by another run"):
            run(config)
        config.rank_shard = "0/2"
        with pytest.raises(WorkdirBusyError):  # a shard next to an unsharded run
            run(config)
    with files.workdir_lock(tmp_path, shared=True):  # another shard
        assert run(config) is None


def test_hosts_of_a_distributed_job_share_the_workdir():
    """Every host of a jax.distributed job takes the workdir lock in shared mode, including when JAX
    finds the cluster itself (SLURM, Cloud TPU: auto_detect, num_processes left at 1)."""
    from lpzero_jax.workdir import _shares_workdir
    from tests.conftest import tiny_config

    c = tiny_config()
    assert not _shares_workdir(c)
    c.distributed.auto_detect = True
    assert _shares_workdir(c)
    c = tiny_config()
    c.distributed.num_processes = 2
    assert _shares_workdir(c)


@pytest.mark.slow  # three runs of the rank mode (~40 s shared)
def test_a_rerun_that_narrows_the_outputs_is_refused_and_widening_is_allowed(tmp_path, data_root):
    """Fewer architectures or dropped proxies would rewrite table.md, scores.csv, ranking.json for
    less without a word; more architectures and added proxies extend the run."""
    from lpzero_jax.errors import ConfigError

    config = tiny_config(data_root=str(data_root), mode="rank", num_archs=3,
                         workdir=str(tmp_path), proxies="params,synaptic_diversity")
    run(config)
    before = {p: (tmp_path / p).read_bytes() for p in ("scores.csv", "ranking.json", "table.md",
                                                         "config_rank.json")}
    for field, value, named in (("num_archs", 2, "num_archs: 3 -> 2"),
                                ("proxies", "params", "proxies: drops synaptic_diversity")):
        narrower = tiny_config(**dict(config.to_dict(), **{field: value}))
        with pytest.raises(ConfigError, match=named):
            run(narrower)
        assert {p: (tmp_path / p).read_bytes() for p in before} == before
    wider = tiny_config(**dict(config.to_dict(), num_archs=4,
                               proxies="params,synaptic_diversity,add(abs(W),log(W))"))
    assert run(wider).ranking["params"]["n"] == 4


def test_narrowed_reads_all_and_arch_ids():
    from lpzero_jax.workdir import narrowed

    assert narrowed({"proxies": "all"}, {"proxies": "params"}, "rank")
    assert not narrowed({"proxies": "params"}, {"proxies": "all"}, "rank")
    assert narrowed({"proxies": "all"}, {"proxies": "params"}, "search") == []  # search reads none
    assert narrowed({"rank": {"arch_ids": ""}}, {"rank": {"arch_ids": "1,2"}}, "rank")
    assert not narrowed({"rank": {"arch_ids": "1"}}, {"rank": {"arch_ids": ""}}, "rank")
    assert narrowed({"num_archs": 0}, {"num_archs": 5}, "search") == ["num_archs: all -> 5"]
