"""Tables and plots of proxy rankings: the paper's Tables 2/3 (with the published figures beside
ours) as CSV and Markdown, its Figure 4 (proxy vs ground truth scatter plots) as a PNG, and the
search curves (its Figure 5: best-so-far rho of evolution, evolution without RPS, random search).

The published figures live in `lpzero_jax/data/published.json`, keyed by benchmark family and
proxy name; every number names the table it comes from.
"""

from __future__ import annotations

import csv
import json
import math
from importlib import resources
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from lpzero_jax import files

TABLE_COLUMNS = ("proxy", "kendall_tau", "spearman_rho", "n", "n_nonfinite", "seconds_per_arch",
                 "paper_tau", "paper_rho", "paper_source", "other_published", "note")


def _pyplot():
    """matplotlib.pyplot on the file-only Agg backend (imported on first plot)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _finish(plt, fig, ax, path: Path) -> None:
    """Grid, legend, tight layout; the PNG written atomically; the figure closed."""
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with files.atomic_write(path, binary=True) as f:
        fig.savefig(f, dpi=120, format="png")
    plt.close(fig)


def load_published(family: str) -> Dict[str, List[dict]]:
    """{proxy: [{'tau', 'rho', 'source'}, ...]} published for a family's benchmark ({} if none)."""
    text = resources.files("lpzero_jax").joinpath("data/published.json").read_text()
    return json.loads(text).get(family, {})


def published_for(family: str, own_benchmark: bool) -> Dict[str, List[dict]]:
    """The published figures that belong beside a rank run's table: none for a user's own
    benchmark file (LPZero's tables measured other architectures), else `load_published(family)`."""
    return {} if own_benchmark else load_published(family)


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def plus_minus(mean: float, sd: float) -> str:
    """"0.861 ± 0.049" (3 decimals), the mean alone where sd is not finite, "-" where mean is not."""
    return "-" if not np.isfinite(mean) else f"{mean:.3f} ± {sd:.3f}" if np.isfinite(sd) else f"{mean:.3f}"


def table_rows(ranking: Mapping[str, dict], published: Mapping[str, List[dict]]) -> List[dict]:
    """One row per proxy: our tau/rho/n/seconds, the primary published tau/rho and the others.

    Rows are sorted by our Spearman rho, highest first (proxies without a finite rho last).
    """
    rows = []
    for name, r in ranking.items():
        pubs = list(published.get(name, []))
        first = pubs[0] if pubs else {}
        others = "; ".join(f"{p['tau']:.3f}/{p['rho']:.3f} ({p['source']})" for p in pubs[1:])
        rows.append({
            "proxy": name,
            "kendall_tau": r.get("kendall_tau"),
            "spearman_rho": r.get("spearman_rho"),
            "n": r.get("n"),
            "n_nonfinite": r.get("n_nonfinite"),
            "seconds_per_arch": r.get("seconds_per_arch"),
            "paper_tau": first.get("tau"),
            "paper_rho": first.get("rho"),
            "paper_source": first.get("source", ""),
            "other_published": others,
            "note": r.get("note", ""),
        })

    def key(row):
        rho = row["spearman_rho"]
        return (0, -rho) if rho is not None and np.isfinite(rho) else (1, 0.0)

    return sorted(rows, key=key)


def write_table_csv(rows: Sequence[dict], path: Path) -> None:
    with files.atomic_write(path) as f:
        w = csv.DictWriter(f, fieldnames=list(TABLE_COLUMNS))
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in TABLE_COLUMNS})


