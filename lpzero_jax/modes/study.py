"""`study` mode: the proxy search over k seeds, with a paired test (lpzero_jax/study/seeds.py).

    python -m lpzero_jax.main --config=experiments/gpt2.py --config.mode=study \
        --config.study.num_seeds=5 --config.workdir=runs/gpt2_study

Writes DIR/seeds/<aggregate>_seed<s>.json as each seed finishes (a killed study keeps them; a
rerun skips them, and refuses one written with other settings or another pool; a seed's searches
checkpoint in DIR/seeds/<aggregate>_seed<s>/ as the `search` mode's do), then
DIR/study.json (the pool, every seed's record, mean/sd per proxy, Wilcoxon evolution vs random),
DIR/study.csv (one row per aggregation, seed and proxy), DIR/study.md and DIR/study.png (box plot
of held-out rho per proxy). The proxy inputs are those of config.seed, extracted once; the seeds
vary the sample S and the searches. `study.proxies` adds zoo proxies (e.g. wpca,zerolm) to the
references: computed once per architecture at config.seed into DIR/zoo/ (resumable; the seed
records do not depend on them, so adding one reuses every finished seed).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import List

import numpy as np
from absl import logging

from lpzero_jax import files, report
from lpzero_jax.errors import ConfigError
from lpzero_jax.modes.base import register_mode
from lpzero_jax.results import load_json
from lpzero_jax.search.settings import check_drawn_sample, validate_search
from lpzero_jax.study import seeds as seeds_study
from lpzero_jax.study import sensitivity
from lpzero_jax.study.pool import load_pool


def study_seeds(config) -> List[int]:
    """The seeds of the study: study.seeds, else study.num_seeds from config.seed on."""
    st = config.study
    if str(st.seeds).strip():
        try:
            out = [int(x) for x in str(st.seeds).split(",") if x.strip()]
        except ValueError:
            raise ConfigError(f"study.seeds {st.seeds!r}: expected a comma list of integers") from None
    else:
        if int(st.num_seeds) < 1:
            raise ConfigError(f"study.num_seeds must be >= 1, got {st.num_seeds}")
        out = [int(config.seed) + i for i in range(int(st.num_seeds))]
    if len(set(out)) != len(out) or any(s < 0 for s in out):
        raise ConfigError(f"study.seeds {out}: seeds must be distinct and >= 0")
    return out


def study_aggregates(config) -> List[str]:
    """The aggregations studied: study.aggregates, else search.aggregate."""
    names = [x.strip() for x in str(config.study.aggregates).split(",") if x.strip()]
    names = names or [config.search.aggregate]
    bad = [n for n in names if n not in ("sum", "mean")]
    if bad:
        raise ConfigError(f"study.aggregates: unknown {', '.join(map(repr, bad))}; use sum, mean")
    return names


def _seed_record(pool, config, seed: int, aggregate: str, path: Path) -> dict:
    """A seed's record: read from `path` if it was written with these settings, else computed
    and written there."""
    settings = seeds_study.seed_settings(config, pool, aggregate)
    saved = load_json(path)
    if saved is not None:
        if saved.get("settings") != settings:
            old = saved.get("settings") or {}
            differ = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            raise ConfigError(f"{path} was written with other settings ({', '.join(differ)} "
                              "differ); use another workdir or delete it")
        logging.info("seed %d (%s): done before, read from %s", seed, aggregate, path)
        return saved["record"]
    record = seeds_study.search_seed(pool, config, seed, aggregate, path.with_suffix(""))
    files.write_json(path, {"settings": settings, "record": record})
    s = record["searches"]
    logging.info("seed %d (%s): held-out rho %s (%.0fs)", seed, aggregate,
                 ", ".join(f"{k} {v['held_out']['spearman_rho']:.4f}" for k, v in s.items()
                           if v.get("held_out")), record["seconds"])
    return record


def write_csv(results: dict, path: Path) -> None:
    """One row per aggregation, seed and proxy: held-out rho/tau and, for searches, the genome."""
    with files.atomic_write(path) as f:
        w = csv.writer(f)
        w.writerow(["aggregate", "seed", "proxy", "kind", "held_out_rho", "held_out_tau", "n",
                    "fitness_on_sample", "genome"])
        for aggregate, block in results.items():
            for r in block["seeds"]:
                for kind in ("searches", "references"):
                    for name, e in r[kind].items():
                        held = e.get("held_out") or {}
                        w.writerow([aggregate, r["seed"], name, kind[:-1] if kind == "searches"
                                    else "reference", held.get("spearman_rho"),
                                    held.get("kendall_tau"), held.get("n"),
                                    e.get("fitness_on_sample", ""), e.get("genome", "")])


def write_markdown(results: dict, family: str, path: Path) -> None:
    """Per aggregation: mean ± sd of held-out rho and tau per proxy, then the paired tests."""
    lines = []
    for aggregate, block in results.items():
        n = len(block["seeds"])
        lines += [f"### {family}, aggregate `{aggregate}`, {n} seeds "
                  f"({', '.join(str(r['seed']) for r in block['seeds'])})", "",
                  "| proxy | held-out rho (mean ± sd) | held-out tau (mean ± sd) |", "|---|---|---|"]
        for name, row in block["summary"]["proxies"].items():
            lines.append(f"| {name} | {report.plus_minus(row['rho_mean'], row['rho_sd'])} | "
                         f"{report.plus_minus(row['tau_mean'], row['tau_sd'])} |")
        for name, t in block["summary"]["tests"].items():
            lines.append("")
            lines.append(f"- {name.replace('_', ' ')}: Wilcoxon signed-rank over {t['n']} seeds, "
                         f"mean difference {t['mean_difference']:+.4f} ({t['wins']} wins, "
                         f"{t['losses']} losses, {t['ties']} ties), p = {t['p_two_sided']:.4g} "
                         f"two-sided, {t['p_greater']:.4g} one-sided (evolution > random)")
        lines.append("")
    files.write_text(path, "\n".join(lines))


def plot_box(results: dict, family: str, path: Path) -> None:
    """Box plot of held-out rho per proxy over the seeds, one panel per aggregation."""
    plt = report._pyplot()
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), squeeze=False)
    for ax, (aggregate, block) in zip(axes[0], results.items()):
        rows = block["summary"]["proxies"]
        names = list(rows)
        data = [[v for v in rows[n]["rho_values"] if np.isfinite(v)] for n in names]
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(range(1, len(names) + 1), [n.replace("_", "\n", 1) for n in names])
        ax.set_title(f"{family}, aggregate {aggregate}, {len(block['seeds'])} seeds")
        ax.set_ylabel("held-out Spearman rho")
        ax.grid(alpha=0.3, axis="y")
        ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    with files.atomic_write(path, binary=True) as f:
        fig.savefig(f, dpi=120, format="png")
    plt.close(fig)


def run(config, workdir: Path) -> dict:
    workdir = Path(workdir)
    seeds, aggregates = study_seeds(config), study_aggregates(config)
    zoo_proxies = sensitivity.zoo_proxies(config)  # an unknown name is refused before any work
    pool = load_pool(config, workdir, str(config.study.pool),
                     min_size=int(config.search.sample_archs) + 3)
    logging.info("study: %s, %d architectures, seeds %s, aggregates %s", config.family, pool.size,
                 seeds, aggregates)
    zoo = seeds_study.pool_zoo_values(config, pool, zoo_proxies, workdir) if zoo_proxies else {}
    results = {}
    for aggregate in aggregates:
        records = [seeds_study.add_zoo_references(
            _seed_record(pool, config, seed, aggregate,
                         workdir / "seeds" / f"{aggregate}_seed{seed}.json"), pool, zoo)
            for seed in seeds]
        results[aggregate] = {"seeds": records, "summary": seeds_study.summarize(records)}
    out = {"family": config.family, "seeds": seeds, "aggregates": aggregates,
           "inputs_seed": int(config.seed), "sample_archs": int(config.search.sample_archs),
           "pool": {"spec": str(config.study.pool), "size": pool.size, "digest": pool.digest(),
                    "inputs_fingerprint": pool.fingerprint, "arch_ids": pool.arch_ids},
           "zoo": {name: {"seconds_per_arch": e["seconds"], "failures": e["failures"]}
                   for name, e in zoo.items()},
           "results": results}
    files.write_json(workdir / "study.json", out, indent=1)
    write_csv(results, workdir / "study.csv")
    write_markdown(results, config.family, workdir / "study.md")
    plot_box(results, config.family, workdir / "study.png")
    for aggregate, block in results.items():
        for name, t in block["summary"]["tests"].items():
            logging.info("%s (%s): p = %.4g two-sided", name, aggregate, t["p_two_sided"])
    return out


def validate(config) -> None:
    """The study settings: seeds, aggregations, zoo proxy names, and the search settings."""
    validate_search(config)
    study_seeds(config)
    study_aggregates(config)
    sensitivity.zoo_proxies(config)


register_mode("study", validate=validate, check_archs=check_drawn_sample)(run)
