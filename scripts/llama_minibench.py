"""Trains the LLaMA mini-benchmark: small LLaMA variants from an elastic space, validation perplexity.

No trained LLaMA benchmark is public, so this script makes a CPU-scale one. From a small base LLaMA
(hidden 96, 6 layers, FFN 384, GPT-2 BPE reduced to the 4096 most frequent tokens of the training
text) it draws `num_archs` variants: depth from --depths (cycled, so every depth is equally
represented; the first `depth` layers of the base, as an elastic-depth supernet keeps them), the
head count from --heads (head_dim = hidden / heads), and each layer's FFN width from the LoNAS ratios
100/87.5/75/62.5/50 % of the base width. Each is trained from its rule-based init with optax AdamW
for the same token budget on WikiText-2 `test.txt`, on the same windows in the same order, and
evaluated on the first --valid_windows windows of `valid.txt` (see lpzero_jax/lm_training.py).
The defaults (48 models x 196,608 tokens, batch 8 x 64) took 55 min on the shared 2-core CPU; more
tokens per model would be better ground truth but cost proportionally more (see the README's "LLaMA" section).

Resumable: every finished model is appended to <workdir>/results.jsonl at once; a rerun with the
same settings skips them (different settings are refused). The benchmark file (--out) is rewritten
from results.jsonl after every model. --rerun=ID,ID retrains given models into rerun.jsonl and
compares their perplexity with the stored one (determinism check).

    PYTHONPATH=. python scripts/llama_minibench.py            # defaults = the committed benchmark
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

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
from ml_collections import ConfigDict  # noqa: E402

from lpzero_jax.benchmarks.minibench import DEFAULT_LLAMA_FILE, FORMAT  # noqa: E402
from lpzero_jax.families import get_family  # noqa: E402
from lpzero_jax.families.llama import TOKENIZER, lm_corpus_ids, vocab_fingerprint  # noqa: E402
from lpzero_jax.lm_training import TrainConfig, train_lm  # noqa: E402
from lpzero_jax.models.llama import LlamaConfig, LlamaLayerConfig, count_llama_params  # noqa: E402
from lpzero_jax.models.lonas import LONAS_WIDTH_RATIOS, elastic_widths  # noqa: E402
from lpzero_jax.results import read_jsonl  # noqa: E402

F = flags.FLAGS
flags.DEFINE_string("out", str(DEFAULT_LLAMA_FILE.relative_to(_REPO)), "benchmark JSON to write")
flags.DEFINE_string("workdir", "runs/llama_minibench", "results.jsonl / rerun.jsonl live here")
flags.DEFINE_integer("num_archs", 48, "number of architectures")
flags.DEFINE_integer("arch_seed", 0, "seed of the architecture draw")
flags.DEFINE_integer("init_seed", 0, "parameter init seed (the same for every model)")
flags.DEFINE_integer("data_seed", 0, "training window order seed (the same for every model)")
flags.DEFINE_string("data_root", None, "data root (default $LPZERO_DATA or ../shared/data)")
flags.DEFINE_string("train_corpus", "wikitext-2/test.txt", "training text, relative to data_root")
flags.DEFINE_string("valid_corpus", "wikitext-2/valid.txt", "validation text, relative to data_root")
flags.DEFINE_string("vocab_corpus", "wikitext-2/test.txt", "text whose most frequent tokens are kept")
flags.DEFINE_integer("vocab_size", 4096, "model vocabulary: vocab_size-1 most frequent GPT-2 ids + UNK")
flags.DEFINE_integer("hidden_size", 96, "base hidden size")
flags.DEFINE_integer("intermediate_size", 384, "base FFN width (100 %)")
flags.DEFINE_list("depths", ["2", "3", "4", "5", "6"], "depth choices (cycled over the archs)")
flags.DEFINE_list("heads", ["2", "4", "8"], "attention head choices (drawn per arch)")
flags.DEFINE_list("width_ratios", [str(r) for r in LONAS_WIDTH_RATIOS], "FFN width ratios (per layer)")
flags.DEFINE_float("rope_theta", 10000.0, "rotary base")
flags.DEFINE_integer("tokens", 196608, "training tokens per model")
flags.DEFINE_integer("batch_size", 8, "training batch size")
flags.DEFINE_integer("seq_len", 64, "window length")
flags.DEFINE_float("learning_rate", 2e-3, "peak learning rate (warmup + cosine decay)")
flags.DEFINE_float("warmup_fraction", 0.05, "warmup steps / steps")
flags.DEFINE_integer("valid_windows", 1024, "validation windows (0: all of valid_corpus)")
flags.DEFINE_list("only", [], "train only these arch ids (e.g. to time one model)")
flags.DEFINE_list("rerun", [], "retrain these arch ids into rerun.jsonl and compare (determinism)")
flags.DEFINE_boolean("assemble_only", False, "only rewrite --out from results.jsonl")

SETTING_FLAGS = ("arch_seed", "init_seed", "data_seed", "train_corpus", "valid_corpus", "vocab_corpus",
                 "vocab_size", "hidden_size", "intermediate_size", "depths", "heads", "width_ratios",
                 "rope_theta", "tokens", "batch_size", "seq_len", "learning_rate", "warmup_fraction",
                 "valid_windows")


def settings() -> dict:
    return {k: getattr(F, k) for k in SETTING_FLAGS}


def settings_fingerprint() -> str:
    return hashlib.sha1(json.dumps(settings(), sort_keys=True).encode()).hexdigest()[:12]


def command() -> str:
    """The canonical command that reproduces the benchmark (every setting explicit)."""
    parts = ["PYTHONPATH=. python scripts/llama_minibench.py", f"--num_archs={F.num_archs}",
             f"--out={F.out}"]
    for k in SETTING_FLAGS:
        v = getattr(F, k)
        parts.append(f"--{k}={','.join(v) if isinstance(v, list) else v}")
    return " ".join(parts)


def sample_archs(num: int) -> list:
    """[(arch_id, LlamaConfig)]: deterministic in the settings; arch i does not depend on num."""
    rng = np.random.default_rng(F.arch_seed)
    depths = [int(d) for d in F.depths]
    heads = [int(h) for h in F.heads]
    widths = elastic_widths(F.intermediate_size, [float(r) for r in F.width_ratios])
    seen, out = set(), []
    for i in range(num):
        depth = depths[i % len(depths)]
        while True:
            h = int(rng.choice(heads))
            ffn = tuple(int(w) for w in rng.choice(widths, size=depth))
            if (depth, h, ffn) not in seen:
                break
        seen.add((depth, h, ffn))
        layers = tuple(LlamaLayerConfig(intermediate_size=w, num_heads=h, num_kv_heads=h) for w in ffn)
        out.append((f"mb{i:03d}", LlamaConfig(vocab_size=F.vocab_size, hidden_size=F.hidden_size,
                                              layers=layers, rope_theta=F.rope_theta)))
    return out


def read_results(path: Path) -> dict:
    """Models already trained (results.jsonl, written as each one finishes), by id."""
    return {r["id"]: r for r in read_jsonl(path)}


def run_config() -> ConfigDict:
    return ConfigDict(dict(vocab_size=F.vocab_size, vocab_corpus=F.vocab_corpus, data_root=F.data_root,
                           vocab_path=None))


def train_one(family, arch_id: str, config: LlamaConfig, train_ids, valid_ids, tc: TrainConfig) -> dict:
    t = time.perf_counter()
    metrics = train_lm(family, config, train_ids, valid_ids, tc, F.init_seed, F.data_seed,
                       log_every=max(1, tc.steps // 4), log=lambda m: print(m, flush=True))
    return {"id": arch_id, "config": config.to_dict(),
            "summary": {"depth": config.num_layers, "heads": config.layers[0].num_heads,
                        "ffn": [l.intermediate_size for l in config.layers]},
            "metrics": metrics, "params": count_llama_params(config),
            "seconds": time.perf_counter() - t, "settings": settings_fingerprint()}


def assemble(results: dict, archs: list, out: Path, run_cfg: ConfigDict) -> None:
    entries = [results[a] for a, _ in archs if a in results]
    data = {
        "format": FORMAT, "family": "llama", "command": command(),
        "vocab": {"tokenizer": TOKENIZER, "size": F.vocab_size, "counted_on": F.vocab_corpus,
                  "fingerprint": vocab_fingerprint(run_cfg)},
        "training": dict(settings(), optimizer="adamw (b1 0.9, b2 0.95, wd 0.1), clip 1.0, "
                         "warmup + cosine to 10 %", settings_fingerprint=settings_fingerprint()),
        "num_archs_planned": len(archs), "num_archs_done": len(entries),
        "total_train_seconds": sum(e["seconds"] for e in entries),
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(),
                 "note": "shared 2-core CPU; seconds are noisy"},
        "archs": [{k: e[k] for k in ("id", "config", "summary", "metrics", "params", "seconds")}
                  for e in entries],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    tmp.replace(out)


def main(argv):
    del argv
    workdir = Path(F.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    out = Path(F.out)
    run_cfg = run_config()
    archs = sample_archs(F.num_archs)
    results_path = workdir / "results.jsonl"
    results = read_results(results_path)
    foreign = [r["id"] for r in results.values() if r.get("settings") != settings_fingerprint()]
    if foreign:
        raise SystemExit(f"{results_path} holds results of other settings ({foreign[:3]}...); "
                         "use another --workdir")
    if F.assemble_only:
        assemble(results, archs, out, run_cfg)
        print(f"wrote {out} ({len(results)} archs)")
        return

    family = get_family("llama")
    train_ids = lm_corpus_ids(run_cfg, F.train_corpus)
    valid_ids = lm_corpus_ids(run_cfg, F.valid_corpus)
    tc = TrainConfig(tokens=F.tokens, batch_size=F.batch_size, seq_len=F.seq_len,
                     learning_rate=F.learning_rate, warmup_fraction=F.warmup_fraction,
                     valid_windows=F.valid_windows)
    print(f"settings {settings_fingerprint()}: {len(archs)} archs, {tc.steps} steps x {tc.batch_size} x "
          f"{tc.seq_len} = {tc.steps * tc.batch_size * tc.seq_len} tokens each; train {len(train_ids)} "
          f"tokens, valid {len(valid_ids)} tokens", flush=True)

    if F.rerun:
        by_id = dict(archs)
        rerun_path = workdir / "rerun.jsonl"
        for arch_id in F.rerun:
            if arch_id not in results:
                raise SystemExit(f"{arch_id} has no stored result to compare with")
            r = train_one(family, arch_id, by_id[arch_id], train_ids, valid_ids, tc)
            with open(rerun_path, "a") as f:
                f.write(json.dumps(r) + "\n")
            a, b = results[arch_id]["metrics"]["valid_ppl"], r["metrics"]["valid_ppl"]
            print(f"rerun {arch_id}: stored ppl {a!r}, retrained ppl {b!r}, "
                  f"{'IDENTICAL' if a == b else f'differs by {b - a:.3g}'}", flush=True)
        return

    todo = [(a, c) for a, c in archs if a not in results and (not F.only or a in F.only)]
    started = time.perf_counter()
    for n, (arch_id, config) in enumerate(todo):
        print(f"[{n + 1}/{len(todo)}] {arch_id}: depth {config.num_layers}, heads "
              f"{config.layers[0].num_heads}, ffn {[l.intermediate_size for l in config.layers]}, "
              f"{count_llama_params(config)} params", flush=True)
        r = train_one(family, arch_id, config, train_ids, valid_ids, tc)
        with open(results_path, "a") as f:
            f.write(json.dumps(r) + "\n")
            f.flush()
            os.fsync(f.fileno())
        results[arch_id] = r
        assemble(results, archs, out, run_cfg)
        m = r["metrics"]
        elapsed = time.perf_counter() - started
        print(f"  -> valid ppl {m['valid_ppl']:.3f} (train {m['train_seconds']:.0f}s, eval "
              f"{m['eval_seconds']:.0f}s, total {r['seconds']:.0f}s); elapsed {elapsed:.0f}s, "
              f"eta {elapsed / (n + 1) * (len(todo) - n - 1):.0f}s", flush=True)
    print(f"done: {len(results)}/{len(archs)} archs in {out}", flush=True)


if __name__ == "__main__":
    app.run(main)
