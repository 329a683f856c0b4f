"""`bench` mode on a few real FlexiBERT archs with a tiny batch: every figure present and sane."""

import json

import numpy as np

from lpzero_jax.modes import bench
from tests.conftest import tiny_config


def test_bench_measures_extraction_candidates_and_the_naive_path(tmp_path, capsys):
    c = tiny_config(num_archs=6)
    c.search.sample_archs = 4
    c.bench.update(dict(candidates=40, compiled_candidates=2, naive_candidates=1, flops_archs=2))
    result = bench.run(c, tmp_path)
    saved = json.load(open(tmp_path / "bench.json"))
    assert saved["sample_archs"] == 4 and saved["matmul_flops_per_s"] > 1e8
    e = saved["extraction"]
    assert len(e["per_arch"]) == 4
    assert sum(np.isfinite(r["flops"]) for r in e["per_arch"]) == 2
    assert 0 < e["fraction_of_matmul"] < 2
    p = saved["candidates"]["program"]
    assert saved["candidates"]["evaluated"] == 40 and p["candidates_per_s"] > 0
    assert 0 <= p["branch_cache_hit_rate"] <= 1
    assert saved["candidates"]["compiled_per_genome"]["compile_seconds_per_genome"] > 0
    # re-extracting 4 archs per candidate must cost more than one program evaluation
    assert saved["naive"]["speedup_of_program"] > 1
    assert saved["peak_rss_mb"] > 0 and result["naive"] == saved["naive"]
    assert "speedup over naive" in capsys.readouterr().out
