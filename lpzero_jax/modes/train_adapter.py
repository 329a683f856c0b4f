"""`train_adapter` mode: trains LoNAS's elastic super-adapter on the family's pretrained supernet (SmolLM2's GGUF).

LoRA on q, k, v, gate and up of the frozen GGUF weights (float32); each step one subnet of the
LoNAS space (`config.adapter.width_ratios` x `rank_choices`), the largest and the smallest in
every cycle of `sandwich_period` steps; AdamW, warm-up + cosine; text: `adapter.train_corpus`
(WikiText-2 valid.txt) for training, `adapter.eval_corpus` (test.txt) for evaluation only. The
logic is lpzero_jax/adapters/; this mode loads, runs, records.

Outputs in the workdir: adapter_checkpoint.msgpack (every `checkpoint_every` steps, atomic;
rerunning the command resumes it exactly, kill -9 included), train_adapter.json (settings, their
digest, data digests, steps, tokens, wall time, tokens/s, loss at the start and at the end per
subnet kind, the adapter's sha256 and folder, the perplexity of `eval_archs` with the adapter
beside their damage-only benchmark value), loss_curve.png. The adapter itself goes to
`<adapter.cache_dir>/<digest>/` (adapter.msgpack + adapter.json), written whenever the run stops.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
from absl import logging

from lpzero_jax import files
from lpzero_jax.adapters.evaluate import subnet_perplexity
from lpzero_jax.adapters.lora import AdapterSpec
from lpzero_jax.adapters.store import save_adapter
from lpzero_jax.adapters.train import TrainSettings, loss_by_kind, settings_digest, train_adapter
from lpzero_jax.checks import require_int
from lpzero_jax.errors import ConfigError
from lpzero_jax.families import get_family
from lpzero_jax.families.smollm import file_sha256, gguf_file, supernet_params
from lpzero_jax.models.llama_eval import spread_windows
from lpzero_jax.models.llama_gguf import gguf_corpus_ids
from lpzero_jax.models.lonas import KNOB_FFN, Choice, as_choice
from lpzero_jax.modes.base import register_mode
from lpzero_jax.paths import resolve_data_file
from lpzero_jax.report import plot_training_loss
from lpzero_jax.results import write_json
from lpzero_jax.runtime import user_cache_dir

RESULT = "train_adapter.json"
LOSS_PNG = "loss_curve.png"
MIN_ID = "min"  # the space's smallest subnet: smallest widths AND smallest rank


def train_settings(a) -> TrainSettings:
    """config.adapter -> TrainSettings."""
    return TrainSettings(steps=int(a.steps), batch_size=int(a.batch_size), seq_len=int(a.seq_len),
                         learning_rate=float(a.learning_rate), warmup_steps=int(a.warmup_steps),
                         final_lr_fraction=float(a.final_lr_fraction), weight_decay=float(a.weight_decay),
                         sandwich_period=int(a.sandwich_period), seed=int(a.seed), data_seed=int(a.data_seed))


def adapter_spec(supernet, a) -> AdapterSpec:
    """The adapter's spec from config.adapter (or a plain dict of the same fields)."""
    return AdapterSpec(supernet, tuple(int(r) for r in a["rank_choices"]),
                       tuple(float(r) for r in a["width_ratios"]), float(a["scaling"]))


