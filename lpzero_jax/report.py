"""Tables and plots written to the workdir."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_search_curves(runs: Dict[str, List[dict]], path: Path) -> None:
    """Best-so-far Spearman rho against candidates evaluated, one line per search run."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, hist in runs.items():
        xs = [h["evaluated"] for h in hist]
        ys = [h["best_fitness"] for h in hist]
        ax.plot(xs, ys, label=name.replace("_", " "))
    ax.set_xlabel("candidates evaluated")
    ax.set_ylabel("best Spearman rho (sample)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
