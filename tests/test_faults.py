"""Fault injection on tiny FlexiBERT runs: a full disk at random writes, damaged cache and
checkpoint files, two processes on one workdir, kill -9 at random points (slow). Each run either
ends with the results of an undisturbed run, or stops with a clear error having lost nothing it
had computed."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lpzero_jax import files
from lpzero_jax.errors import DataFileError, WorkdirBusyError
from lpzero_jax.inputs import CompactInputs
from lpzero_jax.workdir import run
from tests.conftest import tiny_config

REPO = Path(__file__).resolve().parent.parent
GENOME = "add(abs(W),log(W))"  # needs cached inputs (the cheap W-only level)


def rank_config(workdir, **kw):
    return tiny_config(**dict(dict(mode="rank", num_archs=4, workdir=str(workdir),
                                   proxies=f"params,{GENOME}", arch_reading="pytorch_reference"),
                              **kw))


def search_config(workdir, **kw):
    c = tiny_config(**dict(dict(mode="search", num_archs=6, workdir=str(workdir),
                                arch_reading="pytorch_reference"), **kw))
    c.search.update(dict(population=6, generations=12, pool_ratio=0.34, sample_archs=4,
                         baselines="", checkpoint_every=3))
    return c


def values(workdir):
    """What a rank run reports, without timings: scores.csv and ranking.json's correlations."""
    ranking = json.loads((workdir / "ranking.json").read_text())
    return ((workdir / "scores.csv").read_text(),
            {k: (v["spearman_rho"], v["kendall_tau"], v["n"]) for k, v in ranking.items()})


def temp_files(workdir):
    return sorted(str(p) for p in Path(workdir).rglob(f"*{files.TMP_SUFFIX}"))


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("undisturbed")
    run(rank_config(workdir))
    return values(workdir)


def test_a_full_disk_at_random_writes_stops_the_run_and_loses_nothing(tmp_path, monkeypatch,
                                                                      undisturbed):
    """Every atomic write (cached inputs, tables, config) may hit ENOSPC: each run stops with the
    OSError, no NaN enters the log, no temp file stays, and the run after the disk is freed
    reports exactly the undisturbed values."""
    rng = random.Random(1)  # fails at writes 3, 10, 2, 5: cache, table.md, config, table.csv
    real_sync = files._sync
    failed = 0
    for attempt in range(4):
        count, fail_at = [0], rng.randint(1, 11)

        def sync(f):
            count[0] += 1
            if count[0] == fail_at:
                raise OSError(errno.ENOSPC, "No space left on device")
            real_sync(f)

        monkeypatch.setattr(files, "_sync", sync)
        try:
            run(rank_config(tmp_path))
        except OSError as e:
            assert e.errno == errno.ENOSPC
            failed += 1
        log = tmp_path / "rank_values.jsonl"
        records = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
        assert all("error" not in r and np.isfinite(r["value"]) for r in records)
        assert temp_files(tmp_path) == []
    assert failed == 4
    monkeypatch.setattr(files, "_sync", real_sync)
    run(rank_config(tmp_path))
    assert values(tmp_path) == undisturbed


def test_damaged_cache_files_are_recomputed(tmp_path, undisturbed, user_cache):
    """Cached inputs truncated, overwritten with noise, or swapped between architectures."""
    run(rank_config(tmp_path))
    cached = sorted((user_cache / "inputs").rglob("*.npz"))
    assert len(cached) == 4
    cached[0].write_bytes(cached[0].read_bytes()[:50])
    cached[1].write_bytes(os.urandom(300))
    cached[2].write_bytes(cached[3].read_bytes())
    (tmp_path / "rank_values.jsonl").unlink()  # recompute every value from the cache
    run(rank_config(tmp_path))
    assert values(tmp_path) == undisturbed


