"""`bench` mode: throughput of this machine, written to DIR/bench.json and printed as a table.

(a) proxy-input extraction per architecture: cold (compile + run) and warm (run) seconds, and the
    achieved FLOP/s (XLA's cost analysis of the extraction program / warm seconds) next to this
    machine's matmul FLOP/s measured in the same run;
(b) candidate evaluation over the S sampled architectures: candidates/s of the compile-once genome
    program (its one-off compile time and branch-cache hit rate reported separately) and of the
    per-genome compiler (compile seconds per genome);
(c) the naive path of the original code: re-extract every architecture's inputs for every candidate
    (here with already-compiled extraction, which favours the naive path), and the speedup of (b)
    over it;
(d) peak resident memory.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from lpzero_jax import evaluation, parallel, runtime
from lpzero_jax import inputs as proxy_inputs
from lpzero_jax.engine import extract, staging, timing
from lpzero_jax.expression.compile import compile_genome
from lpzero_jax.expression.genome import random_genome
from lpzero_jax.expression.program import GenomeProgram
from lpzero_jax.families import get_family
from lpzero_jax.modes.base import register_mode
from lpzero_jax.proxies.base import ArchContext
from lpzero_jax.results import write_json
from lpzero_jax.search.settings import check_drawn_sample, validate_search


def matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    """Best measured float32 matmul FLOP/s of the default device."""
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def extraction_cost(family, model_config, params, batch, sample_size: int) -> dict:
    """FLOPs of one architecture's extraction, counted by XLA on the programs that run it (the
    stages of `Family.stages`, or the whole-model program), and their warm seconds per stage
    kind ('whole' for the whole-model program)."""
    device_batch = {k: jnp.asarray(v) for k, v in batch.items()}
    stages = family.stages(model_config)
    if stages is not None:
        timer = timing.StageTimer()
        extract.extract_staged(stages, params, device_batch, family.is_proxy_weight, sample_size, 0,
                              timer=timer)
        return {"flops": float(sum(timer.flops.values())), "stage_seconds": dict(timer.seconds),
                "stage_flops": dict(timer.flops)}
    timer = timing.StageTimer()
    timer("whole", proxy_inputs._compiled_extractor(family, model_config, sample_size, 0),
          params, device_batch)
    return {"flops": float(timer.flops["whole"]), "stage_seconds": dict(timer.seconds),
            "stage_flops": dict(timer.flops)}


def distinct_stages(family, model_configs) -> dict:
    """Distinct compile units over a set of architectures without compiling anything: layer stages
    (as run, i.e. after bucketing) and outer stages of a staged family, else one whole-model
    program per distinct architecture; `programs`: the XLA programs the compact extraction
    compiles for them (a layer stage 2: forward with VJP, backward; an outer stage 1, the head's
    loss and gradient, plus 2 when its embedding and prelude are not on the host: forward and
    prelude backward, the latter an upper bound; a whole model 1)."""
    layers, outers, on_device, whole = set(), set(), set(), set()
    for mc in model_configs:
        stages = family.stages(mc)
        if stages is None:
            whole.add(mc)
            continue
        outers.add(staging.module_key(staging.head_stage(stages)))
        if stages.host_prelude is None:
            on_device.add(staging.module_key(stages.outer))
        for module, _ in stages.layers:
            layers.add(staging.module_key(staging.run_module(stages, module)))
    return {"layer_stages": len(layers), "outer_stages": len(outers), "whole_models": len(whole),
            "programs": 2 * len(layers) + len(outers) + 2 * len(on_device) + len(whole)}


def measure_extraction(config, family, sample, batch, peak: float, result: dict) -> list:
    """(a) Extraction of every sampled arch, cold and warm, with the FLOPs of the programs run and
    the programs compiled: result["extraction"] and the matmul rate measured after it; returns the
    archs' compact inputs."""
    b = config.bench
    k = int(config.inputs.sample_size)
    rows, stored = [], []
    t_all = time.perf_counter()
    with runtime.CompileLog() as compiles:
        for i, arch in enumerate(sample):
            ctx = ArchContext(family, arch, config, batch)
            params = ctx.params
            before = (compiles.programs, compiles.seconds)
            t = time.perf_counter()
            x = proxy_inputs.extract_proxy_inputs(family, ctx.model_config, params, batch, k)
            cold = time.perf_counter() - t
            new_programs = compiles.programs - before[0]
            compile_s = compiles.seconds - before[1]
            t = time.perf_counter()
            proxy_inputs.extract_proxy_inputs(family, ctx.model_config, params, batch, k)
            warm = time.perf_counter() - t
            cost = (extraction_cost(family, ctx.model_config, params, batch, k)
                    if i < b.flops_archs else {"flops": float("nan")})
            flops = cost["flops"]
            rows.append(dict(cost, arch_id=arch.arch_id, cold_s=cold, warm_s=warm,
                             new_programs=new_programs, compile_s=compile_s,
                             flops_per_s=flops / warm, lower_bound_s=flops / peak))
            stored.append(x)
            del ctx, params
            runtime.release_host_memory()
            logging.info("extract [%d/%d] arch %s: cold %.2fs (%d new programs, %.1fs compiling), "
                         "warm %.2fs%s", i + 1, len(sample), arch.arch_id, cold, new_programs,
                         compile_s, warm,
                         "" if np.isnan(flops) else f", {flops / warm / 1e9:.1f} GFLOP/s "
                         f"({flops / warm / peak:.0%} of matmul; lower bound {flops / peak:.2f}s)")
    # measured again: on shared cores the rate moves; the ratio uses the first, both are reported
    result["matmul_flops_per_s_after_extraction"] = matmul_flops()
    measured = [r for r in rows if np.isfinite(r["flops"])]
    result["extraction"] = {
        "per_arch": rows,
        # during the cold extractions only (not the FLOP counting's lowerings); compile seconds
        # as cold minus warm: JAX's trace/lower/compile event durations overlap and overstate
        "programs_compiled": int(sum(r["new_programs"] for r in rows)),
        "compile_seconds": float(sum(max(r["cold_s"] - r["warm_s"], 0.0) for r in rows)),
        "compile_event_seconds": float(sum(r["compile_s"] for r in rows)),
        "cold_seconds_total": sum(r["cold_s"] for r in rows),
        "warm_seconds_total": sum(r["warm_s"] for r in rows),
        "warm_seconds_mean": float(np.mean([r["warm_s"] for r in rows])),
        "wall_seconds": time.perf_counter() - t_all,
        "achieved_flops_per_s": float(np.sum([r["flops"] for r in measured]) /
                                      np.sum([r["warm_s"] for r in measured])) if measured else None,
    }
    if measured:
        e = result["extraction"]
        e["fraction_of_matmul"] = e["achieved_flops_per_s"] / peak
        e["measured_archs"] = len(measured)
        e["measured_warm_seconds"] = float(np.sum([r["warm_s"] for r in measured]))
        e["lower_bound_seconds"] = float(np.sum([r["lower_bound_s"] for r in measured]))
        kinds = sorted({kind for r in measured for kind in r["stage_seconds"]})
        e["per_stage"] = {kind: {"seconds": float(sum(r["stage_seconds"].get(kind, 0) for r in measured)),
                                 "flops": float(sum(r["stage_flops"].get(kind, 0) for r in measured))}
                          for kind in kinds}
    return stored


