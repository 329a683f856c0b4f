"""Issue 18 item 5: the open causes of three gaps to the published figures, tested on a fixed sample.

For every architecture of a fixed list (`--archs N`: N architectures evenly spaced over the
ground-truth ranking, the endpoints included, optionally among the `--max_params` smallest by
non-embedding/total parameters to bound memory), each proxy is computed in eval mode (the default)
and in train mode (`config.train_mode`: the reference's dropout, masks from `config.seed`), on the
same parameters and batch. GPT-2 also gets `grasp_two_masks`: GraSP as the reference computes it in
train mode, g from one forward pass and H g from a second pass with other dropout masks
(`compute_grasp_per_weight` runs the model twice). Values go to OUT/values.jsonl as they are made
(resumable: done (arch, setting) pairs are skipped); `--summarise` writes OUT/summary.json and
prints the rho / tau table.

Run from the repository root as a module (so this checkout's package is imported):
python -m experiments.open_causes --family=gpt2 --archs=16 --max_params=10000000 --out=runs/oc_gpt2
python -m experiments.open_causes --family=gpt2 --out=runs/oc_gpt2 --summarise
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Dict, List

import jax
import numpy as np

from lpzero_jax import evaluation
from lpzero_jax.families import get_family
from lpzero_jax.inputs import group_by_layer
from lpzero_jax.proxies import PROXIES, ArchContext
from lpzero_jax.proxies import stages as proxy_stages
from lpzero_jax.proxies.activation_distance import nwot_score
from lpzero_jax.proxies.activation_distance_reference import kernel_entry_sum
from lpzero_jax.proxies.common import flat_params
from lpzero_jax.proxies.grasp import grasp_score

PROXY_SETS = {"gpt2": ("jacobian_cosine", "jacobian_cosine_reference", "grasp"),
              "flexibert": ("activation_distance", "activation_distance_reference")}


def experiment_config(family: str, train_mode: bool, overrides: Dict[str, object]):
    """The family's experiment config with train_mode and the given field overrides."""
    module = __import__(f"lpzero_jax.configs.{family}", fromlist=["get_config"])
    config = module.get_config()
    config.train_mode = train_mode
    for key, value in overrides.items():
        config[key] = value
    return config


def pick_archs(archs, n: int, max_params: int, family) -> List:
    """n archs evenly spaced over the ground-truth order (ends included), among those within
    max_params parameters (0: all)."""
    pool = archs
    if max_params:  # the benchmark's own count where it has one (LTS params_summary: no tracing)
        pool = [a for a in archs
                if (a.extra.get("params", {}).get("total")
                    or family.count_params(family.model_config(a, _EVAL))) <= max_params]
    pool = sorted(pool, key=lambda a: a.score)
    idx = np.unique(np.round(np.linspace(0, len(pool) - 1, n)).astype(int))
    return [pool[i] for i in idx]


def grasp_two_masks(ctx: ArchContext) -> float:
    """-sum (H' g) W: g from ctx's pass (its dropout masks), H' the Hessian under other masks
    (seed + 1), as the reference's two forward passes in train mode. Equals grasp in eval mode."""
    mc = ctx.model_config
    other = mc if mc.dropout is None else dataclasses.replace(  # eval mode: no masks to differ
        mc, dropout=dataclasses.replace(mc.dropout, seed=mc.dropout.seed + 1))
    grads = flat_params(ctx.grads())
    vector = {p: grads[p] for p in ctx.linear_paths()}
    hg = proxy_stages.compiled_hvp(ctx.family, other)(ctx.params, ctx.device_batch(), vector)
    return grasp_score(hg, ctx.params)


@functools.lru_cache(maxsize=2)
def _compiled_ffn_activations(family, model_config):
    """jit fn(params, batch) -> [A tensors]: the forward's FFN activations only (the S and H
    intermediates are not returned, so a long batch does not hold them all in memory)."""
    model = family.build_model(model_config)

    def forward(params, batch):
        embeds = model.apply(params, batch["input_ids"], method=model.embed)
        _, state = model.apply(params, embeds, batch.get("token_type_ids"),
                               mutable=["intermediates"])
        return [a for layer in group_by_layer(state["intermediates"], name="A") for a in layer]

    return jax.jit(forward)


