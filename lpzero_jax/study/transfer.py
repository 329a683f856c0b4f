"""Transfer: proxies found on one benchmark scored on every benchmark (rho/tau over its pool).

Rows are proxies (the best genome searched on each benchmark, the paper's Appendix B genomes, #Params),
columns the benchmarks they are scored on, over the architectures chosen per benchmark. A genome is
scored from the target's cached inputs with the target's aggregation.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Sequence

import numpy as np

from lpzero_jax import evaluation, files, report
from lpzero_jax.expression.genome import parse_genome
from lpzero_jax.inputs import CompactInputs, stack_inputs
from lpzero_jax.search.driver import score_archs
from lpzero_jax.search.fitness import FitnessEvaluator
from lpzero_jax.study.pool import Pool


def genome_correlations(inputs: Sequence[CompactInputs], truth: np.ndarray, genome: str,
                        aggregate: str) -> Dict[str, float]:
    """rho/tau of a genome's scores over the architectures' inputs against their ground truth."""

    evaluator = FitnessEvaluator(stack_inputs(inputs[:2]), truth[:2], backend="compiled",
                                 aggregate=aggregate)
    return score_archs(evaluator, parse_genome(genome), list(inputs), truth)


def transfer_table(pools: Mapping[str, Pool], aggregates: Mapping[str, str],
                   proxies: Mapping[str, str], chosen: Mapping[str, np.ndarray]) -> List[dict]:
    """One row per proxy: {proxy, genome, <benchmark>: {spearman_rho, kendall_tau, n, ...}} over
    the pool indices `chosen[benchmark]`. `proxies`: row name -> genome text, or "" for #Params."""
    rows = []
    for name, genome in proxies.items():
        row = {"proxy": name, "genome": genome}
        for target, pool in pools.items():
            idx = chosen[target]
            if genome:
                row[target] = genome_correlations([pool.inputs[i] for i in idx], pool.truth[idx],
                                                  genome, aggregates[target])
            else:
                row[target] = evaluation.rank_correlations(pool.references["params"][idx],
                                                           pool.truth[idx])
        rows.append(row)
    return rows


def write_transfer(rows: List[dict], targets: List[str], sizes: Mapping[str, int], workdir) -> None:
    """transfer.json, transfer.csv, transfer.md and transfer.png (heatmap of rho) in workdir."""
    files.write_json(workdir / "transfer.json", {"benchmarks": targets, "pool_sizes": dict(sizes),
                                                 "rows": rows}, indent=1)
    header = ["proxy", "genome"] + [f"{t}_{m}" for t in targets for m in ("rho", "tau")]
    lines = [",".join(header)]
    for r in rows:
        cells = [r["proxy"], f'"{r["genome"]}"']
        for t in targets:
            cells += [f"{r[t]['spearman_rho']:.6f}", f"{r[t]['kendall_tau']:.6f}"]
        lines.append(",".join(cells))
    files.write_text(workdir / "transfer.csv", "\n".join(lines) + "\n")
    md = ["| proxy (genome) | " + " | ".join(f"{t} rho / tau (n={sizes[t]})" for t in targets) + " |",
          "|---|" + "---|" * len(targets)]
    for r in rows:
        label = f"{r['proxy']} (`{r['genome']}`)" if r["genome"] else r["proxy"]
        md.append(f"| {label} | " + " | ".join(
            f"{r[t]['spearman_rho']:.3f} / {r[t]['kendall_tau']:.3f}" for t in targets) + " |")
    files.write_text(workdir / "transfer.md", "\n".join(md) + "\n")
    plot_heatmap(rows, targets, workdir / "transfer.png")


def plot_heatmap(rows: List[dict], targets: List[str], path) -> None:
    """Proxies x benchmarks, colour = Spearman rho, value printed in each cell."""
    plt = report._pyplot()
    values = np.asarray([[r[t]["spearman_rho"] for t in targets] for r in rows], np.float64)
    fig, ax = plt.subplots(figsize=(1.8 * len(targets) + 3, 0.5 * len(rows) + 1.5))
    image = ax.imshow(values, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(targets)), targets)
    ax.set_yticks(range(len(rows)), [r["proxy"] for r in rows])
    for i in range(len(rows)):
        for j in range(len(targets)):
            ax.text(j, i, "nan" if not np.isfinite(values[i, j]) else f"{values[i, j]:.2f}",
                    ha="center", va="center", fontsize=8)
    ax.set_xlabel("scored on (Spearman rho)")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    with files.atomic_write(path, binary=True) as f:
        fig.savefig(f, dpi=120, format="png")
    plt.close(fig)
