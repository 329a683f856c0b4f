"""Does the proxy pick better subnets? Budgeted LoNAS subnet search on SmolLM2-135M, chosen subnets evaluated.

For each --budgets fraction and each --fitness (`subnet_search` fitness specs: params, proxy:<name>,
genome:<genome>, published:<key>) this runs `subnet_search` (experiments/smollm.py settings, weights
sliced from the pretrained GGUF) and evaluates the top-1 subnet's perplexity on the benchmark's
text slice (the header of lpzero_jax/data/smollm2_lonas.json: same corpus, windows,
seq_len). `random` draws --random_draws feasible subnets with --seed (the same seeded rejection
sampling as the search's first population) and reports their median and range.
Writes <workdir>/budget_results.jsonl (one line per (budget, fitness), resumable) and table.md.

    PYTHONPATH=. nice -n 10 python scripts/smollm_subnet_budget.py --budgets=0.85,0.75 \
        --fitness='params;random;proxy:softmax_confidence;published:lpzero_llama;genome:div(neg(square(H)),neg(log(J)))'
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

from absl import app, flags

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import numpy as np  # noqa: E402

from lpzero_jax.benchmarks.lonas_bench import DEFAULT_SMOLLM_FILE, load_lonas_bench  # noqa: E402
from lpzero_jax.families import get_family  # noqa: E402
from lpzero_jax.families.smollm import gguf_file, supernet_params  # noqa: E402
from lpzero_jax.models.llama_eval import perplexity, spread_windows  # noqa: E402
from lpzero_jax.models.llama_gguf import gguf_corpus_ids  # noqa: E402
from lpzero_jax.models.lonas import LonasSpace, extract_subnet_params  # noqa: E402
from lpzero_jax.modes import subnet_search  # noqa: E402
from lpzero_jax.search import subnets  # noqa: E402
from lpzero_jax.paths import resolve_data_file  # noqa: E402
from lpzero_jax.results import read_jsonl  # noqa: E402

F = flags.FLAGS
flags.DEFINE_list("budgets", ["0.85", "0.75"], "parameter budgets (fractions of the full model)")
flags.DEFINE_string("fitness", "params;random", "';'-separated subnet_search fitness specs (genomes hold "
                    "commas), or 'random'")
flags.DEFINE_string("workdir", "runs/smollm_budget", "outputs")
flags.DEFINE_integer("population", 10, "subnet_search population")
flags.DEFINE_integer("generations", 4, "subnet_search generations")
flags.DEFINE_integer("random_draws", 5, "random feasible subnets per budget")
flags.DEFINE_integer("seed", 42, "search / random draw seed")
flags.DEFINE_string("benchmark", str(DEFAULT_SMOLLM_FILE), "benchmark whose evaluation slice is used")


def run_config(budget: float, fitness: str, workdir: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("smollm_experiment", _REPO / "experiments" / "smollm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.mode = "subnet_search"
    c.compilation_cache_dir = ""
    s = c.subnet_search
    s.budget_fraction, s.fitness, s.seed = budget, fitness, F.seed
    s.population, s.generations, s.top_k = F.population, F.generations, 1
    c.workdir = str(workdir)
    return c


def main(argv):
    del argv
    workdir = Path(F.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    _, header = load_lonas_bench(Path(F.benchmark))
    ev = header["evaluation"]
    probe = run_config(0.85, "params", workdir)
    gguf = gguf_file(probe)
    config, params = supernet_params(str(gguf))
    space = LonasSpace(config, tuple(probe.subnet_search.width_ratios), rank_choices=(0,))
    ids = gguf_corpus_ids(str(gguf), str(resolve_data_file(ev["corpus"], probe.get("data_root"))))
    windows = spread_windows(ids, int(ev["windows"]), int(ev["seq_len"]))
    family = get_family("smollm")
    full = space.num_params(space.max_choice())

    def ppl(choice) -> float:
        sub = space.config_of(choice)
        return perplexity(sub, extract_subnet_params(params, family.param_shapes(sub)), windows)["ppl"]

    out_path = workdir / "budget_results.jsonl"
    done = {(r["budget"], r["fitness"]): r for r in read_jsonl(out_path)}
    for budget in (float(b) for b in F.budgets):
        max_params = int(math.floor(budget * full))
        for fitness in [f.strip() for f in F.fitness.split(";") if f.strip()]:
            if (budget, fitness) in done:
                continue
            t = time.perf_counter()
            if fitness == "random":
                rng = np.random.default_rng(F.seed)
                chosen = []
                for _ in range(F.random_draws):
                    chosen.append(subnets.feasible(space, lambda: space.random_choice(rng), max_params,
                                                   rng, 100, avoid=set(chosen)))
                ppls = [ppl(c) for c in chosen]
                r = {"ppl": float(np.median(ppls)), "ppl_all": ppls,
                     "params": [space.num_params(c) for c in chosen]}
            else:
                run_dir = workdir / f"{budget}_{fitness.replace(':', '_').replace('(', '_').replace(')', '_')[:60]}"
                result = subnet_search.run(run_config(budget, fitness, run_dir), run_dir)
                best = result["best"][0]
                choice = subnets.parse_choice_key(best["key"])
                r = {"ppl": ppl(choice), "params": best["params"], "fitness_value": best["fitness"],
                     "ffn": [l["ffn_width"] for l in best["layers"]], "scored": result["summary"]["scored"]}
            r.update(budget=budget, fitness=fitness, max_params=max_params, seconds=time.perf_counter() - t)
            with open(out_path, "a") as f:
                f.write(json.dumps(r) + "\n")
                f.flush()
                os.fsync(f.fileno())
            done[(budget, fitness)] = r
            print(f"budget {budget} fitness {fitness}: ppl {r['ppl']:.4g} ({r['seconds']:.0f}s)", flush=True)
    lines = ["| budget | fitness | chosen subnet's ppl | params | seconds |", "|---|---|---|---|---|"]
    for (budget, fitness), r in sorted(done.items()):
        params = r["params"] if isinstance(r["params"], int) else f"{min(r['params'])}..{max(r['params'])}"
        extra = f" (median of {len(r['ppl_all'])}: {min(r['ppl_all']):.4g}..{max(r['ppl_all']):.4g})" \
            if "ppl_all" in r else ""
        lines.append(f"| {budget} | {fitness} | {r['ppl']:.4g}{extra} | {params} | {r['seconds']:.0f} |")
    (workdir / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
