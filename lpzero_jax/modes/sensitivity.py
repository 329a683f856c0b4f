"""`sensitivity` mode: how much a proxy's ranking moves with the initialisation and the mini-batch.

The genomes' (and the study.proxies zoo proxies') rho over the pool at each init seed and batch
seed, one factor at a time (lpzero_jax/study/sensitivity.py): DIR/sensitivity.{json,md}, the zoo's
values in DIR/zoo/.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np
from absl import logging

from lpzero_jax import files
from lpzero_jax.checks import load_archs
from lpzero_jax.errors import ConfigError
from lpzero_jax.expression.genome import parse_genome
from lpzero_jax.expression.published import PUBLISHED
from lpzero_jax.families import get_family
from lpzero_jax.input_store import InputStore
from lpzero_jax.modes.base import register_mode
from lpzero_jax.report import plus_minus
from lpzero_jax.study import benchmarks as bm
from lpzero_jax.study import sensitivity
from lpzero_jax.study.pool import choose_archs
from lpzero_jax.study.sensitivity import FACTOR_NAMES
from lpzero_jax.study.transfer import genome_correlations


def sensitivity_proxies(config) -> dict:
    """name -> genome: study.genomes, the family's searched genome (if study.search_dirs names
    its run) and, with study.published, the paper's Appendix B genome of the family."""
    out = {}
    for text in (g.strip() for g in str(config.study.genomes).split(";") if g.strip()):
        try:
            parse_genome(text)
        except ValueError as e:
            raise ConfigError(f"study.genomes: {text!r} is not a genome ({e})") from None
        out[text] = text
    if f"{config.family}=" in str(config.study.search_dirs):
        out[f"searched on {config.family}"] = bm.searched_genome(config, config.family)
    if bool(config.study.get("published", True)) and f"lpzero_{config.family}" in PUBLISHED:
        out[f"lpzero_{config.family}"] = PUBLISHED[f"lpzero_{config.family}"]
    return out


def _sensitivity_table(summary: dict, names, reads=None) -> List[str]:
    """Markdown rows of `names`: rho / tau mean ± sd per factor; a factor a proxy does not read
    (`reads`: name -> factors) is marked as constant by construction."""
    lines = []
    for name in names:
        by = summary[name]
        cells = []
        for f in FACTOR_NAMES:
            for m in ("rho", "tau"):
                cell = f"{plus_minus(by[f][f'{m}_mean'], by[f][f'{m}_sd'])} (n={by[f]['n_settings']})"
                cells.append(cell if by[f].get("read", True) else
                             f"{by[f][f'{m}_mean']:.3f} ± 0 (reads no {f}: constant)")
        label = name if reads is None else f"{name} (reads: {', '.join(sorted(reads[name])) or 'shapes only'})"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def run_sensitivity(config, workdir: Path) -> dict:
    """`sensitivity` mode: the genomes' (and the study.proxies zoo proxies') rho over the pool at
    each init seed and batch seed (one factor at a time, see lpzero_jax/study/sensitivity.py):
    DIR/sensitivity.{json,md}, the zoo's values in DIR/zoo/."""
    workdir = Path(workdir)
    family = get_family(config.family)
    zoo = sensitivity.zoo_proxies(config)
    proxies = sensitivity_proxies(config)
    if not proxies and not zoo:
        raise ConfigError("sensitivity: nothing to score; set --config.study.genomes (genomes) or "
                          "--config.study.proxies (zoo proxy names)")
    setting_list = sensitivity.settings(config)
    archs = choose_archs(load_archs(family, config), InputStore(config, workdir),
                         str(config.study.pool))
    truth = np.asarray([a.score for a in archs], np.float64)
    rows = []
    for setting in setting_list:
        genomes = {}
        if proxies:
            inputs = sensitivity.setting_inputs(config, family, archs, setting["init_seed"],
                                                setting["batch_seed"], workdir)
            genomes = {name: genome_correlations(inputs, truth, genome, config.search.aggregate)
                       for name, genome in proxies.items()}
            logging.info("init seed %d, batch seed %d: %s", setting["init_seed"],
                         setting["batch_seed"],
                         ", ".join(f"{n} {v['spearman_rho']:.4f}" for n, v in genomes.items()))
        rows.append(dict(setting, proxies=genomes))
    reads = {name: proxy.factors_for(family) for name, proxy in zoo.items()}
    if zoo:
        for row, zoo_row in zip(rows, sensitivity.zoo_rows(config, family, archs, zoo,
                                                            setting_list, workdir)):
            row["proxies"].update(zoo_row)
            logging.info("init seed %d, batch seed %d, zoo: %s", row["init_seed"],
                         row["batch_seed"],
                         ", ".join(f"{n} {v['spearman_rho']:.4f}" for n, v in zoo_row.items()))
    summary = sensitivity.summarize(rows, list(proxies) + list(zoo), reads)
    out = {"family": config.family, "pool": {"spec": str(config.study.pool), "size": len(archs),
                                             "arch_ids": [str(a.arch_id) for a in archs]},
           "proxies": proxies, "zoo_proxies": {n: sorted(r) for n, r in reads.items()},
           "settings": rows, "summary": summary}
    files.write_json(workdir / "sensitivity.json", out, indent=1)
    head = ["", "| proxy | init seeds: rho | init seeds: tau | batch seeds: rho | batch seeds: tau |",
            "|---|---|---|---|---|"]
    lines = [f"{config.family}, {len(archs)} architectures; rho / tau mean ± sd over the settings"]
    if proxies:
        lines += ["", "Genomes:"] + head + _sensitivity_table(summary, proxies)
    if zoo:
        lines += ["", "Hand-crafted proxies (the zoo; a proxy is computed only at the seeds of the "
                  "factors it reads, so over another factor its sd is 0 by construction):"]
        lines += head + _sensitivity_table(summary, zoo, reads)
        seconds = {n: {tuple(r["proxies"][n]["computed_at"]): r["proxies"][n]["seconds_per_arch"]
                       for r in rows} for n in zoo}
        lines += ["", "s/arch (mean over the seeds each proxy was computed at): " + ", ".join(
            f"{n} {np.nanmean(list(by.values())):.2f} ({len(by)} computed)"
            for n, by in seconds.items())]
    files.write_text(workdir / "sensitivity.md", "\n".join(lines) + "\n")
    return out


def validate(config) -> None:
    """The sensitivity settings: the aggregation, the seed lists and the zoo proxy names."""
    if config.search.aggregate not in ("sum", "mean"):
        raise ConfigError(f"search.aggregate must be 'sum' or 'mean', got {config.search.aggregate!r}")
    sensitivity.settings(config)
    sensitivity.zoo_proxies(config)


register_mode("sensitivity", validate=validate)(run_sensitivity)
