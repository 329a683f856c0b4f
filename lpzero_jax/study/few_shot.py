"""The few-shot protocol: S labelled architectures, rank the rest; every choice made on S alone.

For each seed and each S: `evaluation.sample_split` draws S architectures of the feature table (the
same draw the `search` mode makes over the whole benchmark); every method chooses and fits on those
S rows and their scores only, and is scored (Spearman rho, Kendall tau) on the held-out rest.

Methods (`METHODS`; a method whose inputs are missing is left out):
  best_zoo_on_S    the zoo proxy with the best |rho| on S, with its sign (search/baselines.py);
  params           the parameter count (no choice);
  ridge            ridge on rank-normalised features, alpha by k-fold CV inside S;
  lambdarank       LightGBM lambdarank, a small grid by k-fold CV inside S;
  ranker           the model kind (single / ridge / lambdarank) and its hyperparameters by CV
                   inside S (search/ranker.py): the learned ranker;
  ranker_cheap     the same on the cheap feature set (no second-order pass), when it is smaller;
  ranker_arch      the ranker on the architecture descriptors alone (search/arch_features.py:
                   numbers read off each config, no extraction), when the table has them;
  ranker+arch      the ranker on the zoo features plus the architecture descriptors;
  evolution, random, evolution_<variant>
                   genome searches on S (search/few_shot.py), when their values are given;
  ranker+genomes   the ranker on the zoo features plus the values of the genomes found on S;
  ranker+arch+genomes  the same plus the architecture descriptors;
  ranker_arch+evolution  the descriptors plus the evolution genome's values only: what the search
                   mode can fit with no zoo extraction (search/answer.py);
  ridge_arch, ridge+arch, ridge+genomes, ridge+arch+genomes, ridge_arch+evolution
                   the ranker lines above with the model kind fixed to ridge (no CV choice of kind);
  oracle_zoo       ORACLE: the zoo proxy best over every architecture (a reference line only).

Over the seeds: mean ± sd of held-out rho/tau per (S, method) and a paired Wilcoxon signed-rank
test (study/seeds.paired_test) of each method against random search and against best_zoo_on_S.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from absl import logging

from lpzero_jax import evaluation, files
from lpzero_jax.input_store import eta_text
from lpzero_jax.errors import DataFileError
from lpzero_jax.search.arch_features import descriptor_table
from lpzero_jax.search import baselines
from lpzero_jax.search import ranker as ranker_lib
from lpzero_jax.study.seeds import paired_test

ORACLE = "oracle_zoo"
METHODS = ("best_zoo_on_S", "params", "ridge", "lambdarank", "ranker", "ranker_cheap", "ranker_arch",
           "ranker+arch", "evolution", "random", "ranker+genomes", "ranker+arch+genomes",
           "ranker_arch+evolution", "ridge_arch", "ridge+arch", "ridge+genomes", "ridge+arch+genomes",
           "ridge_arch+evolution", ORACLE)
REFERENCES = ("random", "best_zoo_on_S")  # what every method is tested against


@dataclasses.dataclass
class FeatureTable:
    """benchmark: its name; arch_ids [N]; truth [N] (higher is better); names [F] of the feature
    columns of values [N, F]; seconds: feature -> extraction seconds per architecture (as if
    computed alone); cheap: the features needing no second-order pass."""

    benchmark: str
    arch_ids: List[str]
    truth: np.ndarray
    names: List[str]
    values: np.ndarray
    seconds: Dict[str, float] = dataclasses.field(default_factory=dict)
    cheap: List[str] = dataclasses.field(default_factory=list)
    arch_names: List[str] = dataclasses.field(default_factory=list)
    arch_values: Optional[np.ndarray] = None  # [N, D] architecture descriptors (arch_features.py)

    def with_descriptors(self, configs: Sequence) -> "FeatureTable":
        """This table with the descriptors of the architectures' configs (one per row)."""
        names, values = descriptor_table(configs)
        return dataclasses.replace(self, arch_names=names, arch_values=values)

    def columns(self, names: Sequence[str]) -> np.ndarray:
        index = {n: j for j, n in enumerate(self.names)}
        return self.values[:, [index[n] for n in names]]


SCORE_COLUMNS = ("score", "ground_truth")  # features helper tables / rank mode's scores.csv