def count_distinct_stages(config, family, sample) -> dict:
    """Distinct compile units of the sample and of the whole benchmark."""
    whole = config.copy_and_resolve_references()
    whole.num_archs = 0  # the whole benchmark, whatever num_archs this run measured
    everything = family.load_benchmark(whole)
    return {
        "sample": distinct_stages(family, [family.model_config(a, config) for a in sample]),
        "benchmark": distinct_stages(family, [family.model_config(a, config) for a in everything]),
        "benchmark_archs": len(everything)}


def measure_candidates(config, genomes, stacked, truth, result: dict) -> float:
    """(b) Candidate evaluation, the compile-once program vs one program per genome:
    result["candidates"]; returns the program's seconds per candidate."""
    b = config.bench
    devices = parallel.local_devices(config.parallel.get("devices") or None)
    mesh = parallel.arch_mesh(devices) if len(devices) > 1 else None
    t = time.perf_counter()
    program = GenomeProgram(stacked, config.search.n_unary, mesh=mesh)
    program.compile()
    program_compile = time.perf_counter() - t
    t = time.perf_counter()
    for g in genomes:
        evaluation.spearman_rho(program.scores([g])[0], truth)
    program_seconds = time.perf_counter() - t
    hits, misses = program.branch_hits, program.branch_misses
    compiled_times, compiled_run = [], []
    for g in genomes[:b.compiled_candidates]:
        scores = compile_genome.__wrapped__(g)  # fresh: no cross-run cache
        args = (stacked.values[g.inputs[0]], stacked.counts[g.inputs[0]],
                stacked.values[g.inputs[1]], stacked.counts[g.inputs[1]], stacked.layer_mask)
        t = time.perf_counter()
        compiled = scores.jitted.lower(*args).compile()
        compiled_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        np.asarray(compiled(*args))
        compiled_run.append(time.perf_counter() - t)
    per_candidate = program_seconds / len(genomes)
    compiled_per = float(np.mean(compiled_times) + np.mean(compiled_run))
    result["candidates"] = {
        "evaluated": len(genomes),
        "program": {"compile_seconds_once": program_compile, "seconds_per_candidate": per_candidate,
                    "candidates_per_s": 1.0 / per_candidate,
                    "branch_cache_hit_rate": hits / max(hits + misses, 1)},
        "compiled_per_genome": {"genomes": len(compiled_times),
                                "compile_seconds_per_genome": float(np.mean(compiled_times)),
                                "run_seconds_per_genome": float(np.mean(compiled_run)),
                                "candidates_per_s": 1.0 / compiled_per},
        "winner": "program" if per_candidate < compiled_per else "compiled_per_genome",
        "program_speedup_over_compiled": compiled_per / per_candidate,
    }

    return per_candidate


