"""rank's NASLib zero-cost file: read back the way NASLib's get_zc_benchmark_api reads it."""

import json
import math

import numpy as np
from ml_collections import ConfigDict

from lpzero_jax.benchmarks.base import Arch
from lpzero_jax.benchmarks.own import FORMAT
from lpzero_jax.modes.rank import write_outputs


def get_zc_benchmark_api(folder, search_space, dataset):
    """NASLib's loader (naslib/utils/get_dataset_api.py), with the data folder as an argument."""
    with open(folder / f"zc_{search_space}.json") as f:
        return json.load(f)[dataset]


def test_rank_writes_the_naslib_zero_cost_layout(tmp_path):
    bench = tmp_path / "gpt_s.jsonl"
    bench.write_text(json.dumps({"format": FORMAT, "family": "decoder", "metric": "valid_ppl",
                                 "higher_is_better": False, "dataset": "wikitext-103"}) + "\n"
                     + json.dumps({"id": "a0", "config": {}, "score": 20.0}) + "\n")
    rng = np.random.default_rng(0)
    archs = [Arch(f"a{i}", {}, -float(20 + i), {"metric": float(20 + i)}) for i in range(8)]
    names = ["params", "params_attn"]
    done = {(a.arch_id, n): (float(rng.standard_normal()), 0.25 + i) for i, a in enumerate(archs)
            for n in names}
    done[("a3", "params_attn")] = (float("nan"), 0.5)
    config = ConfigDict(dict(family="decoder", benchmark_file=str(bench), seed=0))
    write_outputs(archs, names, done, tmp_path, config)

    api = get_zc_benchmark_api(tmp_path, "gpt_s", "wikitext-103")
    assert sorted(api) == sorted(a.arch_id for a in archs)
    for i, a in enumerate(archs):
        entry = api[a.arch_id]
        assert entry["val_accuracy"] == a.score and entry["metric"] == 20 + i and entry["id"] == i
        for n in names:
            score, seconds = done[(a.arch_id, n)]
            assert entry[n]["time"] == seconds
            assert entry[n]["score"] == score or (math.isnan(score) and math.isnan(entry[n]["score"]))


def test_a_built_in_benchmark_is_named_by_its_family(tmp_path):
    archs = [Arch(i, {}, float(i), {}) for i in range(4)]
    done = {(str(a.arch_id), "params"): (float(a.arch_id), 1.0) for a in archs}
    write_outputs(archs, ["params"], done, tmp_path, ConfigDict(dict(family="gpt2", seed=0)))
    api = get_zc_benchmark_api(tmp_path, "gpt2", "gpt2")
    assert [api[str(i)]["params"]["score"] for i in range(4)] == [0.0, 1.0, 2.0, 3.0]
    assert "metric" not in api["0"]