def cheap_features(names: Sequence[str]) -> List[str]:
    """The names of zoo proxies that need no second-order pass (no Hessian-vector product);
    names that are not registered proxies (e.g. genomes, published columns) count as cheap."""
    from lpzero_jax.proxies import PROXIES

    return [n for n in names if n not in PROXIES or not PROXIES.get(n).needs_hvp]


def read_feature_table(path: Path, benchmark: str = "", seconds: Optional[Dict[str, float]] = None,
                       require_score: bool = True) -> FeatureTable:
    """A CSV of arch_id, score (or ground_truth), one column per proxy; empty or 'nan' cells are
    missing values. Every architecture needs a finite score (DataFileError naming the line),
    unless `require_score` is False (features of candidates to rank: their score is NaN)."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such feature table; compute one with the rank mode "
                            "(its scores.csv) or give the right path")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][0] != "arch_id" or len(rows[0]) < 3 or rows[0][1] not in SCORE_COLUMNS:
        raise DataFileError(f"{path}: expected a header arch_id,score,<proxy>,... (or "
                            "arch_id,ground_truth,... as the rank mode writes)")
    names = rows[0][2:]
    ids, truth, values = [], [], []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise DataFileError(f"{path} line {number}: {len(row)} cells, the header has {len(rows[0])}")
        try:
            score = float(row[1]) if row[1].strip() or require_score else float("nan")
            cells = [float(c) if c.strip() else float("nan") for c in row[2:]]
        except ValueError as e:
            raise DataFileError(f"{path} line {number}: not a number ({e})") from None
        if require_score and not math.isfinite(score):
            raise DataFileError(f"{path} line {number}: architecture {row[0]!r} has no finite score")
        ids.append(row[0])
        truth.append(score)
        values.append(cells)
    return FeatureTable(benchmark or path.stem, ids, np.asarray(truth), names,
                        np.asarray(values, np.float64), dict(seconds or {}), cheap_features(names))


# --- one seed ------------------------------------------------------------------------------------

def _held_out(scores: np.ndarray, truth: np.ndarray, held: np.ndarray) -> dict:
    r = evaluation.rank_correlations(np.asarray(scores)[held], truth[held])
    return {"rho": r["spearman_rho"], "tau": r["kendall_tau"], "n": r["n"]}


def _ranker_entries(x: np.ndarray, names: Sequence[str], table: FeatureTable, sample: np.ndarray,
                    seed: int, variants: Dict[str, Sequence[str]]) -> Dict[str, dict]:
    """variant name -> {scores, choice} of rankers chosen among the model kinds of each variant,
    all from one cross-validation of every kind inside the sample."""
    y = table.truth[sample]
    kinds = [k for k in ranker_lib.MODEL_KINDS if any(k in v for v in variants.values())]
    cv = ranker_lib.cross_validate(x[sample], y, kinds, seed)
    out = {}
    for name, kinds in variants.items():
        model = ranker_lib.fit_ranker(x[sample], y, names, kinds=kinds, seed=seed, table=cv)
        out[name] = {"scores": model.predict(x), "choice": {
            "kind": model.kind, "params": {k: v for k, v in model.params.items()
                                           if k not in ("feature", "rho_on_train")},
            "features": list(names), "cost": ranker_lib.feature_costs(names, table.seconds)}}
    return out


def _with_ridge(name: str, methods: Sequence[str]) -> Dict[str, Sequence[str]]:
    """The ranker variants of one feature set that `methods` asks for: `name` (the model kind
    chosen by CV) and its ridge-only twin ('ranker' -> 'ridge' in the name)."""
    twin = name.replace("ranker", "ridge", 1)
    return {n: kinds for n, kinds in ((name, ranker_lib.MODEL_KINDS), (twin, ("ridge",)))
            if n in methods}


def run_seed(table: FeatureTable, seed: int, size: int,
             searches: Optional[Dict[str, dict]] = None,
             methods: Sequence[str] = METHODS) -> Dict[str, dict]:
    """method -> {scores [N] (every architecture), choice (what was chosen on S), held_out
    {rho, tau, n}} for one seed and sample size. `searches`: the genome searches of this seed
    and size (search_on_sample's output). Only table.truth[sample] reaches a choice or a fit."""
    sample, held = evaluation.sample_split(len(table.arch_ids), size, seed)
    truth_s = table.truth[sample]
    zoo = [n for n in table.names]
    out: Dict[str, dict] = {}
    if "best_zoo_on_S" in methods:
        pick = baselines.best_zoo_on_S(table.values, zoo, truth_s, sample)
        out["best_zoo_on_S"] = {"scores": pick["scores"], "choice": {
            "proxy": pick["name"], "sign": pick["sign"], "rho_on_sample": pick["rho"]}}
    if "params" in methods and "params" in table.names:
        out["params"] = {"scores": table.columns(["params"])[:, 0], "choice": {}}
    x = table.values
    variants = {name: kinds for name, kinds in (("ridge", ("ridge",)), ("lambdarank", ("lambdarank",)),
                                                ("ranker", ranker_lib.MODEL_KINDS)) if name in methods}
    if variants:
        out.update(_ranker_entries(x, zoo, table, sample, seed, variants))
    if "ranker_cheap" in methods and 0 < len(table.cheap) < len(zoo):
        out.update(_ranker_entries(table.columns(table.cheap), table.cheap, table, sample, seed,
                                   {"ranker_cheap": ranker_lib.MODEL_KINDS}))
    if table.arch_values is not None:
        for name, (x_m, names) in (("ranker_arch", (table.arch_values, table.arch_names)),
                                   ("ranker+arch", (np.concatenate([x, table.arch_values], axis=1),
                                                    zoo + table.arch_names))):
            variants = _with_ridge(name, methods)
            if variants:
                out.update(_ranker_entries(x_m, names, table, sample, seed, variants))
    if searches:
        for name, entry in searches.items():
            if name in ("evolution", "random") or name.startswith("evolution_"):
                out[name] = {"scores": np.asarray(entry["values"], np.float64),
                             "choice": {"genomes": list(entry["genomes"]),
                                        "fitness_on_sample": entry["fitness_on_sample"]}}
        found = [n for n in searches if n != "random"]
        extra = np.stack([np.asarray(searches[n]["values"], np.float64) for n in found], axis=1)
        genome_names = [f"genome:{n}" for n in found]
        combos = {"ranker+genomes": (x, zoo)}
        if table.arch_values is not None:
            combos["ranker+arch+genomes"] = (np.concatenate([x, table.arch_values], axis=1),
                                             zoo + table.arch_names)
            if "evolution" in searches:  # what the search mode can fit at no extraction cost
                combos["ranker_arch+evolution"] = (table.arch_values, table.arch_names)
        for name, (base, base_names) in combos.items():
            variants = _with_ridge(name, methods)
            if not variants:
                continue
            cols = [found.index("evolution")] if name == "ranker_arch+evolution" else list(range(len(found)))
            names = base_names + [genome_names[j] for j in cols]
            out.update(_ranker_entries(np.concatenate([base, extra[:, cols]], axis=1), names,
                                       dataclasses.replace(table, names=names), sample, seed,
                                       variants))
    if ORACLE in methods:
        pick = baselines.oracle_zoo(table.values, zoo, table.truth)
        out[ORACLE] = {"scores": pick["scores"], "choice": {"proxy": pick["name"],
                                                            "sign": pick["sign"], "oracle": True}}
    for entry in out.values():
        entry["held_out"] = _held_out(entry["scores"], table.truth, held)
    return out


# --- the protocol --------------------------------------------------------------------------------

SearchProvider = Callable[[int, int, np.ndarray], Dict[str, dict]]


def run_protocol(table: FeatureTable, seeds: Sequence[int], sizes: Sequence[int],
                 searches: Optional[SearchProvider] = None,
                 methods: Sequence[str] = METHODS) -> dict:
    """Every (seed, size): run_seed. `searches(seed, size, sample_idx)` gives that seed's genome
    searches (or None: no genome methods). Returns {benchmark, seeds, sizes, records [one per
    seed, size, method], summary}."""
    records = []
    started, took, total = time.perf_counter(), [], len(sizes) * len(seeds)
    for size in sizes:
        for seed in seeds:
            t0 = time.perf_counter()
            sample, _ = evaluation.sample_split(len(table.arch_ids), size, seed)
            found = searches(seed, size, sample) if searches is not None else None
            out = run_seed(table, seed, size, found, methods)
            for method, entry in out.items():
                records.append({"seed": int(seed), "S": int(size), "method": method,
                                "held_out": entry["held_out"], "choice": entry["choice"]})
            took.append(time.perf_counter() - t0)
            best = max(out, key=lambda m: (m != ORACLE, np.nan_to_num(out[m]["held_out"]["rho"], nan=-2)))
            logging.info("few_shot [%d/%d] S=%d seed %d: %d methods in %.0fs (best held-out: %s %.3f) "
                         "| elapsed %.0fs%s", len(took), total, size, seed, len(out), took[-1], best,
                         out[best]["held_out"]["rho"], time.perf_counter() - started,
                         eta_text(took, total - len(took)))
    return {"benchmark": table.benchmark, "n_archs": len(table.arch_ids), "features": table.names,
            "cheap_features": table.cheap, "feature_seconds": table.seconds,
            "seeds": [int(s) for s in seeds], "sizes": [int(s) for s in sizes],
            "records": records, "summary": summarize(records)}


def summarize(records: List[dict]) -> Dict[str, dict]:
    """S (as text) -> method -> {rho_mean, rho_sd, tau_mean, tau_sd, n_seeds, rho_values,
    tests: {vs_<reference>: paired_test of rho (same seeds)}}."""
    out: Dict[str, dict] = {}
    for size in sorted({r["S"] for r in records}):
        rows = [r for r in records if r["S"] == size]
        by = {}
        for r in rows:
            by.setdefault(r["method"], {})[r["seed"]] = r["held_out"]
        seeds = sorted({r["seed"] for r in rows})
        block = {}
        for method, held in by.items():
            rho = np.asarray([held.get(s, {}).get("rho", np.nan) for s in seeds], np.float64)
            tau = np.asarray([held.get(s, {}).get("tau", np.nan) for s in seeds], np.float64)
            entry = {"n_seeds": int(np.isfinite(rho).sum()), "rho_values": rho.tolist()}
            for short, v in (("rho", rho), ("tau", tau)):
                v = v[np.isfinite(v)]
                entry[f"{short}_mean"] = float(np.mean(v)) if len(v) else float("nan")
                entry[f"{short}_sd"] = float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")
            entry["tests"] = {}
            for ref in REFERENCES:
                if ref in by and ref != method:
                    ref_rho = [by[ref].get(s, {}).get("rho", np.nan) for s in seeds]
                    entry["tests"][f"vs_{ref}"] = paired_test(rho, ref_rho)
            block[method] = entry
        out[str(size)] = block
    return out


# --- outputs -------------------------------------------------------------------------------------

def label(method: str) -> str:
    return f"{method} (ORACLE: chosen on all archs)" if method == ORACLE else method


def write_csv(result: dict, path: Path) -> None:
    """One row per seed, S and method: held-out rho/tau/n and what was chosen on S."""
    import json

    with files.atomic_write(path) as f:
        w = csv.writer(f)
        w.writerow(["benchmark", "S", "seed", "method", "held_out_rho", "held_out_tau", "n", "choice"])
        for r in result["records"]:
            w.writerow([result["benchmark"], r["S"], r["seed"], r["method"], r["held_out"]["rho"],
                        r["held_out"]["tau"], r["held_out"]["n"],
                        json.dumps({k: v for k, v in r["choice"].items() if k != "cost"},
                                   default=str)])


def _p(test: Optional[dict]) -> str:
    if not test or not np.isfinite(test.get("p_two_sided", np.nan)):
        return "-"
    return f"{test['p_two_sided']:.3g} ({test['wins']}/{test['n']} wins)"


def markdown_table(result: dict, size: int) -> List[str]:
    """Rows of the S = size table: method, held-out rho and tau (mean ± sd), p vs the references."""
    block = result["summary"][str(size)]
    lines = ["| method | held-out rho | held-out tau | p vs random | p vs best_zoo_on_S |",
             "|---|---|---|---|---|"]
    order = sorted(block, key=lambda m: (m == ORACLE, -block[m]["rho_mean"]
                                         if np.isfinite(block[m]["rho_mean"]) else 0))
    for m in order:
        e = block[m]
        lines.append(f"| {label(m)} | {e['rho_mean']:.3f} ± {e['rho_sd']:.3f} | "
                     f"{e['tau_mean']:.3f} ± {e['tau_sd']:.3f} | {_p(e['tests'].get('vs_random'))} "
                     f"| {_p(e['tests'].get('vs_best_zoo_on_S'))} |")
    return lines


def write_markdown(result: dict, path: Path) -> None:
    seeds = ", ".join(map(str, result["seeds"]))
    lines = [f"## {result['benchmark']}: {result['n_archs']} architectures, seeds {seeds}", ""]
    for size in result["sizes"]:
        lines += [f"### S = {size} (held out: {result['n_archs'] - size})", ""]
        lines += markdown_table(result, size) + [""]
    lines.append("p: two-sided Wilcoxon signed-rank over the seeds (paired by seed), with the "
                 "method's wins out of the seeds compared.")
    lines += ["", "Feature sets of the rankers (extraction seconds per architecture, as each "
              "feature alone would take: the sum is an upper bound, the dearest one a lower "
              "bound; descriptors cost nothing):", "",
              "| method | features | s/arch (sum) | s/arch (max) | without a known cost |",
              "|---|---|---|---|---|"]
    seen = set()
    for r in result["records"]:
        cost = r["choice"].get("cost")
        if cost is None or r["method"] in seen:
            continue
        seen.add(r["method"])
        unknown = [f for f in cost["unknown"] if not f.startswith("arch:")]
        lines.append(f"| {r['method']} | {len(r['choice']['features'])} | {cost['sum']:.3g} | "
                     f"{cost['max']:.3g} | {', '.join(unknown) or '-'} |")
    files.write_text(path, "\n".join(lines) + "\n")


def plotted_methods(result: dict, most: int = 8) -> List[str]:
    """The methods the learning curve draws: the references (random search, best_zoo_on_S) and
    Algorithm 1 (evolution), then the others by their best place at any S (the winner of every S
    first; ties by mean held-out rho), `most` lines in all, and the ORACLE line. Every method
    stays in the CSV/markdown tables (18 lines were unreadable)."""
    sizes = [str(s) for s in result["sizes"]]
    methods = list(dict.fromkeys(m for s in sizes for m in result["summary"][s]))

    def rho(m, s):
        v = result["summary"][s].get(m, {}).get("rho_mean")
        return float(v) if v is not None and np.isfinite(v) else -np.inf

    others = [m for m in methods if m != ORACLE]
    order = [sorted(others, key=lambda o: -rho(o, s)) for s in sizes]  # best first, per S
    place = {m: min(ranked.index(m) for ranked in order) for m in others}
    chosen = [m for m in REFERENCES + ("evolution",) if m in methods]  # LPZero's own too
    rest = sorted((m for m in others if m not in chosen),
                  key=lambda m: (place[m], -np.mean([rho(m, s) for s in sizes
                                                      if np.isfinite(rho(m, s))] or [-np.inf])))
    chosen += rest[:max(0, most - len(chosen))]
    return chosen + ([ORACLE] if ORACLE in methods else [])


def plot_learning_curve(result: dict, path: Path) -> None:
    """Held-out rho (mean over seeds, ± sd band) against S, one line per plotted method."""
    from lpzero_jax import report

    plt = report._pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 4.2))
    sizes = result["sizes"]
    for i, m in enumerate(plotted_methods(result)):  # at most 9 lines: one colour each
        mean = np.asarray([result["summary"][str(s)].get(m, {}).get("rho_mean", np.nan) for s in sizes],
                          np.float64)
        sd = np.asarray([result["summary"][str(s)].get(m, {}).get("rho_sd", np.nan) for s in sizes],
                        np.float64)
        style = dict(linestyle="--", color="grey") if m == ORACLE else dict(color=f"C{i}")
        line, = ax.plot(sizes, mean, marker="o", markersize=3, label=label(m), **style)
        ax.fill_between(sizes, mean - sd, mean + sd, alpha=0.12, color=line.get_color())
    ax.set_xlabel("S (labelled architectures)")
    ax.set_ylabel("held-out Spearman rho")
    ax.set_title(f"{result['benchmark']}\nheld-out rho over {len(result['seeds'])} seeds "
                 "(mean, ± sd band)", fontsize=9)
    ax.set_xticks(sizes)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title="best methods (all: few_shot.md)", title_fontsize=6.5)
    fig.tight_layout()
    with files.atomic_write(path, binary=True) as f:
        fig.savefig(f, dpi=90, format="png")
    plt.close(fig)


def write_outputs(result: dict, workdir: Path) -> None:
    """DIR/few_shot.{json,csv,md} and DIR/learning_curve.png."""
    workdir = Path(workdir)
    files.write_json(workdir / "few_shot.json", result, indent=1)
    write_csv(result, workdir / "few_shot.csv")
    write_markdown(result, workdir / "few_shot.md")
    plot_learning_curve(result, workdir / "learning_curve.png")
