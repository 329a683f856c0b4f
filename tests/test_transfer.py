"""Explicit, counted host<->device copies: the counter itself, and the hot loops (per-architecture
extraction of every family, candidate evaluation) running under a transfer guard that refuses
every implicit copy.

What the CPU backend checks: `jax.transfer_guard("disallow")` refuses implicit host->device
copies there (a NumPy array or Python scalar passed to a jitted function, `jnp.asarray`, indexing
a device array with a Python int), but not device->host ones (`np.asarray` / `float()` of a
device array are zero-copy on the CPU and never checked). `strict_transfers` adds that check the
way an accelerator does it: reading a device array's host value outside `jax.device_get` fails.
"""

import contextlib

import jax
import numpy as np
import pytest
from jax._src import array as jax_array
from jax._src import config as jax_config

from lpzero_jax import transfer
from lpzero_jax.families import get_family
from lpzero_jax.inputs import extract_proxy_inputs
from tests.conftest import tiny_config, tiny_llama_config
from tests.families.test_gpt2 import gpt2_config


def _explicit_get() -> bool:
    """Inside `jax.device_get` (JAX marks its explicit device->host copies so)."""
    return bool(jax_config.guard_lib.thread_local_state().explicit_device_get)


@contextlib.contextmanager
def strict_transfers(monkeypatch):
    """Implicit host->device copies refused by JAX itself; implicit device->host reads refused by
    patches outside `jax.device_get`: of the array's host value (`__array__`, `float()`,
    `.tolist()`) and of `np.asarray` / `np.array` given a device array (on the CPU NumPy reads a
    device array through the buffer protocol, which no patch reaches; these two calls are the ones
    the package uses)."""
    original = jax_array.ArrayImpl._value

    def refuse():
        raise AssertionError("implicit device-to-host read of a jax.Array (use transfer.to_host)")

    def guarded(self):
        if not _explicit_get():
            refuse()
        return original.fget(self)

    def checked(fn):
        def call(x, *args, **kwargs):
            if isinstance(x, jax.Array) and not _explicit_get():
                refuse()
            return fn(x, *args, **kwargs)
        return call

    monkeypatch.setattr(jax_array.ArrayImpl, "_value", property(guarded))
    monkeypatch.setattr(np, "asarray", checked(np.asarray))
    monkeypatch.setattr(np, "array", checked(np.array))
    with jax.transfer_guard("disallow"):
        yield


def test_the_guard_refuses_implicit_copies_both_ways(monkeypatch):
    f = jax.jit(lambda x: x * 2)
    x = np.ones(3, np.float32)
    with strict_transfers(monkeypatch):
        with pytest.raises(Exception, match="Disallowed host-to-device"):
            f(x)
        y = f(transfer.to_device(x))
        with pytest.raises(AssertionError, match="implicit device-to-host"):
            np.asarray(y)
        np.testing.assert_array_equal(transfer.to_host(y), [2, 2, 2])


def test_counting_counts_copies_and_bytes_per_block():
    x = {"a": np.ones((4, 8), np.float32), "b": np.arange(3, dtype=np.int32)}
    with transfer.counting() as outer:
        on_device = transfer.to_device(x)
        with transfer.counting() as inner:
            transfer.to_device(on_device)  # already there: no copy
            back = transfer.to_host(on_device)
        transfer.to_host(back)  # already host arrays: no copy
    assert inner.as_dict() == dict(to_device_calls=0, to_device_arrays=0, to_device_bytes=0,
                                   to_host_calls=1, to_host_arrays=2, to_host_bytes=4 * 32 + 12)
    assert outer.as_dict() == dict(to_device_calls=1, to_device_arrays=2, to_device_bytes=140,
                                   to_host_calls=1, to_host_arrays=2, to_host_bytes=140)
    np.testing.assert_array_equal(back["b"], [0, 1, 2])
    transfer.to_device(x)  # outside any block: nothing counted, nothing raised


def _gpt2(data_root):
    family = get_family("gpt2")
    config = gpt2_config(data_root=str(data_root), num_archs=0)
    arch = [a for a in family.load_benchmark(config) if a.arch_id == "config_9_j3"][0]
    return family, config, family.model_config(arch, config)


def _flexibert(data_root):
    family = get_family("flexibert")
    config = tiny_config(data_root=str(data_root), num_archs=1)
    return family, config, family.model_config(family.load_benchmark(config)[0], config)


def _llama(data_root):
    family = get_family("llama")
    from lpzero_jax.models.llama import LlamaConfig, LlamaLayerConfig

    config = tiny_llama_config(data_root=str(data_root))
    return family, config, LlamaConfig(512, 64, (LlamaLayerConfig(128, 4, 2),
                                                 LlamaLayerConfig(96, 2, 1)))


@pytest.mark.parametrize("setup", [_gpt2, _flexibert, _llama], ids=["gpt2", "flexibert", "llama"])
def test_extraction_makes_only_explicit_counted_copies(setup, data_root, monkeypatch):
    family, config, mc = setup(data_root)
    params = family.arch_params(mc, config)
    batch = family.make_batch(config)
    k = int(config.inputs.sample_size)
    free = extract_proxy_inputs(family, mc, params, batch, k)  # compiles, no guard
    with strict_transfers(monkeypatch), transfer.counting() as copies:
        guarded = extract_proxy_inputs(family, mc, params, batch, k)
    for name in free.values:
        np.testing.assert_array_equal(guarded.values[name], free.values[name], err_msg=name)
    # every layer's samples, the loss and (GPT-2) the gradient come back in ONE device_get; on
    # the CPU the host steps add the outer parameters' view and each padded layer's tensors
    layers = free.values["A"].shape[0]
    assert 1 <= copies.to_host_calls <= 2 + layers
    assert copies.to_device_calls >= 1 and copies.to_device_bytes >= batch["input_ids"].nbytes
    assert copies.to_host_arrays >= 5 * layers  # A, H, S, W and G rows of each layer
    assert copies.to_host_bytes >= 4 * k * 5 * layers


def test_candidate_evaluation_makes_only_explicit_counted_copies(monkeypatch, rng):
    from lpzero_jax.expression.genome import random_genome
    from lpzero_jax.search.fitness import FitnessEvaluator
    from lpzero_jax import inputs
    from tests.test_inputs import _fake

    stacked = inputs.stack_inputs([_fake(2, 3, seed=s) for s in range(5)])
    truth = np.arange(5.0)
    genomes = [random_genome(rng, 2) for _ in range(20)]
    free = FitnessEvaluator(stacked, truth)
    expected = [free(g) for g in genomes]
    with strict_transfers(monkeypatch), transfer.counting() as copies:
        evaluator = FitnessEvaluator(stacked, truth)
        got = [evaluator(g) for g in genomes]
        compiled = FitnessEvaluator(stacked, truth, backend="compiled")
        np.testing.assert_allclose(compiled.scores(genomes[0]), evaluator.scores(genomes[0]),
                                   rtol=1e-5)
    def seen(fits):
        return [(f.valid, f.reason, f.rho if f.valid else None) for f in fits]

    assert seen(got) == seen(expected)
    assert sum(f.valid for f in got) >= 5
    misses = evaluator.program.branch_misses
    # per branch miss: its op ids up, its per-layer values and mask down
    assert copies.to_host_calls >= misses > 0
