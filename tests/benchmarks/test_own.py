"""Own benchmarks in the JSON-lines format (benchmarks/own.py), for each family, and their errors."""

import json

import pytest
from ml_collections import ConfigDict

from lpzero_jax.benchmarks.base import BenchmarkFormatError
from lpzero_jax.benchmarks.own import FORMAT, is_own_format, load_own, parse_gpt2_config
from lpzero_jax.families import get_family
from lpzero_jax.models.gpt2_config import GPT2FlexConfig, analytical_param_counts

HEADER = {"format": FORMAT, "family": "gpt2", "metric": "valid_ppl", "higher_is_better": False}
PLAIN = [  # GPT-2 with plain tied embeddings, per-layer heads and FFN widths
    {"id": "a", "config": {"d_model": 64, "n_head": [2, 4], "d_inner": [128, 256]}, "score": 40.0},
    {"id": "b", "config": {"d_model": 64, "n_head": 4, "d_inner": 192, "n_layer": 3}, "score": 35.5,
     "params_note": "kept in extra"},
    {"id": "c", "config": {"d_model": 32, "n_head": [2], "d_inner": [64], "n_positions": 64},
     "score": 60.25},
]


def write(path, header, rows):
    path.write_text("\n".join(json.dumps(x) if not isinstance(x, str) else x
                              for x in [header] + rows) + "\n")
    return path


def gpt2_run_config(path, num_archs=0):
    return ConfigDict(dict(family="gpt2", benchmark_file=str(path), benchmark_dir=None,
                           data_root=None, num_archs=num_archs))


def test_gpt2_plain_embeddings_and_per_layer_widths(tmp_path):
    family = get_family("gpt2")
    archs = family.load_benchmark(gpt2_run_config(write(tmp_path / "b.jsonl", HEADER, PLAIN)))
    assert [a.arch_id for a in archs] == ["a", "b", "c"]
    assert [a.score for a in archs] == [-40.0, -35.5, -60.25]  # lower-is-better, negated
    assert archs[1].extra == {"params_note": "kept in extra", "metric": 35.5}
    a, b, c = archs
    assert a.config["n_head"] == (2, 4) and a.config["d_inner"] == (128, 256)
    assert b.config["n_head"] == (4, 4, 4) and b.config["d_inner"] == (192,) * 3
    assert (a.config["div_val"], a.config["d_embed"], a.config["cutoffs"]) == (1, 64, (50257,))
    mc = family.model_config(c, None)
    assert (mc.n_clusters, mc.has_input_projections(), mc.n_positions) == (0, False, 64)
    # one tied table, positions, blocks, final norm and LTS's per-token output bias
    d, f, v = 32, 64, 50257
    expected = v * d + 64 * d + (4 * d * d + 4 * d) + (2 * d * f + f + d) + 4 * d + 2 * d + v
    assert family.count_params(mc) == expected == analytical_param_counts(mc)["total"]
    assert family.load_benchmark(gpt2_run_config(tmp_path / "b.jsonl", num_archs=2))[-1].arch_id == "b"


def test_higher_is_better_keeps_the_sign(tmp_path):
    header = dict(HEADER, metric="accuracy", higher_is_better=True)
    archs, head = load_own(write(tmp_path / "b.jsonl", header, PLAIN[:1]), "gpt2", parse_gpt2_config)
    assert archs[0].score == 40.0 and head["metric"] == "accuracy"


@pytest.mark.parametrize("rows, message", [
    (['{"id": "a", "config": '], r"line 2: not valid JSON"),
    ([{"id": "a", "config": {"d_model": 64, "n_heads": 2, "d_inner": 8, "n_layer": 1}, "score": 1}],
     r"line 2 \(id 'a'\): config misses \['n_head'\]"),
    ([{"id": "a", "config": {"d_model": 64, "n_head": 2, "n_heads": 2, "d_inner": 8, "n_layer": 1},
       "score": 1}], r"line 2 \(id 'a'\): unknown config field\(s\) \['n_heads'\]"),
    ([PLAIN[0], dict(PLAIN[1], id="a")], r"line 3: id 'a' is already used on line 2"),
    ([PLAIN[0], dict(PLAIN[1], score="low")], r"line 3 \(id 'b'\): score must be a finite number"),
    ([{"id": "x", "config": {"d_model": 64, "n_head": [3], "d_inner": [8]}, "score": 1}],
     r"line 2 \(id 'x'\): d_model 64 is not a multiple of n_head\[0\] 3"),
    ([{"id": "x", "config": {"d_model": 64, "n_head": 2, "d_inner": 8}, "score": 1}],
     r"line 2 \(id 'x'\): give n_layer"),
    ([{"id": "x", "score": 1}], r"line 2 \(id 'x'\): missing field 'config'"),
])
def test_errors_name_the_file_and_line(tmp_path, rows, message):
    path = write(tmp_path / "bad.jsonl", HEADER, rows)
    with pytest.raises(BenchmarkFormatError, match=str(path).replace(".", r"\.") + " " + message):
        get_family("gpt2").load_benchmark(gpt2_run_config(path))


