"""`bench` mode on a few real FlexiBERT archs with a tiny batch: every figure present and sane."""

import json

import numpy as np
import pytest

from lpzero_jax.modes import bench
from tests.conftest import tiny_config


@pytest.mark.slow  # ~60 s alone; the bench mode's other tests stay in the default suite
def test_bench_measures_extraction_candidates_and_the_naive_path(tmp_path, capsys):
    c = tiny_config(num_archs=6)
    c.search.sample_archs = 4
    c.bench.update(dict(candidates=40, compiled_candidates=2, naive_candidates=1, flops_archs=2,
                        zoo_archs=1, zoo_proxies="params,snip,synflow"))
    result = bench.run(c, tmp_path)
    saved = json.load(open(tmp_path / "bench.json"))
    assert saved["sample_archs"] == 4 and saved["matmul_flops_per_s"] > 1e8
    assert saved["matmul_flops_per_s_after_extraction"] > 1e8
    e = saved["extraction"]
    assert len(e["per_arch"]) == 4
    # archs whose FLOPs were not counted hold null (the JSON of NaN)
    assert sum(r["flops"] is not None and np.isfinite(r["flops"]) for r in e["per_arch"]) == 2
    assert 0 < e["fraction_of_matmul"] < 2
    # FLOPs counted on the staged programs that ran; the bound can only be below the time
    assert set(e["per_stage"]) == {"outer", "layer_fwd", "head", "layer_bwd", "prelude_bwd"}
    assert 0 < e["lower_bound_seconds"] < e["measured_warm_seconds"]
    assert e["programs_compiled"] > 0 and e["compile_seconds"] > 0
    assert e["per_arch"][0]["new_programs"] > 0
    d = saved["distinct_stages"]
    assert d["benchmark_archs"] == 500 and d["benchmark"]["whole_models"] == 0
    assert 0 < d["sample"]["layer_stages"] <= d["benchmark"]["layer_stages"] < 1522
    p = saved["candidates"]["program"]
    assert saved["candidates"]["evaluated"] == 40 and p["candidates_per_s"] > 0
    assert 0 <= p["branch_cache_hit_rate"] <= 1
    assert saved["candidates"]["compiled_per_genome"]["compile_seconds_per_genome"] > 0
    # re-extracting 4 archs per candidate must cost more than one program evaluation
    assert saved["naive"]["speedup_of_program"] > 1
    assert saved["peak_rss_mb"] > 0 and result["naive"] == saved["naive"]
    # host share of the measured archs: device seconds and host seconds split the wall time
    h = e["host_share"]
    assert h["archs"] == 2 and 0 < h["host_share"] < 1 and h["device_s"] > 0
    assert abs(h["device_s"] + h["host_s"] - h["wall_s"]) < 1e-6
    assert h["transfers_per_arch"]["to_host_calls"] >= 1  # the results, in one copy
    assert all(r["transfers"]["to_device_bytes"] > 0 for r in e["per_arch"])
    z = saved["zoo"]
    assert z["proxies"] == 3 and len(z["per_arch"]) == 1 and 0 < z["host_share"] < 1
    assert z["per_arch"][0]["failed_proxies"] == 0 and z["per_arch"][0]["device_passes_s"] > 0
    out = capsys.readouterr().out
    assert "speedup over naive" in out and "extraction host share" in out and "zoo (3 proxies)" in out