def measure_naive(config, family, sample, batch, genomes, truth, per_candidate: float,
                  result: dict) -> None:
    """(c) The naive path of the original code: re-extract the inputs of every architecture for
    every candidate; result["naive"]."""
    k = int(config.inputs.sample_size)
    naive = []
    for g in genomes[:config.bench.naive_candidates]:
        t = time.perf_counter()
        scores = []
        for arch in sample:
            ctx = ArchContext(family, arch, config, batch)
            x = proxy_inputs.extract_proxy_inputs(family, ctx.model_config, ctx.params, batch, k)
            scores.append(compile_genome(g)(proxy_inputs.stack_inputs([x]))[0])
            del ctx, x
            runtime.release_host_memory()
        evaluation.spearman_rho(scores, truth)
        naive.append(time.perf_counter() - t)
        logging.info("naive path: one candidate on %d archs took %.1fs", len(sample), naive[-1])
    naive_per = float(np.mean(naive)) if naive else float("nan")
    result["naive"] = {"candidates": len(naive), "seconds_per_candidate": naive_per,
                       "speedup_of_program": naive_per / per_candidate}


def run(config, workdir: Path) -> dict:
    workdir = Path(workdir)
    family = get_family(config.family)
    archs = family.load_benchmark(config)
    sample_idx, _ = evaluation.sample_split(len(archs), config.search.sample_archs, config.seed)
    sample = [archs[i] for i in sample_idx]
    batch = family.make_batch(config)
    result = {"device": str(jax.devices()[0].device_kind), "platform": jax.default_backend(),
              "local_devices": jax.local_device_count(), "family": config.family,
              "batch": [config.batch_size, config.seq_len], "sample_archs": len(sample)}
    peak = matmul_flops()
    result["matmul_flops_per_s"] = peak
    logging.info("bench: %s, matmul %.1f GFLOP/s", result["device"], peak / 1e9)
    stored = measure_extraction(config, family, sample, batch, peak, result)
    result["distinct_stages"] = count_distinct_stages(config, family, sample)
    stacked = proxy_inputs.stack_inputs(stored)
    truth = np.array([a.score for a in sample])
    rng = np.random.default_rng(config.seed)
    genomes = [random_genome(rng, config.search.n_unary) for _ in range(config.bench.candidates)]
    per_candidate = measure_candidates(config, genomes, stacked, truth, result)
    measure_naive(config, family, sample, batch, genomes, truth, per_candidate, result)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    write_json(workdir / "bench.json", result)
    print(format_table(result))
    return result


