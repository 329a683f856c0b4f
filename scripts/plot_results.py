"""Draw the documentation's result figures from the committed CSVs of docs/results/data/.

The CSVs hold the figures of the results pages' tables (docs/results/study.md, transfer.md), so a
picture never shows a number the tables do not; tests/test_docs.py checks the CSVs against the tables.

    python scripts/plot_results.py            # writes docs/images/heldout_rho.png, transfer_rho.png
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "docs" / "results" / "data"
IMAGES = ROOT / "docs" / "images"

# (CSV method, legend label, colour) in the order the bars are drawn
METHODS = (
    ("evolution", "evolution (Algorithm 1, RPS)", "#1f77b4"),
    ("random_search", "random search, same budget", "#ff7f0e"),
    ("evolution_no_rps", "evolution without RPS", "#9ecae1"),
    ("best_hand_crafted", "best hand-crafted proxy (named)", "#2ca02c"),
    ("params", "#Params", "#7f7f7f"),
    ("paper_genome", "paper's genome lpzero_<family>", "#d62728"),
)


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts of strings."""
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def plot_heldout_rho(rows: list[dict[str, str]], out: Path) -> None:
    """Grouped bars: held-out Spearman rho (mean +- sd over 5 seeds) of each method per benchmark.

    Only the whole-benchmark studies (pool "all") are drawn; the pool rows stay in the table.
    """
    rows = [r for r in rows if r["pool"] == "all"]
    labels = list(dict.fromkeys(r["label"] for r in rows))
    by_key = {(r["label"], r["method"]): r for r in rows}
    x = np.arange(len(labels))
    width = 0.8 / len(METHODS)
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=100)
    for i, (method, legend, colour) in enumerate(METHODS):
        cells = [by_key[(label, method)] for label in labels]
        mean = [float(c["rho_mean"]) for c in cells]
        sd = [float(c["rho_sd"]) for c in cells]
        pos = x - 0.4 + (i + 0.5) * width
        ax.bar(pos, mean, width, yerr=sd, capsize=2, color=colour, label=legend)
        if method == "best_hand_crafted":
            for p, m, c in zip(pos, mean, cells):
                ax.text(p, 0.02 if m >= 0 else -0.02, c["proxy"], rotation=90, fontsize=7,
                        ha="center", va="bottom" if m >= 0 else "top", color="white")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x, [label.replace(" (", "\n(") for label in labels], fontsize=8)
    ax.set_ylim(-1, 1)
    ax.set_ylabel("held-out Spearman rho (mean ± sd, 5 seeds)")
    ax.set_title("Proxy search vs baselines, held-out architectures", fontsize=10)
    ax.legend(fontsize=7, ncol=3, loc="lower left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def plot_transfer(rows: list[dict[str, str]], out: Path) -> None:
    """Heatmap: Spearman rho of each fixed proxy (rows) on each benchmark's held-out set (columns)."""
    proxies = list(dict.fromkeys(r["proxy"] for r in rows))
    benchmarks = list(dict.fromkeys(r["benchmark"] for r in rows))
    rho = {(r["proxy"], r["benchmark"]): float(r["rho"]) for r in rows}
    grid = np.array([[rho[(p, b)] for b in benchmarks] for p in proxies])
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=100)
    image = ax.imshow(grid, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    for i in range(len(proxies)):
        for j in range(len(benchmarks)):
            ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(benchmarks)), benchmarks)
    ax.set_yticks(range(len(proxies)), proxies, fontsize=8)
    ax.set_xlabel("scored on (held-out architectures)")
    ax.set_title("Transfer: Spearman rho", fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    """Read the CSVs, write both PNGs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder for the PNGs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    plot_heldout_rho(read_csv(DATA / "study_5seeds.csv"), args.out / "heldout_rho.png")
    plot_transfer(read_csv(DATA / "transfer.csv"), args.out / "transfer_rho.png")


if __name__ == "__main__":
    main()
