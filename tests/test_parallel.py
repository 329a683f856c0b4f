"""Scale-out: 8 virtual CPU devices give the same results as one (run in a subprocess, since the
device count is fixed when JAX starts)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from lpzero_jax import parallel

REPO = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    from lpzero_jax import parallel
    from lpzero_jax.expression.genome import random_genome
    from lpzero_jax.expression.program import GenomeProgram
    from lpzero_jax.search.evolution import EvolutionConfig, evolve
    from lpzero_jax.search.fitness import FitnessEvaluator
    from lpzero_jax.expression import compile_genome
    from tests.expression.test_compile_and_program import fake_archs

    stacked = fake_archs(n=13, seed=9)
    mesh = parallel.arch_mesh() if jax.device_count() > 1 else None
    rng = np.random.default_rng(0)
    genomes = [random_genome(rng, 2) for _ in range(30)]
    scores = GenomeProgram(stacked, 2, mesh=mesh).scores(genomes)
    truth = compile_genome("mul(l1(W),abs(mean(H)))")(stacked)
    state = evolve(FitnessEvaluator(stacked, truth, n_unary=2, mesh=mesh),
                   EvolutionConfig(population=8, generations=25, pool_ratio=0.25, seed=3))
    squares = parallel.map_on_devices(lambda x: float(jax.numpy.square(x)), list(range(10)))
    print(json.dumps({"devices": jax.device_count(), "scores": np.nan_to_num(scores, nan=-999).tolist(),
                      "best": state.history[-1]["best_genome"], "population": [str(g) for g in state.population],
                      "squares": squares}))
""")


def run_with_devices(n: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=REPO, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_eight_devices_equal_one():
    one, eight = run_with_devices(1), run_with_devices(8)
    assert one["devices"] == 1 and eight["devices"] == 8
    assert one["scores"] == eight["scores"]  # bitwise: architectures are never split
    assert one["best"] == eight["best"] and one["population"] == eight["population"]
    assert eight["squares"] == [float(i * i) for i in range(10)]


def test_ragged_groups_keep_architectures_whole():
    from lpzero_jax.expression.program import ragged

    counts = np.zeros((5, 2, 3), np.int64)
    counts[:, :, 0] = 10
    counts[1, 1, 1] = 10
    values = np.random.default_rng(0).standard_normal((5, 2, 3, 4)).astype(np.float32)
    v, c, seg = ragged(values, counts, groups=2)
    assert len(v) % 2 == 0
    half = len(v) // 2
    first = set((seg[:half][c[:half] > 0]) // 2)
    second = set((seg[half:][c[half:] > 0]) // 2)
    assert first.isdisjoint(second) and first | second == set(range(5))
    assert np.all(seg[c == 0] == 10)  # padding rows land outside every segment


def test_host_shard_is_round_robin():
    assert parallel.host_shard(list(range(7))) == list(range(7))  # one process here


# What JAX's runtime printed as it aborted a process (jax 0.10, 2 processes on loopback), cut to
# the lines the cause is read from.
_PEER_DIED = """E1203 13:26:51.605426 5693 coordination_service.cc:1549] [6982343407498359813] Use error polling to propagate the following error to all tasks: UNAVAILABLE: The following tasks are unhealthy (stopped sending heartbeats):
1
The tasks have crashed. Check the task logs for an earlier error.
F1203 13:26:51.606404 5704 client.h:80] Terminating process because the JAX distributed service detected fatal errors. absl::Status: UNAVAILABLE: The following tasks are unhealthy (stopped sending heartbeats):
1
*** Check failure stack trace: ***
"""
_NEVER_JOINED = """F1203 13:01:26.658211 29551 client.h:80] Terminating process because the JAX distributed service detected fatal errors. absl::Status: DEADLINE_EXCEEDED: Deadline Exceeded

RPC: /xla.coordination.CoordinationService/RegisterTask
*** Check failure stack trace: ***
"""
_COORDINATOR_DIED = """F1203 13:27:02.234032 5916 client.h:80] Terminating process because the JAX distributed service detected fatal errors. absl::Status: UNAVAILABLE: Failed to send RPC to coordination service. Either the leader task was preempted/died/restarted unexpectedly or this task is experiencing network issues.
*** Check failure stack trace: ***
"""


def test_an_abort_of_the_distributed_runtime_is_named_in_the_jobs_terms():
    from ml_collections import ConfigDict

    config = ConfigDict({"distributed": {"coordinator_address": "10.0.0.1:1234", "num_processes": 2,
                                         "process_id": 0, "initialization_timeout_s": 30,
                                         "heartbeat_timeout_s": 5}})
    assert parallel.abort_cause(_PEER_DIED, 0, config).startswith(
        "process 1 stopped (no heartbeat for distributed.heartbeat_timeout_s = 5 s")
    assert parallel.abort_cause(_NEVER_JOINED, 0, config).startswith(
        "not every one of the 2 processes joined at 10.0.0.1:1234 within "
        "distributed.initialization_timeout_s = 30 s")
    assert parallel.abort_cause(_NEVER_JOINED, 1, config).startswith(
        "could not join the coordinator 10.0.0.1:1234 within distributed.initialization_timeout_s")
    assert parallel.abort_cause(_COORDINATOR_DIED, 1, config).startswith(
        "lost the coordinator (process 0 at 10.0.0.1:1234)")
    assert parallel.abort_cause("F1203 x.cc:1] something else\n", 1, config) == \
        "the JAX distributed runtime aborted it (something else)"
    assert parallel.process_label() == ""  # no jax.distributed job in this process
