"""Multi-host runs for real: 2 processes joined by jax.distributed on a loopback coordinator (CPU).

Each process is the real command line (`python -m lpzero_jax.main ... --config.distributed.*`);
the checks are that a 2-process search equals a 1-process search byte for byte, that a process
killed mid-run loses nothing its peer or it already stored (the rerun extracts only the rest), and
that a process whose share fails makes the whole job fail with that process's error, not hang.
"""

import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
NUM_ARCHS = 8  # of the LLaMA mini-benchmark: 5 sampled, 3 held out

# the real entry point; FAIL_ARCH (env) makes this process's extraction of that arch raise, the
# way a broken node or a full disk would
ENTRY = """
import os, sys
from absl import app
from lpzero_jax import input_store, main
fail = os.environ.get("LPZERO_TEST_FAIL_ARCH")
if fail:
    original = input_store.InputStore.__call__
    def broken(self, ctx, *a, **k):
        if str(ctx.arch.arch_id) == fail:
            raise OSError(28, "No space left on device (injected)")
        return original(self, ctx, *a, **k)
    input_store.InputStore.__call__ = broken
sys.argv = ["lpzero"] + sys.argv[1:]
app.run(main.main)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _args(workdir: Path, xla_cache: Path, extra=()) -> list:
    return [f"--config={REPO / 'experiments' / 'llama.py'}", "--config.mode=search",
            f"--config.workdir={workdir}", f"--config.compilation_cache_dir={xla_cache}",
            f"--config.num_archs={NUM_ARCHS}", "--config.seed=0", "--config.batch_size=3",
            "--config.seq_len=12", "--config.inputs.sample_size=64",
            "--config.search.sample_archs=5", "--config.search.generations=4",
            "--config.search.population=6", "--config.search.pool_ratio=0.34",
            "--config.search.baselines=random", "--config.search.checkpoint_every=1", *extra]


def _start(workdir, xla_cache, process_id=None, port=None, env_extra=None, **timeouts):
    # one process: the cache a multi-process job uses by default (inside the shared workdir)
    extra = [f"--config.inputs.cache_dir={Path(workdir) / 'inputs_cache'}"]
    if process_id is not None:
        timeouts = dict(dict(initialization_timeout_s=60, heartbeat_timeout_s=5,
                             shutdown_timeout_s=30, barrier_timeout_s=120), **timeouts)
        extra = [f"--config.distributed.coordinator_address=127.0.0.1:{port}",
                 "--config.distributed.num_processes=2",
                 f"--config.distributed.process_id={process_id}"]
        extra += [f"--config.distributed.{k}={v}" for k, v in timeouts.items()]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               JAX_PLATFORMS="cpu", **(env_extra or {}))
    log = open(Path(workdir).parent / f"{Path(workdir).name}.p{process_id}.log", "a")
    return subprocess.Popen([sys.executable, "-c", ENTRY, *_args(workdir, xla_cache, extra)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def _wait(procs, timeout=300):
    deadline = time.monotonic() + timeout
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=max(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("a process of the job hung")
    return codes


def _log(workdir, process_id) -> str:
    return (Path(workdir).parent / f"{Path(workdir).name}.p{process_id}.log").read_text()


def _two_processes(workdir, xla_cache, env_extra=None):
    port = _free_port()
    return [_start(workdir, xla_cache, i, port, (env_extra or {}).get(i)) for i in (0, 1)]


def _result(workdir: Path) -> dict:
    """search.json without the timings, history.csv and the cached inputs, as compared."""
    saved = json.loads((workdir / "search.json").read_text())
    saved.pop("seconds"), saved.pop("peak_rss_mb")
    caches = sorted((workdir / "inputs_cache").rglob("*.npz"))
    arrays = {}
    for path in caches:
        with np.load(path) as data:
            arrays[path.name] = {k: data[k].tobytes() for k in data.files}
    return {"search": saved, "history": (workdir / "history.csv").read_bytes(), "inputs": arrays}


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The reference: the same job on one process."""
    root = tmp_path_factory.mktemp("distributed")
    workdir = root / "single"
    assert _wait([_start(workdir, root / "xla")]) == [0], _log(workdir, None)
    return root, _result(workdir)


@pytest.mark.slow  # two interpreters compile the whole job: ~2 min on 2 shared cores; the failing-share test stays
def test_two_processes_equal_one_byte_for_byte(single):
    root, reference = single
    workdir = root / "two"
    codes = _wait(_two_processes(workdir, root / "xla"))
    assert codes == [0, 0], _log(workdir, 0) + _log(workdir, 1)
    assert _result(workdir) == reference
    for i in (0, 1):  # each process logs its share; each extracted only its own
        log = _log(workdir, i)
        share = (3, 2)[i]  # of the 5 sampled archs; then (2, 1) of the 3 held out
        assert f"process {i} of 2: {share} architectures in its share, {share} to extract" in log
        assert log.count("extracted in") == (5, 3)[i]
    # only process 0 wrote the reports (one config file, no second writer's temporaries)
    assert sorted(p.name for p in workdir.glob("config_*.json")) == ["config_search.json"]


