"""scripts/gpu_check.py: its plan and argument handling (fast), and a --quick run on the CPU
with tiny settings (slow)."""

import importlib.util
import json
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"
spec = importlib.util.spec_from_file_location("gpu_check", PATH)
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def test_plan_installs_then_runs_every_family_cold(tmp_path):
    steps = gpu_check.plan(gpu_check.parse_args([f"--out={tmp_path}"]))
    names = [s["name"] for s in steps]
    assert names == ["install", "devices", "bench_gpt2", "bench_flexibert", "bench_llama",
                     "flexibert_search", "gpt2_main"]
    assert steps[0]["argv"][-1].endswith("[cuda12]")
    runs = steps[2:]
    for s in runs:  # each its own empty caches under --out
        work = Path(s["workdir"])
        assert work.parent == tmp_path
        assert f"--config.compilation_cache_dir={work / 'xla'}" in s["argv"]
        assert f"--config.inputs.cache_dir={work / 'inputs'}" in s["argv"]
    assert "--config.bench.candidates=100" in runs[0]["argv"]
    assert "--config.search.evaluate_all=False" in steps[5]["argv"]
    assert "--config=gpt2" in steps[6]["argv"] and not any("mode" in a for a in steps[6]["argv"])
    assert sum(s["limit"] for s in runs) == 600  # the runs fit 10 minutes


def test_quick_skips_the_install_and_shrinks_every_run(tmp_path):
    args = gpu_check.parse_args([f"--out={tmp_path}", "--quick", "--scale=2"])
    steps = gpu_check.plan(args)
    assert steps[0]["name"] == "devices"
    assert all("--config.seq_len=16" in s["argv"] for s in steps[1:])
    assert steps[0]["limit"] == 120 and steps[1]["limit"] == 160 and steps[-1]["limit"] == 480


@pytest.mark.parametrize("argv, message", [(["--only=bench_gpu"], "unknown steps"),
                                           (["--scale=0"], "must be positive")])
def test_bad_arguments_are_refused_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit):
        gpu_check.parse_args(argv)
    assert message in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, capsys):
    assert gpu_check.main([f"--out={tmp_path / 'x'}", "--dry-run", "--only=devices"]) == 0
    assert [s["name"] for s in json.loads(capsys.readouterr().out)] == ["devices"]
    assert not (tmp_path / "x").exists()


def test_peak_rss_is_read_from_time_v():
    assert gpu_check.peak_rss_mb("\tMaximum resident set size (kbytes): 2048\n") == 2.0
    assert gpu_check.peak_rss_mb("no report") is None


@pytest.mark.slow
def test_quick_run_writes_the_summary(tmp_path):
    rc = gpu_check.main([f"--out={tmp_path}", "--quick", "--scale=4"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [s["rc"] for s in summary["steps"]] == [0] * 6, summary
    assert rc == 0 and summary["backend"] == "cpu"
    bench = {s["name"]: s["bench"] for s in summary["steps"] if s["name"].startswith("bench_")}
    for name, b in bench.items():
        assert b["extraction_warm_per_arch_s"] > 0 and 0 < b["host_share"] < 1, name
        assert b["transfers_per_arch"]["to_host_calls"] >= 1, name
    assert "| gpt2_main | 0 |" in (tmp_path / "summary.md").read_text()
