"""The LoNAS subnet benchmark reader: subnet configs from the header's supernet, clear errors."""

import json

import pytest

from lpzero_jax.benchmarks.base import BenchmarkFormatError
from lpzero_jax.benchmarks.lonas_bench import FORMAT, load_lonas_bench
from lpzero_jax.models.llama import LlamaConfig

SUPERNET = LlamaConfig.uniform(vocab_size=40, hidden_size=8, intermediate_size=16, num_hidden_layers=2,
                               num_attention_heads=2)


def write(path, archs, **header):
    data = {"format": FORMAT, "family": "smollm", "command": "x",
            "supernet": {"file": "m.gguf", "sha256": "ab", "config": SUPERNET.to_dict()}, "archs": archs}
    data.update(header)
    path.write_text(json.dumps(data))
    return path


def entry(i, ffn, ppl):
    return {"id": i, "ffn": ffn, "params": 1, "metrics": {"ppl": ppl, "loss": 1.0}, "seconds": 1.0}


def test_loads_subnets_with_their_widths(tmp_path):
    path = write(tmp_path / "b.json", [entry("full", [16, 16], 30.0), entry("s000", [8, 12], 90.5)])
    archs, header = load_lonas_bench(path, family="smollm")
    assert [a.arch_id for a in archs] == ["full", "s000"]
    assert [a.score for a in archs] == [-30.0, -90.5]
    assert [l["intermediate_size"] for l in archs[1].config["layers"]] == [8, 12]
    assert archs[1].config["hidden_size"] == 8 and header["supernet"]["sha256"] == "ab"
    assert len(load_lonas_bench(path, num_archs=1)[0]) == 1


@pytest.mark.parametrize("archs, match", [
    ([entry("a", [16, 32], 3.0)], "exceeds the supernet's 16"),
    ([entry("a", [16], 3.0)], "ffn must list 2 widths"),
    ([entry("a", [16, 16], -1.0)], "ppl must be positive"),
    ([entry("a", [16, 16], 3.0), entry("a", [8, 8], 4.0)], "duplicate arch ids"),
])
def test_bad_entries_are_clear_errors(tmp_path, archs, match):
    with pytest.raises(BenchmarkFormatError, match=match):
        load_lonas_bench(write(tmp_path / "b.json", archs))


def test_wrong_format_or_family(tmp_path):
    with pytest.raises(BenchmarkFormatError, match="is not 'lpzero_jax.lonas_bench/1'"):
        load_lonas_bench(write(tmp_path / "b.json", [entry("a", [16, 16], 3.0)], format="x"))
    with pytest.raises(BenchmarkFormatError, match="not 'llama'"):
        load_lonas_bench(write(tmp_path / "b.json", [entry("a", [16, 16], 3.0)]), family="llama")
