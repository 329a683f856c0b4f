"""The Python API: the examples of docs/api.md (and so the README's) run as written, plus what they do not show."""

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

import lpzero_jax as lz

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "benchmarks" / "data" / "gpt2_tiny.jsonl"


def python_blocks(page: str):
    """The ```python blocks of a markdown page of the clone, in order."""
    return re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), flags=re.DOTALL)


def test_readme_api_example_is_the_docs_first():
    """The README's example is run by the test below: it is docs/api.md's first block, verbatim."""
    assert python_blocks("README.md") == python_blocks("docs/api.md")[:1]


@pytest.mark.slow  # runs every docs/api.md example end to end (~1 min); the README block's parse test stays
def test_docs_api_examples_run(monkeypatch, tmp_path):
    blocks = python_blocks("docs/api.md")
    assert len(blocks) == 3
    monkeypatch.chdir(ROOT)  # the examples name files relative to the clone's root
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # their default workdirs land here
    namespace = {"__name__": "docs_example"}
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), namespace)  # noqa: S102
    r, s, scores = namespace["r"], namespace["s"], namespace["scores"]
    assert r.family == "gpt2" and len(r.arch_ids) == 8 and r.arch_ids[0] == "g01"
    assert r.ground_truth[0] == -200.13
    assert set(scores) == {"mul(std(relu(A)),abslog(l1(G)))", "snip", "attention_confidence"}
    assert s.family == "gpt2" and len(s.details["sample_arch_ids"]) == 4
    assert np.isfinite(s.fitness_on_sample) and s.held_out["n"] == 3
    assert Path(r.workdir).parent == tmp_path and (Path(s.workdir) / "search.json").is_file()


def test_rank_by_path_matches_the_files(tmp_path):
    r = lz.rank(TINY, "params", workdir=tmp_path,
                overrides={"seq_len": 64})  # the benchmark has 64 positions
    assert r.arch_ids == [f"t{i}" for i in range(1, 8)] and r.workdir == str(tmp_path)
    assert (tmp_path / "ranking.json").is_file() and (tmp_path / "scores.csv").is_file()
    # params grows from t1 to t7 and perplexity falls: a perfect ranking
    assert r.spearman_rho["params"] == pytest.approx(1.0)
    assert r.kendall_tau["params"] == pytest.approx(1.0)
    assert r.scores["params"][0] == 50257 * 32 + 64 * 32 + (4 * 32 * 32 + 4 * 32) + (
        2 * 32 * 64 + 64 + 32) + 4 * 32 + 2 * 32 + 50257


def test_benchmark_config_and_family_detection(tmp_path):
    from lpzero_jax.api import benchmark_config, family_of
    from lpzero_jax.benchmarks.base import BenchmarkFormatError

    assert family_of(TINY) == "gpt2"
    c = benchmark_config(TINY, overrides={"search.generations": 3, "batch_size": 2})
    assert (c.family, c.benchmark_file, c.search.generations, c.batch_size) == ("gpt2", str(TINY), 3, 2)
    assert benchmark_config("flexibert").family == "flexibert"
    with pytest.raises(KeyError, match="unknown config field 'search.generation'"):
        benchmark_config(TINY, overrides={"search.generation": 3})
    bad = tmp_path / "x.json"
    bad.write_text('{"a": 1}')
    with pytest.raises(BenchmarkFormatError, match="not a benchmark this package reads"):
        family_of(bad)


def test_score_model_needs_layer_modules():
    import flax.linen as nn
    import jax.numpy as jnp

    class NoLayers(nn.Module):
        @nn.compact
        def __call__(self, ids):
            return self.proxy_loss(self.embed(ids), {"input_ids": ids})

        def embed(self, ids):
            return jnp.ones(ids.shape + (4,))

        def proxy_loss(self, e, batch):
            return jnp.sum(nn.Dense(3, name="head")(e))

    with pytest.raises(ValueError, match="name the blocks `layer_<i>`"):
        lz.score_model(NoLayers(), "params", np.zeros((1, 4), np.int32))


def test_score_model_with_given_params_equals_its_own_init():
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    class OneLayer(nn.Module):
        def setup(self):
            self.wte = nn.Embed(50, 8)
            self.layer_0 = nn.Dense(8, name="layer_0")

        def embed(self, ids):
            return self.wte(ids)

        def proxy_loss(self, e, batch):
            return jnp.mean(self.layer_0(e) ** 2)

        def __call__(self, ids):
            return self.proxy_loss(self.embed(ids), {"input_ids": ids})

    ids = np.arange(12, dtype=np.int32).reshape(2, 6)
    genome = "add(fro(W),abs(W))"  # weights only: no forward pass to compile
    own = lz.score_model(OneLayer(), ["params", genome], ids, seed=3)
    variables = OneLayer().init(jax.random.PRNGKey(3), ids[:1])
    for given in (variables, variables["params"]):
        assert lz.score_model(OneLayer(), ["params", genome], ids, params=given) == own
    assert own["params"] == 50 * 8 + 8 * 8 + 8
    w = np.asarray(variables["params"]["layer_0"]["kernel"])
    assert own[genome] == pytest.approx(np.sqrt((w ** 2).sum()) + np.abs(w).mean(), rel=1e-5)


def _one_layer(sow: bool):
    import flax.linen as nn
    import jax.numpy as jnp

    class OneLayer(nn.Module):
        def setup(self):
            self.wte = nn.Embed(50, 8)
            self.layer_0 = nn.Dense(8, name="layer_0")

        def embed(self, ids):
            return self.wte(ids)

        def proxy_loss(self, e, batch):
            h = nn.relu(self.layer_0(e))
            if sow:
                self.layer_0.sow("intermediates", "A", h)
            return jnp.mean(h ** 2)

        def __call__(self, ids):
            return self.proxy_loss(self.embed(ids), {"input_ids": ids})

    return OneLayer()


def test_score_model_refuses_a_model_that_never_sows_what_a_genome_reads():
    from lpzero_jax.errors import ModelProtocolError, UserError

    ids = np.arange(12, dtype=np.int32).reshape(2, 6)
    genome = "add(std(A),abs(W))"
    with pytest.raises(ModelProtocolError, match="reads A, which the model never sows"):
        lz.score_model(_one_layer(sow=False), genome, ids)
    assert issubclass(ModelProtocolError, UserError)
    assert np.isfinite(lz.score_model(_one_layer(sow=True), genome, ids)[genome])


@pytest.mark.parametrize("bad, named", [(-1, "negative id -1"), (50, "id 50, beyond the model's "
                                                                      "vocabulary of 50")])
def test_score_model_refuses_token_ids_outside_the_vocabulary(bad, named):
    from lpzero_jax.errors import ModelProtocolError

    ids = np.arange(12, dtype=np.int32).reshape(2, 6)
    ids[1, 3] = bad
    with pytest.raises(ModelProtocolError, match=named):
        lz.score_model(_one_layer(sow=True), "params", ids)
