"""Property tests of the benchmark readers (Hypothesis): whatever a file holds, a reader returns
architectures or raises the package's user error (BenchmarkFormatError, one message naming the
file), never another exception (a KeyError, a TypeError, a RecursionError...)."""

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpzero_jax.benchmarks.base import BenchmarkFormatError
from lpzero_jax.benchmarks.flexibert import load_flexibert
from lpzero_jax.benchmarks.lts import load_lts_path
from lpzero_jax.benchmarks.own import FORMAT, load_own
from lpzero_jax.errors import UserError
from lpzero_jax.families import get_family

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# JSON values of any shape, with the field names and values the readers look for mixed in
KEYS = st.sampled_from(["id", "config", "score", "format", "family", "metric", "higher_is_better",
                        "d_model", "n_head", "d_inner", "n_layer", "hidden_size", "encoder_layers",
                        "vocab_size", "layers", "archs", "ppl", "params", "model_config",
                        "operation_type", "num_operation_heads", "feed_forward_dimension",
                        "valid_ppl", "model_hparam_overrides", "nas_config", "glue"]) | st.text(max_size=6)
SCALARS = (st.none() | st.booleans() | st.integers(-3, 4096) | st.floats(allow_nan=True)
           | st.text(max_size=8) | st.sampled_from([FORMAT, "gpt2", "flexibert", "llama", "SA", "SDP"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(KEYS, inner, max_size=6), max_leaves=30)


def _file(content: bytes, suffix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="lpzero_prop_"))
    path = folder / f"bench{suffix}"
    path.write_bytes(content)
    return path


def _reads_or_refuses(read, path):
    try:
        archs = read(path)
    except BenchmarkFormatError as e:
        assert str(e).strip()
        assert isinstance(e, UserError)
        return None
    assert isinstance(archs, list)
    return archs


def _json_bytes(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def _own_lines(header_extra, rows):
    header = dict({"format": FORMAT, "family": "gpt2", "metric": "ppl", "higher_is_better": False},
                  **header_extra)
    return b"\n".join(_json_bytes(x) for x in [header] + rows)


@SETTINGS
@given(st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_any_bytes_read_as_own_flexibert_or_lts(content):
    for suffix, read in ((".jsonl", lambda p: load_own(p, "gpt2", get_family("gpt2").parse_benchmark_config)),
                         (".json", load_flexibert), (".json", load_lts_path)):
        _reads_or_refuses(read, _file(content, suffix))


@SETTINGS
@given(st.sampled_from(["gpt2", "flexibert", "llama"]), st.dictionaries(KEYS, JSON, max_size=3),
       st.lists(JSON | st.fixed_dictionaries({"id": JSON, "config": JSON, "score": JSON}),
                min_size=1, max_size=3))
def test_any_json_lines_read_as_an_own_benchmark(family, header_extra, rows):
    path = _file(_own_lines(dict(header_extra, family=family), rows), ".jsonl")
    _reads_or_refuses(lambda p: load_own(p, family, get_family(family).parse_benchmark_config), path)


@SETTINGS
@given(JSON)
def test_any_json_reads_as_a_flexibert_or_compact_lts_benchmark(value):
    path = _file(_json_bytes(value), ".json")
    _reads_or_refuses(load_flexibert, path)
    _reads_or_refuses(load_lts_path, path)


def test_deep_nesting_and_binary_are_refused_by_name(tmp_path):
    import pytest

    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000)
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage\x80")
    for path, named in ((deep, "nested too deeply"), (binary, "not a UTF-8 text file")):
        with pytest.raises(BenchmarkFormatError, match=named):
            load_own(path, "gpt2", get_family("gpt2").parse_benchmark_config)
    for read in (load_flexibert, load_lts_path):
        with pytest.raises(BenchmarkFormatError, match="nested too deeply"):
            read(deep)