@pytest.mark.slow  # a kill -9 of a 2-process job (~40 s alone)
def test_killed_process_resumes_from_the_shared_cache(single):
    root, reference = single
    workdir = root / "killed"
    procs = _two_processes(workdir, root / "xla")
    cache = workdir / "inputs_cache"
    deadline = time.monotonic() + 240
    while len(list(cache.rglob("*.npz"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)
    codes = _wait(procs, timeout=180)  # process 0 must not hang on its dead peer
    assert codes == [1, -signal.SIGKILL]
    assert _names_process_1(_one_line_end(_log(workdir, 0), 0))
    stored = {p: p.stat().st_mtime_ns for p in cache.rglob("*.npz")}
    assert len(stored) >= 2

    codes = _wait(_two_processes(workdir, root / "xla"))
    assert codes == [0, 0], _log(workdir, 0) + _log(workdir, 1)
    assert all(p.stat().st_mtime_ns == t for p, t in stored.items())  # nothing recomputed
    assert _result(workdir) == reference


def test_failing_share_fails_the_job_with_its_error(single):
    root, _ = single
    workdir = root / "failing"
    # mb002 is in process 1's share of the sampled archs (process 0 takes mb001, mb003, mb005)
    procs = _two_processes(workdir, root / "xla", {1: {"LPZERO_TEST_FAIL_ARCH": "mb002"}})
    codes = _wait(procs, timeout=180)
    assert codes[0] != 0 and codes[1] != 0
    assert "No space left on device (injected)" in _log(workdir, 1)
    assert "process 1 of 2 failed" in _log(workdir, 0)
    assert "No space left on device (injected)" in _log(workdir, 0)
    assert not (workdir / "search.json").exists()


def _one_line_end(log: str, process_id: int) -> str:
    """The log of a process that a fault of the job ended: one `lpzero: error: process I of 2:`
    line, the last, and no abort dump of JAX's runtime. Returns that line."""
    lines = [ln for ln in log.splitlines() if ln.strip()]
    said = [ln for ln in lines if ln.startswith("lpzero:")]
    assert len(said) == 1 and lines[-1] == said[0], log[-3000:]
    assert said[0].startswith(f"lpzero: error: process {process_id} of 2: "), said[0]
    assert "Fatal Python error" not in log and "Check failure" not in log, log[-3000:]
    return said[0]


def _names_process_1(line: str) -> bool:
    """Whether the line says process 1 was lost: JAX's heartbeat found it (the supervisor's line)
    or a barrier did (HostFailure)."""
    return "process 1 stopped" in line or "process(es) [1] of 2 stopped" in line


@pytest.mark.slow  # 53 s measured on shared, loaded cores (two interpreters start)
def test_a_peer_never_started_ends_process_0_with_one_line(tmp_path):
    """Process 0 of 2 alone: JAX's runtime aborted it after initialization_timeout_s (exit 134, a
    stack dump, no cause); now one line names the missing processes and the setting."""
    workdir = tmp_path / "alone"
    codes = _wait([_start(workdir, tmp_path / "xla", 0, _free_port(), initialization_timeout_s=2)],
                  timeout=300)
    ended = datetime.datetime.now()
    log = _log(workdir, 0)
    assert codes == [1], log[-3000:]
    line = _one_line_end(log, 0)
    assert "not every one of the 2 processes joined at 127.0.0.1:" in line
    assert "distributed.initialization_timeout_s = 2 s" in line
    assert not (workdir / "search.json").exists() and not list(workdir.glob("config_*.json"))
    # within the timeout (and some slack for a loaded machine) of the wait's start (absl's clock)
    joining = re.search(r"^I\d{4} (\d\d:\d\d:\d\d\.\d+) .*Connecting to JAX distributed", log,
                        re.M).group(1)
    waited = ended - datetime.datetime.combine(ended.date(), datetime.time.fromisoformat(joining))
    assert datetime.timedelta(seconds=2) <= waited < datetime.timedelta(seconds=30)


@pytest.mark.slow
@pytest.mark.parametrize("victim", [1, 0])
def test_a_killed_peer_ends_the_other_with_one_line(tmp_path, victim):
    """A peer killed mid-run (process 1, or process 0: the coordinator): the survivor stops within
    the heartbeat timeout with one line naming the lost process; nothing is written as a result."""
    workdir, port = tmp_path / "job", _free_port()
    procs = [_start(workdir, tmp_path / "xla", i, port, heartbeat_timeout_s=2) for i in (0, 1)]
    deadline = time.monotonic() + 180
    while not all("jax.distributed: process" in _log(workdir, i) for i in (0, 1)):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            for p in procs:
                p.kill()
            pytest.fail("the job did not start: " + _log(workdir, 0)[-2000:])
        time.sleep(0.1)
    procs[victim].send_signal(signal.SIGKILL)
    survivor = 1 - victim
    codes = _wait(procs, timeout=120)
    assert codes[victim] == -signal.SIGKILL and codes[survivor] == 1
    line = _one_line_end(_log(workdir, survivor), survivor)
    assert ("lost the coordinator (process 0 at 127.0.0.1:" in line if victim == 0 else
            _names_process_1(line)), line
    assert not (workdir / "search.json").exists()