def validate(config) -> None:
    """config.adapter's settings (before any work)."""
    if "adapter" not in config:
        raise ConfigError("train_adapter needs config.adapter (the smollm config has it): "
                          "--config=smollm")
    a = config.adapter
    for name in ("steps", "batch_size", "seq_len", "sandwich_period", "eval_windows", "eval_seq_len",
                 "checkpoint_every"):
        require_int(config, f"adapter.{name}", 2 if name in ("sandwich_period", "seq_len", "eval_seq_len") else 1)
    for name in ("warmup_steps", "seed", "data_seed", "log_every", "stop_at"):
        require_int(config, f"adapter.{name}", 0)
    ranks = tuple(a.rank_choices)
    if not ranks or ranks != tuple(sorted(set(ranks), reverse=True)) or min(ranks) < 1:
        raise ConfigError(f"adapter.rank_choices must be distinct positive ranks, largest first, got {ranks}")
    ratios = tuple(a.width_ratios)
    if not ratios or ratios != tuple(sorted(set(ratios), reverse=True)) or not 0 < min(ratios) <= max(ratios) <= 1:
        raise ConfigError(f"adapter.width_ratios must be distinct, in (0, 1], largest first, got {ratios}")
    for name in ("learning_rate", "scaling"):
        if not float(a[name]) > 0:
            raise ConfigError(f"adapter.{name} must be > 0, got {a[name]}")
    if float(a.max_seconds) < 0 or not 0 <= float(a.final_lr_fraction) <= 1 or float(a.weight_decay) < 0:
        raise ConfigError("adapter.max_seconds and adapter.weight_decay must be >= 0, final_lr_fraction in [0, 1]")


def benchmark_choice(spec: AdapterSpec, arch) -> Choice:
    """A damage-only benchmark subnet (FFN widths per layer) in the adapter's space, at the largest rank."""
    space = spec.space()
    rows = []
    for i, layer in enumerate(arch.config["layers"]):
        widths = space.knob_values(i)[KNOB_FFN]
        if layer["intermediate_size"] not in widths:
            raise ConfigError(f"benchmark subnet {arch.arch_id}: layer {i} width {layer['intermediate_size']} is not "
                              f"one of adapter.width_ratios' widths {widths}")
        rows.append((0, widths.index(layer["intermediate_size"])))
    return as_choice(rows)


def eval_subnets(spec: AdapterSpec, config, archs) -> Dict[str, dict]:
    """{id: {choice, before}}: the `adapter.eval_archs` benchmark subnets (largest rank; before = their
    damage-only benchmark perplexity) and the space's smallest subnet (`min`: before = the benchmark's
    subnet of the same widths, if it has one)."""
    by_id = {str(a.arch_id): a for a in archs}
    out = {}
    for arch_id in [s.strip() for s in str(config.adapter.eval_archs or "").split(",") if s.strip()]:
        if arch_id == MIN_ID:
            continue
        if arch_id not in by_id:
            raise ConfigError(f"adapter.eval_archs: {arch_id!r} is not a subnet of the benchmark "
                              f"({', '.join(list(by_id)[:5])}, ...)")
        arch = by_id[arch_id]
        out[arch_id] = {"choice": benchmark_choice(spec, arch), "before": float(arch.extra["metrics"]["ppl"])}
    # without an adapter the rank does not matter: the smallest widths' benchmark value is min's
    smallest = [l.intermediate_size for l in spec.space().config_of(spec.space().min_choice()).layers]
    before = [float(a.extra["metrics"]["ppl"]) for a in archs
              if [l["intermediate_size"] for l in a.config["layers"]] == smallest]
    out[MIN_ID] = {"choice": spec.space().min_choice(), "before": before[0] if before else None}
    return out


def loss_summary(losses: List[float], period: int, n: int = 20) -> dict:
    """Mean loss of the first and the last `n` steps of each subnet kind."""
    out = {}
    for kind, pairs in loss_by_kind(losses, period).items():
        if pairs:
            values = [v for _, v in pairs]
            out[kind] = {"first": float(np.mean(values[:n])), "last": float(np.mean(values[-n:])),
                         "steps": len(values)}
    return out