def format_table(r: dict) -> str:
    """The bench results as a plain-text table."""
    e, c, n = r["extraction"], r["candidates"], r["naive"]
    lines = [
        f"device: {r['device']} ({r['platform']}, {r['local_devices']} local), batch {r['batch']}, "
        f"S={r['sample_archs']}",
        f"matmul                          {r['matmul_flops_per_s'] / 1e9:10.1f} GFLOP/s "
        f"({r['matmul_flops_per_s_after_extraction'] / 1e9:.1f} after extraction)",
        f"extraction, cold total          {e['cold_seconds_total']:10.1f} s",
        f"extraction, compiling           {e['compile_seconds']:10.1f} s ({e['programs_compiled']} "
        f"programs for the {r['sample_archs']} archs)",
        f"extraction, warm (run) total    {e['warm_seconds_total']:10.1f} s",
        f"extraction, warm per arch       {e['warm_seconds_mean']:10.2f} s",
    ]
    d = r["distinct_stages"]
    for name in ("sample", "benchmark"):
        lines.append(f"distinct stages, {name:9s}      layers {d[name]['layer_stages']}, outer "
                     f"{d[name]['outer_stages']}, whole-model {d[name]['whole_models']}: "
                     f"{d[name]['programs']} programs")
    if e.get("achieved_flops_per_s"):
        lines.append(f"extraction achieved             {e['achieved_flops_per_s'] / 1e9:10.1f} GFLOP/s "
                     f"({e['fraction_of_matmul']:.0%} of matmul)")
        lines.append(f"lower bound vs measured (run)   {e['lower_bound_seconds']:10.2f} s vs "
                     f"{e['measured_warm_seconds']:.2f} s over {e['measured_archs']} archs")
        for kind, v in e["per_stage"].items():
            lines.append(f"  stage {kind:12s}           {v['seconds']:10.2f} s, "
                         f"{v['flops'] / 1e9:.1f} GFLOP ({v['flops'] / max(v['seconds'], 1e-9) / 1e9:.1f} GFLOP/s)")
    p, q = c["program"], c["compiled_per_genome"]
    lines += [
        f"program: compile once           {p['compile_seconds_once']:10.2f} s",
        f"program: candidates/s           {p['candidates_per_s']:10.1f}  "
        f"(branch cache hits {p['branch_cache_hit_rate']:.0%})",
        f"per-genome compile: s/genome    {q['compile_seconds_per_genome']:10.3f} s",
        f"per-genome compile: cand/s      {q['candidates_per_s']:10.2f}",
        f"winner: {c['winner']} ({c['program_speedup_over_compiled']:.0f}x)",
        f"naive (re-extract per cand.)    {n['seconds_per_candidate']:10.1f} s/candidate",
        f"speedup over naive              {n['speedup_of_program']:10.0f}x",
        f"peak RSS                        {r['peak_rss_mb']:10.0f} MB",
    ]
    return "\n".join(lines)


register_mode("bench", validate=validate_search, check_archs=check_drawn_sample)(run)
