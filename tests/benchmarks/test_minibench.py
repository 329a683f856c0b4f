"""The mini-benchmark reader: valid files load, every malformed part is named in the error."""

import copy
import json

import pytest

from lpzero_jax.benchmarks.base import BenchmarkFormatError
from lpzero_jax.benchmarks.minibench import (DEFAULT_LLAMA_FILE, FORMAT, load_minibench, read_minibench,
                                             summary)
from lpzero_jax.models.llama import LlamaConfig, llama_config_from_dict

CONFIG = LlamaConfig.uniform(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                             num_attention_heads=2).to_dict()
GOOD = {"format": FORMAT, "family": "llama", "command": "python scripts/llama_minibench.py",
        "vocab": {"tokenizer": "gpt2", "size": 64, "counted_on": "wikitext-2/test.txt", "fingerprint": "ab"},
        "training": {"tokens": 1000},
        "archs": [{"id": "mb000", "config": CONFIG, "metrics": {"valid_ppl": 30.0, "valid_loss": 3.4},
                   "params": 5000, "seconds": 1.0},
                  {"id": "mb001", "config": CONFIG, "metrics": {"valid_ppl": 20.0}}]}


def write(tmp_path, data, raw=None):
    path = tmp_path / "bench.json"
    path.write_text(raw if raw is not None else json.dumps(data))
    return path


def test_good_file_loads(tmp_path):
    archs, header = load_minibench(write(tmp_path, GOOD), parse_config=llama_config_from_dict, family="llama")
    assert [a.arch_id for a in archs] == ["mb000", "mb001"]
    assert [a.score for a in archs] == [-30.0, -20.0]
    assert archs[0].extra["params"] == 5000 and archs[0].extra["metrics"]["valid_loss"] == 3.4
    assert header["vocab"]["size"] == 64 and "archs" not in header
    assert len(load_minibench(write(tmp_path, GOOD), num_archs=1)[0]) == 1
    assert summary(archs)["min_ppl"] == 20.0 and summary(archs)["max_ppl"] == 30.0


def mutated(fn):
    data = copy.deepcopy(GOOD)
    fn(data)
    return data


@pytest.mark.parametrize("data,raw,match", [
    (None, "{not json", "not valid JSON"),
    (mutated(lambda d: d.update(format="other/1")), None, "format 'other/1'"),
    (mutated(lambda d: d.pop("vocab")), None, "missing field 'vocab'"),
    (mutated(lambda d: d["vocab"].pop("fingerprint")), None, "vocab: missing field 'fingerprint'"),
    (mutated(lambda d: d["vocab"].update(size=1)), None, "vocab.size must be an integer >= 2"),
    (mutated(lambda d: d.update(archs=[])), None, "archs must be a non-empty list"),
    (mutated(lambda d: d["archs"][1].pop("metrics")), None, "arch #1 .id 'mb001'.: missing field 'metrics'"),
    (mutated(lambda d: d["archs"][0]["metrics"].update(valid_ppl=float("nan"))), None, "finite number"),
    (mutated(lambda d: d["archs"][0]["metrics"].update(valid_ppl=-1.0)), None, "must be positive"),
    (mutated(lambda d: d["archs"][1].update(id="mb000")), None, "duplicate arch ids"),
    (mutated(lambda d: d["archs"][0].pop("id")), None, "arch #0: missing field 'id'"),
    (mutated(lambda d: d["archs"][0]["config"].update(hidden=3)), None, "invalid model config"),
    (mutated(lambda d: d["archs"][0]["config"]["layers"][0].update(num_kv_heads=3)), None,
     "invalid model config.*multiple"),
    (mutated(lambda d: d.update(family="gpt2")), None, "holds family 'gpt2'"),
])
def test_malformed_files_are_refused(tmp_path, data, raw, match):
    with pytest.raises(BenchmarkFormatError, match=match):
        load_minibench(write(tmp_path, data, raw), parse_config=llama_config_from_dict, family="llama")


def test_missing_file(tmp_path):
    with pytest.raises(BenchmarkFormatError, match="does not exist"):
        read_minibench(tmp_path / "none.json")


@pytest.mark.skipif(not DEFAULT_LLAMA_FILE.exists(), reason="benchmark not trained yet")
def test_committed_llama_minibench():
    archs, header = load_minibench(DEFAULT_LLAMA_FILE, parse_config=llama_config_from_dict, family="llama")
    assert len(archs) >= 40 and header["vocab"]["size"] == 4096
    assert "llama_minibench.py" in header["command"]  # recorded when the script was experiments/
    s = summary(archs)
    assert 1.0 < s["min_ppl"] < s["max_ppl"] < 4096
    for a in archs:  # every model is the base's hidden size and vocabulary, as the header says
        c = llama_config_from_dict(a.config)
        assert c.hidden_size == header["training"]["hidden_size"] and c.vocab_size == 4096
        assert a.extra["metrics"]["train_tokens"] <= header["training"]["tokens"]