def run(config, workdir: Path) -> dict:
    a = config.adapter
    family = get_family(config.family)
    gguf = gguf_file(config)
    settings = train_settings(a)
    supernet, base = supernet_params(str(gguf))
    spec = adapter_spec(supernet, a)
    train_path = resolve_data_file(a.train_corpus, config.get("data_root"))
    eval_path = resolve_data_file(a.eval_corpus, config.get("data_root"))
    if Path(train_path).resolve() == Path(eval_path).resolve():
        raise ConfigError("adapter.train_corpus and adapter.eval_corpus are the same file: keep the "
                          "evaluation text out of training")
    data = {"gguf_sha256": file_sha256(str(gguf)), "train_corpus": files.file_digest(train_path)}
    digest = settings_digest(spec, settings, data)
    archs = family.load_benchmark(config)
    subnets = eval_subnets(spec, config, archs)  # checked before the long part
    train_ids = gguf_corpus_ids(str(gguf), str(train_path))
    eval_windows = spread_windows(gguf_corpus_ids(str(gguf), str(eval_path)), int(a.eval_windows),
                                  int(a.eval_seq_len))
    logging.info("train_adapter %s: %d training tokens, %d steps of %d x %d, ranks %s, widths %s",
                 digest, len(train_ids), settings.steps, settings.batch_size, settings.seq_len,
                 tuple(a.rank_choices), tuple(a.width_ratios))
    started = time.perf_counter()
    state = train_adapter(spec, base, train_ids, settings, workdir, digest,
                          checkpoint_every=int(a.checkpoint_every), log_every=int(a.log_every),
                          stop_at=int(a.stop_at), max_seconds=float(a.max_seconds), log=logging.info)
    train_wall = time.perf_counter() - started
    tokens_per_step = settings.batch_size * settings.seq_len
    folder = (Path(a.cache_dir).expanduser() if a.cache_dir else user_cache_dir("adapters")) / digest
    cost = {"steps_done": state.step, "steps_planned": settings.steps, "complete": state.step >= settings.steps,
            "tokens": state.step * tokens_per_step, "train_seconds": state.seconds,
            "tokens_per_second": state.step * tokens_per_step / state.seconds if state.seconds else None,
            "tokens_per_second_this_run": state.run_rate,
            "host": {"cpus": os.cpu_count(), "machine": platform.machine(),
                     "note": "the seconds include each run's compilation; cores may be shared"}}
    meta = save_adapter(folder, state.adapter, spec, {
        "digest": digest, "settings": dataclasses.asdict(settings), "data": data, "cost": cost,
        "losses": loss_summary(state.losses, settings.sandwich_period)})
    plot_training_loss(loss_by_kind(state.losses, settings.sandwich_period), workdir / LOSS_PNG,
                       f"super-adapter {digest}: loss per step by subnet kind")

    evaluations = {}
    for arch_id, s in subnets.items():
        after = subnet_perplexity(spec, base, state.adapter, s["choice"], eval_windows, family)
        evaluations[arch_id] = {"ppl_before": s["before"], "ppl_after": after["ppl"],
                                "loss_after": after["loss"], "seconds": after["seconds"],
                                "layers": spec.space().values_of(s["choice"])}
        logging.info("%s: perplexity %s -> %.4g (%.0fs)", arch_id, s["before"], after["ppl"], after["seconds"])
    result = {"digest": digest, "adapter_folder": str(folder), "adapter_sha256": meta["sha256"],
              "adapter_bytes": meta["bytes"], "spec": spec.describe() | {"supernet": "(see adapter.json)"},
              "settings": dataclasses.asdict(settings), "data": data, "cost": cost,
              "train_wall_seconds_this_run": train_wall,
              "losses": loss_summary(state.losses, settings.sandwich_period),
              "eval": {"corpus": a.eval_corpus, "windows": int(a.eval_windows), "seq_len": int(a.eval_seq_len),
                       "before": "the damage-only benchmark's perplexity of the same subnet (no adapter)",
                       "subnets": evaluations}}
    write_json(Path(workdir) / RESULT, result, indent=1)
    logging.info("adapter %s (%d/%d steps) in %s; full-model %s, smallest %s", digest, state.step,
                 settings.steps, folder, evaluations.get("full", {}).get("ppl_after"),
                 evaluations[MIN_ID]["ppl_after"])
    return result


register_mode("train_adapter", validate=validate)(run)