def write_table_markdown(rows: Sequence[dict], path: Path, title: str = "") -> None:
    """A Markdown table: proxy, tau, rho, s/arch, paper tau/rho and source; notes below it."""
    lines = [f"## {title}", ""] if title else []
    lines += ["| proxy | tau | rho | n | s/arch | paper tau | paper rho | paper source |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        n = "" if r["n"] is None else str(r["n"])
        if r.get("n_nonfinite"):
            n += f" ({r['n_nonfinite']} NaN)"
        lines.append(f"| {r['proxy']} | {_fmt(r['kendall_tau'])} | {_fmt(r['spearman_rho'])} | {n} "
                     f"| {_fmt(r['seconds_per_arch'], 2)} | {_fmt(r['paper_tau'])} "
                     f"| {_fmt(r['paper_rho'])} | {r['paper_source']} |")
    extra = [r for r in rows if r["other_published"] or r["note"]]
    if extra:
        lines += ["", "Notes and other published figures (tau/rho):", ""]
        for r in extra:
            parts = [p for p in (r["note"], r["other_published"]) if p]
            lines.append(f"- {r['proxy']}: " + "; ".join(parts))
    files.write_text(path, "\n".join(lines) + "\n")


def write_scatter_grid(columns: Mapping[str, np.ndarray], truth: np.ndarray,
                       ranking: Mapping[str, dict], path: Path, truth_label: str = "ground truth",
                       ncols: int = 4) -> None:
    """Figure 4 style grid: ground truth against every proxy's score, tau/rho in each title.

    A proxy whose finite scores are all positive and span more than three orders of magnitude is
    drawn on a log axis. Non-finite scores are left out (their count is in the title).
    """
    plt = _pyplot()
    names = list(columns)
    nrows = max(1, math.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.7 * nrows), squeeze=False)
    truth = np.asarray(truth, np.float64)
    for ax, name in zip(axes.ravel(), names):
        x = np.asarray(columns[name], np.float64)
        keep = np.isfinite(x) & np.isfinite(truth)
        ax.scatter(x[keep], truth[keep], s=5, alpha=0.6)
        if keep.any() and np.all(x[keep] > 0) and x[keep].max() > 1e3 * x[keep].min():
            ax.set_xscale("log")
        r = ranking.get(name, {})
        title = f"{name}\ntau {_fmt(r.get('kendall_tau'))}  rho {_fmt(r.get('spearman_rho'))}"
        if (~keep).sum():
            title += f"  ({int((~keep).sum())} NaN)"
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_ylabel(truth_label, fontsize=7)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    with files.atomic_write(path, binary=True) as f:
        fig.savefig(f, dpi=110, format="png")
    plt.close(fig)


def write_report(workdir: Path, family: str, ranking: Mapping[str, dict],
                 columns: Mapping[str, np.ndarray], truth: np.ndarray,
                 title: Optional[str] = None,
                 published: Optional[Mapping[str, List[dict]]] = None) -> Dict[str, Path]:
    """table.csv, table.md and scatter.png in `workdir`; returns their paths. published: the
    figures printed beside ours (default: the family's, `load_published`)."""
    workdir = Path(workdir)
    rows = table_rows(ranking, load_published(family) if published is None else published)
    paths = {"csv": workdir / "table.csv", "md": workdir / "table.md",
             "png": workdir / "scatter.png"}
    write_table_csv(rows, paths["csv"])
    write_table_markdown(rows, paths["md"], title or f"{family}: {len(truth)} architectures")
    write_scatter_grid(columns, truth, ranking, paths["png"])
    return paths


def plot_search_curves(runs: Dict[str, List[dict]], path: Path) -> None:
    """Best-so-far Spearman rho against candidates evaluated, one line per search run."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, hist in runs.items():
        xs = [h["evaluated"] for h in hist]
        ys = [h["best_fitness"] for h in hist]
        ax.plot(xs, ys, label=name.replace("_", " "))
    ax.set_xlabel("candidates evaluated")
    ax.set_ylabel("best Spearman rho (sample)")
    _finish(plt, fig, ax, path)


def plot_training_loss(curves: Dict[str, List[tuple]], path: Path, title: str = "") -> None:
    """Training loss against step, one line per named curve of (step, loss) pairs (e.g. one per
    subnet kind of the super-adapter's sandwich schedule)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, pairs in curves.items():
        if pairs:
            steps, losses = zip(*pairs)
            ax.plot(steps, losses, label=f"{name} subnet", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (nats/token)")
    ax.set_title(title, fontsize=9)
    _finish(plt, fig, ax, path)