def activation_distances(ctx: ArchContext) -> Dict[str, float]:
    """activation_distance (NWOT log|K_H| over the batch) and activation_distance_reference
    (K's entry sum over the first input's tokens), from one forward that keeps A only."""
    acts = _compiled_ffn_activations(ctx.family, ctx.model_config)(ctx.params, ctx.device_batch())
    return {"activation_distance": nwot_score(acts),
            "activation_distance_reference": float(sum(kernel_entry_sum(a[0]) for a in acts))}


_EVAL = None


def run(args) -> None:
    global _EVAL
    family = get_family(args.family)
    overrides = json.loads(args.overrides)
    _EVAL = experiment_config(args.family, False, overrides)
    archs = family.load_benchmark(_EVAL)
    chosen = pick_archs(archs, args.archs, args.max_params, family)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "archs.json").write_text(json.dumps([str(a.arch_id) for a in chosen]))
    # a fixed shuffled order, so an interrupted run still spans the ground-truth range
    chosen = [chosen[i] for i in np.random.default_rng(0).permutation(len(chosen))]
    log = out / "values.jsonl"
    done = set()
    if log.exists():
        done = {(r["arch_id"], r["setting"]) for r in map(json.loads, log.read_text().splitlines())}
    settings = {"eval": _EVAL, "train": experiment_config(args.family, True, overrides)}
    batch = family.make_batch(_EVAL)  # the same batch in both settings
    names = PROXY_SETS[args.family]
    if not args.grasp:
        names = tuple(n for n in names if n != "grasp")
    for i, arch in enumerate(chosen):
        for setting, config in settings.items():
            if (str(arch.arch_id), setting) in done:
                continue
            ctx = ArchContext(family, arch, config, batch, fuse_hvp="grasp" in names)
            t = time.perf_counter()
            if args.family == "flexibert":
                values = activation_distances(ctx)
            else:
                values = {n: float(PROXIES.get(n)(ctx)) for n in names}
            if "grasp" in names and setting == "train":
                values["grasp_two_masks"] = grasp_two_masks(ctx)
            record = {"arch_id": str(arch.arch_id), "setting": setting, "truth": arch.score,
                      "params": family.count_params(ctx.model_config), "values": values,
                      "seconds": time.perf_counter() - t}
            with log.open("a") as f:
                f.write(json.dumps(record) + "\n")
            print(f"[{i + 1}/{len(chosen)}] {arch.arch_id} {setting} "
                  f"{record['seconds']:.1f}s {values}", flush=True)
            del ctx
            jax.clear_caches()


def released_activation_distance(path: str) -> Dict[str, Dict[str, float]]:
    """{arch id: {released, released_corrected, hooks}} from Serianni & Kalita's released
    BERT_results_activation.csv (LPZero's data/ has the same file).

    Their loop registers a forward hook on every layer's `intermediate_act_fn`, which (HF ACT2FN of
    that time) is ONE shared GELU instance, and the hooks close over the loop's current
    `activation_outputs` list and are never removed: at architecture i every hook registered so
    far appends each activation to i's list. Their sum therefore counts each FFN activation
    `hooks` times, and `Activation Distance Normalized` (the sum over the list's length) gives
    hooks = length / (FFN activation calls of the arch). released_corrected = Normalized x calls =
    the sum with each activation once (what `activation_distance_reference` computes)."""
    from lpzero_jax.families import get_family as _family
    from lpzero_jax.configs.flexibert import get_config

    archs = {str(a.arch_id): a for a in _family("flexibert").load_benchmark(get_config())}
    out = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            layers = archs[row["ID"]].config["encoder_layers"]
            calls = sum(l["num_feed_forward"] for l in layers)
            total, mean = float(row["Activation Distance"]), float(row["Activation Distance Normalized"])
            out[row["ID"]] = {"released": total, "released_corrected": mean * calls,
                              "hooks": total / mean / calls}
    return out


def _complete(out: str) -> List[Dict[str, dict]]:
    """[{setting: record}] of the archs of OUT/values.jsonl done in both settings."""
    by: Dict[str, Dict[str, dict]] = {}
    for line in (Path(out) / "values.jsonl").read_text().splitlines():
        r = json.loads(line)
        by.setdefault(r["arch_id"], {})[r["setting"]] = r
    return [v for v in by.values() if {"eval", "train"} <= set(v)]


