"""One-command accelerator check: install the `cuda12` extra, run the three families' `bench`, the
FlexiBERT paper-setting search cold and the GPT-2 main job cold, and write one summary.

    python scripts/gpu_check.py --out=gpu_check              # on a GPU machine, from a clone
    python scripts/gpu_check.py --quick --out=/tmp/check     # tiny settings on the CPU (tests)
    python scripts/gpu_check.py --dry-run                    # print the plan, run nothing

Every step runs as its own process with a time limit, a workdir of its own and EMPTY input and
compilation caches (cold), under /usr/bin/time -v when it exists (peak RSS). The summary
(OUT/summary.json and OUT/summary.md) has, per step, its command, exit status, seconds and peak
RSS, and for `bench` the figures that say whether the run is host-bound (warm extraction per
architecture, host share, copies per architecture, candidates/s). The step limits add up to 10
minutes of runs (the install not counted); a step past its limit is recorded as timed out and
the next one runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
FAMILIES = ("gpt2", "flexibert", "llama")
BENCH = ["--config.mode=bench", "--config.search.sample_archs=3", "--config.bench.flops_archs=3",
         "--config.bench.candidates=100", "--config.bench.compiled_candidates=3",
         "--config.bench.naive_candidates=0"]
# tiny settings of --quick (the CPU test of this script): a few archs, a 2 x 16 batch
QUICK_COMMON = ["--config.batch_size=2", "--config.seq_len=16", "--config.inputs.sample_size=64"]
QUICK_BENCH = ["--config.num_archs=3", "--config.search.sample_archs=2",
               "--config.bench.flops_archs=1", "--config.bench.candidates=5",
               "--config.bench.compiled_candidates=1", "--config.bench.naive_candidates=0"]
QUICK_SEARCH = ["--config.num_archs=6", "--config.search.sample_archs=4",
                "--config.search.population=4", "--config.search.generations=2"]
LIMITS = {"bench": 80, "flexibert_search": 120, "gpt2_main": 240}  # seconds: 3 x 80 + 360 = 600


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="gpu_check", help="folder of the summary and the steps' workdirs")
    p.add_argument("--quick", action="store_true",
                   help="tiny settings (the CPU test of this script); implies --skip-install")
    p.add_argument("--dry-run", action="store_true", help="print the plan as JSON, run nothing")
    p.add_argument("--skip-install", action="store_true", help="do not pip install '.[cuda12]'")
    p.add_argument("--only", default="", help="comma list of steps to run (default: all)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiplies every step's time limit (e.g. 2 on a slow machine)")
    args = p.parse_args(argv)
    if args.scale <= 0:
        p.error(f"--scale must be positive, got {args.scale}")
    names = [s["name"] for s in plan(args)]
    unknown = [s for s in args.only.split(",") if s and s not in names]
    if unknown:
        p.error(f"--only names unknown steps {unknown}; steps: {', '.join(names)}")
    return args


def plan(args: argparse.Namespace) -> List[Dict]:
    """The steps: name, argv, time limit (seconds), workdir (relative to --out)."""
    out = Path(args.out).resolve()
    lpzero = [sys.executable, "-m", "lpzero_jax.cli"]
    steps = []
    if not (args.quick or args.skip_install):
        steps.append({"name": "install", "argv": [sys.executable, "-m", "pip", "install", "-q",
                                                  f"{REPO}[cuda12]"], "limit": 600})
    steps.append({"name": "devices", "argv": [sys.executable, "-c",
                  "import jax, json; print(json.dumps({'backend': jax.default_backend(), "
                  "'devices': [str(d) for d in jax.devices()]}))"], "limit": 120})

    def job(name: str, family: str, extra: List[str], limit: int) -> Dict:
        work = out / name
        cold = [f"--config.workdir={work / 'run'}", f"--config.compilation_cache_dir={work / 'xla'}",
                f"--config.inputs.cache_dir={work / 'inputs'}"]
        quick = QUICK_COMMON if args.quick else []
        return {"name": name, "argv": lpzero + [f"--config={family}"] + cold + extra + quick,
                "limit": int(limit * args.scale), "workdir": str(work)}

    for family in FAMILIES:
        steps.append(job(f"bench_{family}", family, BENCH + (QUICK_BENCH if args.quick else []),
                         LIMITS["bench"]))
    steps.append(job("flexibert_search", "flexibert",
                     ["--config.mode=search", "--config.search.evaluate_all=False"] +
                     (QUICK_SEARCH if args.quick else []), LIMITS["flexibert_search"]))
    steps.append(job("gpt2_main", "gpt2", QUICK_SEARCH if args.quick else [], LIMITS["gpt2_main"]))
    return steps


def peak_rss_mb(stderr: str) -> Optional[float]:
    """Peak RSS from /usr/bin/time -v's report (None without one)."""
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    return int(m.group(1)) / 1024.0 if m else None