@pytest.mark.parametrize("header, message", [
    ({"family": "gpt2"}, r"line 1 \(header\): the first line must be a header"),
    (dict(HEADER, higher_is_better="no"), "higher_is_better must be true or false"),
    ({k: v for k, v in HEADER.items() if k != "metric"}, "missing field 'metric'"),
    (dict(HEADER, family="llama"), "holds family 'llama', the run is 'gpt2'"),
])
def test_header_errors(tmp_path, header, message):
    with pytest.raises(BenchmarkFormatError, match=message):
        get_family("gpt2").load_benchmark(gpt2_run_config(write(tmp_path / "b.jsonl", header, PLAIN)))


def test_only_a_header_or_an_empty_file(tmp_path):
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n")
    with pytest.raises(BenchmarkFormatError, match="the file is empty"):
        load_own(empty, "gpt2", parse_gpt2_config)
    with pytest.raises(BenchmarkFormatError, match="no architecture lines"):
        load_own(write(tmp_path / "h.jsonl", HEADER, []), "gpt2", parse_gpt2_config)
    assert is_own_format(write(tmp_path / "ok.jsonl", HEADER, PLAIN))
    assert not is_own_format(empty)


def test_flexibert_lines_read_like_the_benchmark_entries(tmp_path):
    layers = [{"operation_type": "SA", "operation_parameter": "SDP", "num_operation_heads": 4,
               "feed_forward_dimension": 512, "num_feed_forward": 1},
              {"operation_type": "LT", "operation_parameter": "DCT", "num_operation_heads": 2,
               "feed_forward_dimension": 1024, "num_feed_forward": 3}]
    header = dict(HEADER, family="flexibert", metric="glue", higher_is_better=True)
    rows = [{"id": 7, "config": {"hidden_size": 128, "encoder_layers": layers}, "score": 0.71}]
    family = get_family("flexibert")
    c = ConfigDict(dict(family="flexibert", benchmark_file=str(write(tmp_path / "f.jsonl", header, rows)),
                        data_root=None, num_archs=0))
    (arch,) = family.load_benchmark(c)
    assert (arch.arch_id, arch.score) == (7, 0.71)
    assert arch.config == {"hidden_size": 128, "encoder_layers": layers}
    rows[0]["config"]["encoder_layers"][1]["operation_type"] = "XX"
    write(tmp_path / "f.jsonl", header, rows)
    with pytest.raises(BenchmarkFormatError, match=r"line 2 \(id 7\) layer 1: unknown operation_type 'XX'"):
        family.load_benchmark(c)


def test_llama_lines_checked_against_the_run_vocabulary(tmp_path):
    from tests.conftest import tiny_llama_config

    config = {"vocab_size": 512, "hidden_size": 32, "layers": [
        {"intermediate_size": 64, "num_heads": 4, "num_kv_heads": 4}], "tie_word_embeddings": False}
    header = dict(HEADER, family="llama")
    path = write(tmp_path / "l.jsonl", header, [{"id": "m0", "config": config, "score": 70.0}])
    run = tiny_llama_config(benchmark_file=str(path))
    (arch,) = get_family("llama").load_benchmark(run)
    assert arch.score == -70.0 and get_family("llama").model_config(arch, run).hidden_size == 32
    run.vocab_size = 4096
    with pytest.raises(BenchmarkFormatError, match="vocab_size 512 != the run's vocab_size 4096"):
        get_family("llama").load_benchmark(run)
    write(path, header, [{"id": "m0", "config": dict(config, hidden=3), "score": 70.0}])
    with pytest.raises(BenchmarkFormatError, match=r"line 2 \(id 'm0'\): invalid LLaMA config"):
        get_family("llama").load_benchmark(run)


def test_the_example_benchmark_holds_20_plain_gpt2s():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "gpt2_plain_20.jsonl"
    archs = get_family("gpt2").load_benchmark(gpt2_run_config(path))
    assert len(archs) == 20 and all(a.config["div_val"] == 1 for a in archs)
    assert {GPT2FlexConfig.from_lts(a.config).n_clusters for a in archs} == {0}
