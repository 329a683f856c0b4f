"""The smollm family: proxies see each subnet's weights sliced from a pretrained GGUF supernet."""

import csv
import dataclasses
import hashlib
import json

import numpy as np
import pytest

pytest.importorskip("gguf")

from lpzero_jax.benchmarks.base import BenchmarkFormatError  # noqa: E402
from lpzero_jax.benchmarks.lonas_bench import FORMAT  # noqa: E402
from lpzero_jax.families import get_family  # noqa: E402
from lpzero_jax.models.llama import count_llama_params  # noqa: E402
from lpzero_jax.proxies.base import ArchContext  # noqa: E402
from tests.conftest import experiment_config  # noqa: E402
from tests.models.test_llama_gguf import CONFIG, byte_vocab, write_gguf  # noqa: E402

FAMILY = get_family("smollm")
FFN = {"full": [64, 64], "s000": [32, 48], "s001": [40, 64]}


@pytest.fixture(scope="module")
def supernet(tmp_path_factory):
    """(config, params, gguf path, benchmark path): a tiny pretrained-looking supernet and 3 subnets."""
    folder = tmp_path_factory.mktemp("smollm")
    config = dataclasses.replace(CONFIG, vocab_size=len(byte_vocab()[0]), tie_word_embeddings=True)
    params = get_family("llama").init_params(config, 5)
    path = folder / "tiny.gguf"
    write_gguf(path, params, config, tied=True)
    archs = [{"id": i, "ffn": f, "params": 0, "metrics": {"ppl": 10.0 + k}, "seconds": 0.0}
             for k, (i, f) in enumerate(FFN.items())]
    bench = folder / "bench.json"
    bench.write_text(json.dumps({
        "format": FORMAT, "family": "smollm", "command": "test",
        "supernet": {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                     "config": config.to_dict()}, "archs": archs}))
    return config, params, path, bench


def run_config(supernet, **overrides):
    _, _, path, bench = supernet
    c = experiment_config("smollm")
    c.seed = 0
    c.gguf_path, c.benchmark_file = str(path), str(bench)
    c.batch_size, c.seq_len = 2, 16
    c.compilation_cache_dir = ""
    c.inputs.sample_size = 64
    c.update(overrides)
    return c


def test_proxies_see_sliced_pretrained_weights(supernet):
    config, params, _, _ = supernet
    run = run_config(supernet)
    archs = FAMILY.load_benchmark(run)
    batch = FAMILY.make_batch(run)
    assert batch["input_ids"].shape == (2, 16) and batch["input_ids"].max() < config.vocab_size
    ctx = ArchContext(FAMILY, archs[1], run, batch)
    got = ctx.params["params"]
    want = params["params"]
    np.testing.assert_array_equal(got["layer_1"]["mlp"]["gate_proj"]["kernel"],
                                  np.asarray(want["layer_1"]["mlp"]["gate_proj"]["kernel"])[:, :48])
    np.testing.assert_array_equal(got["layer_0"]["mlp"]["down_proj"]["kernel"],
                                  np.asarray(want["layer_0"]["mlp"]["down_proj"]["kernel"])[:32])
    np.testing.assert_array_equal(got["embed_tokens"]["embedding"], want["embed_tokens"]["embedding"])
    # not the random init the llama family would give
    init = FAMILY.init_params(ctx.model_config, 0)["params"]
    assert not np.allclose(got["layer_0"]["self_attn"]["q_proj"]["kernel"],
                           init["layer_0"]["self_attn"]["q_proj"]["kernel"])


def test_rank_mode_on_inherited_weights(supernet, tmp_path):
    from lpzero_jax.modes import rank

    config = supernet[0]
    ranking = rank.run(run_config(supernet, proxies="params,lpzero_llama"), tmp_path).ranking
    rows = list(csv.DictReader(open(tmp_path / "scores.csv")))
    assert [r["arch_id"] for r in rows] == list(FFN)
    for r in rows:
        sub = dataclasses.replace(config, layers=tuple(
            dataclasses.replace(l, intermediate_size=w) for l, w in zip(config.layers, FFN[r["arch_id"]])))
        assert float(r["params"]) == count_llama_params(sub)
        assert np.isfinite(float(r["lpzero_llama"]))
    assert ranking["params"]["n"] == 3


def test_benchmark_of_another_gguf_is_refused(supernet, tmp_path):
    other = tmp_path / "other.gguf"
    other.write_bytes(supernet[2].read_bytes() + b"\0")
    with pytest.raises(BenchmarkFormatError, match="set gguf_path to that file"):
        FAMILY.load_benchmark(run_config(supernet, gguf_path=str(other)))


def test_subnet_search_over_the_gguf_supernet(supernet, tmp_path):
    from lpzero_jax.modes import subnet_search

    run = run_config(supernet, mode="subnet_search")
    run.subnet_search.fitness = "proxy:params"
    run.subnet_search.budget_fraction = 0.95
    run.subnet_search.population, run.subnet_search.generations = 4, 2
    out = subnet_search.run(run, tmp_path)
    best = out["best"][0]
    assert best["params_fraction"] <= 0.95 and best["fitness"] == best["params"]
    run.subnet_search.rank_choices = (4,)
    with pytest.raises(ValueError, match="rank_choices=\\(0,\\)"):
        subnet_search.run(run, tmp_path)