def bench_figures(workdir: Path) -> Dict:
    """The figures of a bench.json that say whether the run is host-bound."""
    path = workdir / "run" / "bench.json"
    if not path.exists():
        return {}
    r = json.loads(path.read_text())
    e, c = r["extraction"], r["candidates"]
    h = e.get("host_share") or {}
    return {"platform": r["platform"], "device": r["device"],
            "matmul_gflops": r["matmul_flops_per_s"] / 1e9,
            "extraction_cold_s": e["cold_seconds_total"], "extraction_warm_per_arch_s": e["warm_seconds_mean"],
            "programs_compiled": e["programs_compiled"],
            "host_share": h.get("host_share"), "host_steps_on_device": h.get("host_steps_on_device"),
            "transfers_per_arch": h.get("transfers_per_arch"),
            "candidates_per_s": c["program"]["candidates_per_s"], "peak_rss_mb": r["peak_rss_mb"]}


def run_step(step: Dict, env: Dict[str, str]) -> Dict:
    """Runs one step (under /usr/bin/time -v when present); its record for the summary."""
    timer = ["/usr/bin/time", "-v"] if shutil.which("/usr/bin/time") else []
    if step.get("workdir"):
        shutil.rmtree(step["workdir"], ignore_errors=True)  # cold: empty caches of its own
        Path(step["workdir"]).mkdir(parents=True)
    t = time.perf_counter()
    try:
        done = subprocess.run(timer + step["argv"], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=step["limit"])
        rc, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as e:
        rc = "timeout"
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        stderr = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
    record = {"name": step["name"], "command": " ".join(step["argv"]), "limit_s": step["limit"],
              "rc": rc, "seconds": round(time.perf_counter() - t, 1),
              "peak_rss_mb": peak_rss_mb(stderr)}
    if rc != 0:
        record["stderr_tail"] = stderr[-2000:]
    if step["name"] == "devices" and rc == 0:
        record.update(json.loads(stdout.strip().splitlines()[-1]))
    if step["name"].startswith("bench_"):
        record["bench"] = bench_figures(Path(step["workdir"]))
    if step.get("workdir"):
        (Path(step["workdir"]) / "stdout.txt").write_text(stdout)
        (Path(step["workdir"]) / "stderr.txt").write_text(stderr)
    return record


def markdown(summary: Dict) -> str:
    """The summary as a short markdown page."""
    lines = [f"# Accelerator check ({summary['started']})", "",
             f"backend: {summary.get('backend')}, devices: {summary.get('devices')}, "
             f"quick: {summary['quick']}, total {summary['seconds']:.0f} s", "",
             "| step | rc | seconds (limit) | peak RSS MB | figures |", "|---|---|---|---|---|"]
    for s in summary["steps"]:
        b = s.get("bench") or {}
        fig = ""
        if b:
            share = b.get("host_share")
            fig = (f"warm {b['extraction_warm_per_arch_s']:.2f} s/arch, host share "
                   f"{share:.0%}, " if share is not None else
                   f"warm {b['extraction_warm_per_arch_s']:.2f} s/arch, ") + \
                f"{b['candidates_per_s']:.0f} cand/s, {b['programs_compiled']} programs"
        rss = "" if s["peak_rss_mb"] is None else f"{s['peak_rss_mb']:.0f}"
        lines.append(f"| {s['name']} | {s['rc']} | {s['seconds']:.0f} ({s['limit_s']}) | {rss} | {fig} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    steps = plan(args)
    if args.only:
        keep = set(args.only.split(","))
        steps = [s for s in steps if s["name"] in keep]
    if args.dry_run:
        print(json.dumps(steps, indent=1))
        return 0
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + (
        [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    summary = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
               "quick": args.quick, "steps": []}
    t = time.perf_counter()
    for step in steps:
        print(f"[gpu_check] {step['name']} (limit {step['limit']} s) ...", flush=True)
        record = run_step(step, env)
        summary["steps"].append(record)
        if step["name"] == "devices":
            summary["backend"], summary["devices"] = record.get("backend"), record.get("devices")
        print(f"[gpu_check] {step['name']}: rc {record['rc']}, {record['seconds']} s", flush=True)
        summary["seconds"] = time.perf_counter() - t
        (out / "summary.json").write_text(json.dumps(summary, indent=1))  # kept after each step
    (out / "summary.md").write_text(markdown(summary))
    print(markdown(summary))
    if not args.quick and summary.get("backend") == "cpu":
        print("[gpu_check] the backend is the CPU: no accelerator was used", file=sys.stderr)
        return 2
    return 0 if all(s["rc"] == 0 for s in summary["steps"]) else 1


if __name__ == "__main__":
    sys.exit(main())
