"""The FlexiBERT benchmark reader: real file, and clear errors for malformed entries."""

import copy
import json

import pytest

from lpzero_jax.benchmarks.base import BenchmarkFormatError
from lpzero_jax.benchmarks.flexibert import load_flexibert


@pytest.fixture(scope="module")
def raw(data_root):
    with open(data_root / "flexibert" / "BERT_benchmark.json") as f:
        return json.load(f)


def test_reads_all_500(data_root):
    archs = load_flexibert(data_root / "flexibert" / "BERT_benchmark.json")
    assert len(archs) == 500
    assert archs[0].arch_id == 0 and archs[0].score == pytest.approx(74.73375)
    assert archs[0].config["hidden_size"] == 256
    assert archs[0].config["encoder_layers"][0]["operation_parameter"] == "WMA"
    assert {l["operation_type"] for a in archs for l in a.config["encoder_layers"]} == {"SA", "LT", "DSC"}


def test_num_archs_takes_the_first(data_root):
    archs = load_flexibert(data_root / "flexibert" / "BERT_benchmark.json", 7)
    assert [a.arch_id for a in archs] == list(range(7))


def _write(tmp_path, entries):
    p = tmp_path / "bench.json"
    p.write_text(json.dumps(entries))
    return p


@pytest.mark.parametrize("mutate,message", [
    (lambda e: e["hparams"]["model_hparam_overrides"]["nas_config"]["encoder_layers"][0]
     .update(operation_type="XX"), "unknown operation_type 'XX'"),
    (lambda e: e["hparams"]["model_hparam_overrides"]["nas_config"]["encoder_layers"][1]
     .update(operation_parameter="DCX"), "unknown operation_parameter for LT 'DCX'"),
    (lambda e: e["scores"].pop("glue"), "missing field 'glue'"),
    (lambda e: e["scores"].update(glue=float("nan")), "scores.glue must be a finite number"),
    (lambda e: e["hparams"]["model_hparam_overrides"].update(hidden_size=130), "not a multiple"),
    (lambda e: e["hparams"]["model_hparam_overrides"]["nas_config"].update(encoder_layers=[]),
     "non-empty list"),
    (lambda e: e["hparams"]["model_hparam_overrides"]["nas_config"]["encoder_layers"][0]
     .update(num_feed_forward=0), "num_feed_forward must be an integer >= 1"),
])
def test_bad_entry_names_the_entry(tmp_path, raw, mutate, message):
    entries = copy.deepcopy(raw[:3])
    mutate(entries[0])
    with pytest.raises(BenchmarkFormatError, match="entry #0 \\(id 0\\).*" if "glue" not in message
                       else "entry #0") as err:
        load_flexibert(_write(tmp_path, entries))
    assert message in str(err.value)


def test_not_json_and_not_a_list(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{oops")
    with pytest.raises(BenchmarkFormatError, match="not valid JSON"):
        load_flexibert(p)
    p.write_text("{}")
    with pytest.raises(BenchmarkFormatError, match="expected a JSON list"):
        load_flexibert(p)


def test_duplicate_ids(tmp_path, raw):
    entries = copy.deepcopy(raw[:2])
    entries[1]["id"] = 0
    with pytest.raises(BenchmarkFormatError, match="duplicate ids"):
        load_flexibert(_write(tmp_path, entries))


def test_missing_file_is_a_clear_error(tmp_path):
    from lpzero_jax.paths import DataNotFoundError, resolve_data_file

    with pytest.raises(DataNotFoundError, match="does not exist"):
        resolve_data_file("flexibert/BERT_benchmark.json", str(tmp_path))
    with pytest.raises(DataNotFoundError, match="is not a directory"):
        resolve_data_file("x", str(tmp_path / "nope"))