@pytest.mark.slow
def test_a_damaged_checkpoint_stops_with_its_name_and_the_rest_is_kept(tmp_path, user_cache):
    run(search_config(tmp_path))
    result = json.loads((tmp_path / "search.json").read_text())
    ckpt = tmp_path / "search_checkpoint.json"
    ckpt.write_text(ckpt.read_text()[: len(ckpt.read_text()) // 2])
    cached = sorted((user_cache / "inputs").rglob("*.npz"))
    with pytest.raises(DataFileError, match="search_checkpoint.json line 1"):
        run(search_config(tmp_path))
    assert sorted((user_cache / "inputs").rglob("*.npz")) == cached  # extraction kept
    ckpt.unlink()  # the fix the message names
    run(search_config(tmp_path))
    assert json.loads((tmp_path / "search.json").read_text())["best_genome"] == result["best_genome"]


def test_a_second_process_on_the_workdir_is_refused(tmp_path):
    """Another process holds the workdir (a real second process): this run stops before any
    work with a clear error; a rank shard cannot join an unsharded run either."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from lpzero_jax import files\n"
         "with files.workdir_lock(sys.argv[1]):\n print('locked', flush=True); time.sleep(60)",
         str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(WorkdirBusyError, match=f"pid {holder.pid}"):
            run(rank_config(tmp_path))
        with pytest.raises(WorkdirBusyError):
            run(rank_config(tmp_path, rank_shard="0/2"))
        assert not (tmp_path / "config_rank.json").exists()
    finally:
        holder.kill()
        holder.wait()
    run(rank_config(tmp_path, num_archs=2))


def _main(workdir, mode, extra=(), cache=None):
    args = [sys.executable, "-m", "lpzero_jax.main", "--config=experiments/flexibert.py",
            f"--config.mode={mode}", f"--config.workdir={workdir}", "--config.seed=0",
            "--config.batch_size=2", "--config.seq_len=16", "--config.compilation_cache_dir=",
            "--config.inputs.sample_size=256",
            f"--config.inputs.cache_dir={cache or Path(workdir) / 'inputs_cache'}", *extra]
    if mode == "rank":
        args += ["--config.num_archs=4", f"--config.proxies=params,{GENOME}",
                 "--config.arch_reading=pytorch_reference"]
    else:
        args += ["--config.num_archs=6", "--config.arch_reading=pytorch_reference",
                 "--config.search.population=6",
                 "--config.search.generations=12", "--config.search.pool_ratio=0.34",
                 "--config.search.sample_archs=4", "--config.search.baselines=",
                 "--config.search.checkpoint_every=3"]
    return args


def _complete(workdir, mode):
    """Runs main in a subprocess to the end; asserts it succeeded."""
    done = subprocess.run(_main(workdir, mode), cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def _progress(workdir, mode):
    """How far a run in `workdir` has come: values logged (rank) or cached inputs + checkpointed
    generations (search)."""
    workdir = Path(workdir)
    cached = len(list(workdir.rglob("*.npz")))
    if mode == "rank":
        log = workdir / "rank_values.jsonl"
        return cached + (len(log.read_text().splitlines()) if log.exists() else 0)
    ckpt = workdir / "search_checkpoint.json"
    try:
        generation = json.loads(ckpt.read_text())["state"]["generation"] if ckpt.exists() else 0
    except (ValueError, KeyError):
        generation = 0
    return cached + generation


def _kill_at_random_points(workdir, mode, rng, kills=3):
    """Starts the run and SIGKILLs it at a random point of its progress (a random number of
    values / cached files / generations further, plus a random fraction of a second), `kills`
    times; then runs it to the end."""
    for _ in range(kills):
        proc = subprocess.Popen(_main(workdir, mode), cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        target = _progress(workdir, mode) + rng.randint(0, 4)
        while proc.poll() is None and _progress(workdir, mode) < target:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    _complete(workdir, mode)


@pytest.mark.slow
def test_rank_killed_at_random_points_ends_as_an_undisturbed_run(tmp_path):
    _complete(tmp_path / "clean", "rank")
    _kill_at_random_points(tmp_path / "killed", "rank", random.Random(1))
    assert values(tmp_path / "killed") == values(tmp_path / "clean")
    assert temp_files(tmp_path / "killed") == []


@pytest.mark.slow
def test_search_killed_at_random_points_ends_as_an_undisturbed_run(tmp_path):
    _complete(tmp_path / "clean", "search")
    _kill_at_random_points(tmp_path / "killed", "search", random.Random(2))
    for name in ("history.csv",):
        assert (tmp_path / "killed" / name).read_text() == (tmp_path / "clean" / name).read_text()
    a, b = (json.loads((tmp_path / d / "search.json").read_text()) for d in ("killed", "clean"))
    assert a["best_genome"] == b["best_genome"] and a["held_out"] == b["held_out"]
    assert temp_files(tmp_path / "killed") == []


@pytest.mark.slow
def test_two_searches_started_together_one_runs_one_is_refused(tmp_path):
    procs = [subprocess.Popen(_main(tmp_path, "search"), cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [(p.wait(), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in outs) == [0, 2]
    refused = [err for rc, err in outs if rc == 2][0]
    assert "lpzero: error: workdir" in refused and "in use by another run" in refused


@pytest.mark.slow
def test_two_runs_sharing_the_input_cache_at_once_agree_and_leave_it_whole(tmp_path):
    """Two processes, two workdirs, one input cache (what the default user cache is), started
    together: both finish with the same values, the cache holds one valid file per architecture
    and no temporary file; a third run extracts nothing."""
    cache = tmp_path / "cache"
    procs = [subprocess.Popen(_main(tmp_path / w, "rank", cache=cache), cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for w in ("a", "b")]
    outs = [(p.wait(), p.stderr.read()) for p in procs]
    assert [rc for rc, _ in outs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    assert values(tmp_path / "a") == values(tmp_path / "b")
    cached = sorted(cache.rglob("*.npz"))
    assert len(cached) == 4 and temp_files(cache) == []
    for path in cached:  # each verifies against its header and checksum
        CompactInputs.load(path, {"arch_id": path.name.split(".")[0]})
    stamps = {p: p.stat().st_mtime_ns for p in cached}
    third = subprocess.run(_main(tmp_path / "c", "rank", cache=cache), cwd=REPO,
                           capture_output=True, text=True)
    assert third.returncode == 0, third.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.npz")} == stamps  # none rewritten
    assert values(tmp_path / "c") == values(tmp_path / "a")


# --- stale data: a data file edited in place is never answered with the old values --------------

def _own_rows(family, width):
    """Two architectures of `family` in the own JSON-lines format, their width set by `width`."""
    if family == "gpt2":
        return [{"id": f"g{i}", "config": {"d_model": width, "n_head": [2] * (i + 1),
                                           "d_inner": [2 * width] * (i + 1), "n_positions": 64},
                 "score": 300.0 - i} for i in range(2)]
    if family == "flexibert":
        layer = {"operation_type": "SA", "operation_parameter": "SDP", "num_operation_heads": 2,
                 "feed_forward_dimension": 2 * width, "num_feed_forward": 1}
        return [{"id": f"f{i}", "config": {"hidden_size": width, "encoder_layers": [layer] * (i + 1)},
                 "score": 0.5 + i / 10} for i in range(2)]
    return [{"id": f"l{i}", "config": {"vocab_size": 512, "hidden_size": width, "layers": [
        {"intermediate_size": 2 * width, "num_heads": 2, "num_kv_heads": 2}] * (i + 1),
        "tie_word_embeddings": False}, "score": 70.0 - i} for i in range(2)]


def _write_own(path, family, width=16, rows=None):
    """An own benchmark file of `family`: `rows`, or `_own_rows(family, width)`."""
    header = {"format": "lpzero_jax.benchmark/1", "family": family, "metric": "score",
              "higher_is_better": family == "flexibert"}
    rows = _own_rows(family, width) if rows is None else rows
    path.write_text("\n".join(json.dumps(r) for r in [header] + rows) + "\n")
    return path


def _own_config(family, path, workdir):
    from tests.conftest import experiment_config, tiny_llama_config

    if family == "llama":
        return tiny_llama_config(mode="rank", benchmark_file=str(path), workdir=str(workdir))
    base = tiny_config() if family == "flexibert" else experiment_config("gpt2")
    base.update(dict(mode="rank", benchmark_file=str(path), workdir=str(workdir), proxies="params",
                     compilation_cache_dir="", num_archs=0, batch_size=2, seq_len=16))
    return base


@pytest.mark.parametrize("family", ["gpt2", "flexibert", "llama"])
def test_an_own_benchmark_edited_in_place_is_refused_not_answered_with_old_values(tmp_path, family):
    """Same ids, new widths: the rerun on the same workdir must not keep the old parameter counts,
    and the input cache key changes (a second workdir sharing the cache recomputes)."""
    from lpzero_jax.errors import ConfigError
    from lpzero_jax.input_store import InputStore

    bench = _write_own(tmp_path / "bench.jsonl", family, 16)
    config = _own_config(family, bench, tmp_path / "run")
    run(config)
    before = InputStore(config, tmp_path / "run").fingerprint
    time.sleep(0.01)
    _write_own(bench, family, 32)  # edited in place
    with pytest.raises(ConfigError, match="data_digests.benchmark"):
        run(config)
    assert InputStore(config, tmp_path / "other").fingerprint != before


def test_every_path_field_of_the_shipped_configs_is_digested_or_an_output():
    """A new field naming a file must be classified: read (its content digested) or written."""
    from flax import traverse_util

    from lpzero_jax.configs import NAMES
    from lpzero_jax.input_store import DATA_FILE_FIELDS, OUTPUT_PATH_FIELDS
    from tests.conftest import experiment_config

    for name in NAMES:
        flat = traverse_util.flatten_dict(experiment_config(name).to_dict(), sep=".")
        pathlike = {k for k in flat if k.rsplit(".", 1)[-1].endswith(("_file", "_dir", "_path"))
                    or k.endswith(("checkpoint", "workdir"))}
        unclassified = pathlike - set(DATA_FILE_FIELDS) - set(OUTPUT_PATH_FIELDS)
        assert not unclassified, f"{name}: {sorted(unclassified)}"


def test_a_field_the_family_forgot_is_still_digested(tmp_path, monkeypatch):
    """The union in `data_paths`: a family whose data_files leaves out a file the config names."""
    from lpzero_jax.families import get_family
    from lpzero_jax.input_store import data_digests

    family = get_family("flexibert")
    bench = _write_own(tmp_path / "bench.jsonl", "flexibert", 16)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("a\n")
    monkeypatch.setattr(type(family), "data_files", lambda self, config: {})
    config = _own_config("flexibert", bench, tmp_path / "run")
    config.vocab_path = str(vocab)
    first = data_digests(config)
    assert set(first) == {"benchmark_file", "vocab_path"}
    vocab.write_text("b\n")
    assert data_digests(config)["vocab_path"] != first["vocab_path"]


def test_token_ids_outside_an_architectures_vocabulary_are_refused_before_any_proxy(tmp_path):
    """A GPT-2 own-file architecture with a 1,000-token table under the GPT-2 tokenizer (ids up to
    50,256): JAX's gather would clamp the ids (silently other values). Refused by name before the
    architecture's first proxy, on the rank path (ArchContext) and the extraction path
    (ArchInputs)."""
    from lpzero_jax.errors import ModelProtocolError
    from lpzero_jax.families import get_family
    from lpzero_jax.input_store import ArchInputs

    rows = _own_rows("gpt2", 16)
    for r in rows:
        r["config"]["n_token"] = 1000
    bench = _write_own(tmp_path / "bench.jsonl", "gpt2", rows=rows)
    config = _own_config("gpt2", bench, tmp_path / "run")
    config.proxies, config.corpus_file = f"params,{GENOME}", str(_short_corpus(tmp_path))
    with pytest.raises(ModelProtocolError, match=r"family gpt2: token id \d{4,} of the batch is "
                       r"outside the vocabulary of 1000 ids of architecture g0"):
        run(config)
    log = tmp_path / "run" / "rank_values.jsonl"
    assert not log.exists() or log.read_text() == ""  # nothing scored
    family = get_family("gpt2")
    archs = family.load_benchmark(config)
    with pytest.raises(ModelProtocolError, match="outside the vocabulary of 1000 ids"):
        ArchInputs(family, archs[0], config, family.make_batch(config))
    # ids inside every table pass (negative ids are refused alike)
    ok = {"input_ids": np.zeros((2, 16), np.int32)}
    ArchInputs(family, archs[0], config, ok)
    with pytest.raises(ModelProtocolError, match="token id -1 "):
        ArchInputs(family, archs[0], config, {"input_ids": ok["input_ids"] - 1})


def _short_corpus(tmp_path):
    """A short text: no 1 MB corpus to tokenize."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" = Valkyria Chronicles = \n Senjō no Valkyria 3 : Unrecorded Chronicles "
                      "is a tactical role @-@ playing video game developed by Sega . \n" * 8)
    return corpus


def test_an_architecture_that_cannot_fit_is_refused_before_allocating_it(tmp_path):
    """The issue's probe: a GPT-2 own-file architecture with d_model 100,000 allocated 3.9 GB,
    then failed on 37 GiB. Refused by name from its parameter shapes (nothing allocated), with
    the estimate, the limit and the setting that overrides it; the architectures before it keep
    their values."""
    from lpzero_jax import runtime
    from lpzero_jax.errors import ConfigError
    from lpzero_jax.families import get_family
    from lpzero_jax.families.base import check_fits

    rows = _own_rows("gpt2", 16)[:1] + [{"id": "huge", "config": {
        "d_model": 100000, "n_head": [2], "d_inner": [64], "n_positions": 64}, "score": 1.0}]
    bench = _write_own(tmp_path / "bench.jsonl", "gpt2", rows=rows)
    config = _own_config("gpt2", bench, tmp_path / "run")
    config.proxies, config.corpus_file = f"params,{GENOME}", str(_short_corpus(tmp_path))
    rss = runtime.resident_bytes()
    with pytest.raises(ConfigError, match=r"family gpt2: architecture huge needs at least "
                       r"[0-9.]+ GB \(parameters [0-9.]+ GB, activations [0-9.]+ GB\) but the "
                       r"limit is [0-9.]+ GB \(available host memory.*memory_limit_gb=N"):
        run(config)
    assert runtime.resident_bytes() - rss < 1 << 30  # nothing of its size was allocated
    logged = [json.loads(x) for x in (tmp_path / "run" / "rank_values.jsonl").read_text().splitlines()]
    assert {(r["arch_id"], r["proxy"]) for r in logged} >= {("g0", "params"), ("g0", GENOME)}

    family = get_family("gpt2")
    huge = family.model_config(family.load_benchmark(config)[1], config)
    batch = {"input_ids": np.zeros((2, 16), np.int32)}
    config.memory_limit_gb = 1e6  # the override: checked against the given limit instead
    check_fits(family, huge, config, batch, "huge")
    config.memory_limit_gb = 0.001
    small = family.model_config(family.load_benchmark(config)[0], config)
    with pytest.raises(ConfigError, match=r"limit is 0.0 GB \(memory_limit_gb\)"):
        check_fits(family, small, config, batch, "g0")