def _names(both, setting: str) -> List[str]:
    """The proxies every record of `setting` has."""
    return sorted(set.intersection(*(set(v[setting]["values"]) for v in both)))


def summarise(args) -> dict:
    """{setting/proxy: {rho, tau, n}} over the archs with both settings done; printed as a table."""
    both = _complete(args.out)
    for other in filter(None, args.pool.split(",")):  # more archs from other runs (same settings)
        have = {v["eval"]["arch_id"] for v in both}
        both += [v for v in _complete(other) if v["eval"]["arch_id"] not in have]
    if args.same_as:  # only the archs the other run also completed (a like-for-like comparison)
        ids = {v["eval"]["arch_id"] for v in _complete(args.same_as)}
        both = [v for v in both if v["eval"]["arch_id"] in ids]
    truth = [v["eval"]["truth"] for v in both]
    table = {}
    for setting in ("eval", "train"):
        for name in _names(both, setting):
            scores = [v[setting]["values"][name] for v in both]
            corr = evaluation.rank_correlations(scores, truth)
            table[f"{setting}/{name}"] = {"rho": corr["spearman_rho"],
                                          "tau": corr["kendall_tau"], "n": len(both)}
    for name in sorted(set(_names(both, "train")) & set(_names(both, "eval"))):
        ev = np.array([v["eval"]["values"][name] for v in both])
        tr = np.array([v["train"]["values"][name] for v in both])
        table[f"train/{name}"]["rho_vs_eval"] = evaluation.spearman_rho(tr, ev)
        table[f"train/{name}"]["median_rel_change"] = float(np.median(np.abs(tr - ev) / np.abs(ev)))
    for name in ("params",):
        corr = evaluation.rank_correlations([v["eval"]["params"] for v in both], truth)
        table[name] = {"rho": corr["spearman_rho"], "tau": corr["kendall_tau"], "n": len(both)}
    if args.released:  # agreement with the authors' released per-arch values (same archs)
        released = released_activation_distance(args.released)
        ids = [v["eval"]["arch_id"] for v in both]
        for key in ("released", "released_corrected"):
            theirs = [released[i][key] for i in ids]
            corr = evaluation.rank_correlations(theirs, truth)
            table[key] = {"rho": corr["spearman_rho"], "tau": corr["kendall_tau"], "n": len(both)}
        theirs = [released[i]["released_corrected"] for i in ids]
        for setting in ("eval", "train"):
            for name in _names(both, setting):
                ours = [v[setting]["values"][name] for v in both]
                table[f"{setting}/{name}"]["rho_vs_released"] = \
                    evaluation.rank_correlations(ours, theirs)["spearman_rho"]
    name = "summary" + (f"_same_as_{Path(args.same_as).name}" if args.same_as else "") + (
        "_pooled" if args.pool else "") + ".json"
    (Path(args.out) / name).write_text(json.dumps(table, indent=1))
    for k, v in table.items():
        extra = (f" rho vs released {v['rho_vs_released']:+.3f}" if "rho_vs_released" in v
                 else "")
        if "rho_vs_eval" in v:
            extra += (f" rho vs eval {v['rho_vs_eval']:+.3f} median |change| "
                      f"{v['median_rel_change']:.2%}")
        print(f"{k:40s} rho {v['rho']:+.3f} tau {v['tau']:+.3f} n {v['n']}{extra}")
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", choices=sorted(PROXY_SETS), required=True)
    p.add_argument("--archs", type=int, default=40)
    p.add_argument("--max_params", type=int, default=0)
    p.add_argument("--overrides", default="{}", help='JSON of config fields, e.g. {"seq_len": 512}')
    p.add_argument("--out", required=True)
    p.add_argument("--summarise", action="store_true")
    p.add_argument("--grasp", action="store_true",
                   help="GPT-2: also GraSP (eval, train, train with two masks); ~3x the cost")
    p.add_argument("--pool", default="", help="comma list of other OUTs whose archs to add")
    p.add_argument("--same_as", default="", help="summarise only the archs this other OUT completed")
    p.add_argument("--released", default="",
                   help="Serianni & Kalita's BERT_results_activation.csv (FlexiBERT summary only)")
    args = p.parse_args()
    summarise(args) if args.summarise else run(args)


if __name__ == "__main__":
    main()
