"""Tables and plots written by lpzero_jax.report, and rank mode's output step."""

import csv

import numpy as np
from ml_collections import ConfigDict


def _ranking():
    return {"params": dict(kendall_tau=0.45, spearman_rho=0.6, n=10, n_nonfinite=0, seconds_per_arch=0.1),
            "attention_confidence": dict(kendall_tau=0.5, spearman_rho=0.7, n=9, n_nonfinite=1,
                                         seconds_per_arch=2.0),
            "mystery": dict(kendall_tau=float("nan"), spearman_rho=float("nan"), n=0,
                            n_nonfinite=10, seconds_per_arch=1.0, note="all NaN")}


def test_published_numbers_load():
    from lpzero_jax.report import load_published

    flex = load_published("flexibert")
    assert flex["attention_confidence"][0] == dict(tau=0.475, rho=0.666, source="LPZero Table 2")
    assert any(p["rho"] == 0.716 for p in flex["attention_confidence"])
    assert flex["wpca"][0]["rho"] == 0.689 and flex["zerolm_sampled_alpha"][0]["rho"] == 0.76
    assert load_published("gpt2")["head_importance"][0]["tau"] == 0.861
    assert load_published("no_such_family") == {}


def test_table_writers(tmp_path):
    from lpzero_jax import report

    rows = report.table_rows(_ranking(), report.load_published("flexibert"))
    assert [r["proxy"] for r in rows] == ["attention_confidence", "params", "mystery"]
    report.write_table_csv(rows, tmp_path / "t.csv")
    with open(tmp_path / "t.csv") as f:
        got = list(csv.DictReader(f))
    assert [r["proxy"] for r in got] == ["attention_confidence", "params", "mystery"]
    assert got[1]["paper_tau"] == "0.454" and got[1]["paper_source"] == "LPZero Table 2"
    assert "0.478/0.716" in got[0]["other_published"]
    report.write_table_markdown(rows, tmp_path / "t.md", "FlexiBERT")
    md = (tmp_path / "t.md").read_text().splitlines()
    assert md[0] == "## FlexiBERT"
    body = [l for l in md if l.startswith("| ") and not l.startswith("| proxy")]
    assert len(body) == 3 and body[0].startswith("| attention_confidence | 0.500 | 0.700 | 9 (1 NaN)")
    assert any(l.startswith("- mystery: all NaN") for l in md)


def test_scatter_grid(tmp_path):
    from lpzero_jax import report

    rng = np.random.default_rng(0)
    cols = {"a": rng.standard_normal(20), "b": np.exp(10 * rng.random(20))}
    cols["a"][3] = np.nan
    report.write_scatter_grid(cols, rng.standard_normal(20), _ranking(), tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rank_outputs_include_tables_and_derived_rows(tmp_path):
    from lpzero_jax.benchmarks.base import Arch
    from lpzero_jax.modes.rank import write_outputs

    rng = np.random.default_rng(0)
    archs = [Arch(str(i), {}, float(s), {}) for i, s in enumerate(rng.standard_normal(30))]
    names = ["params", "zerolm_attention", "zerolm_ffn"]
    done = {(a.arch_id, n): (float(rng.standard_normal()), 0.5) for a in archs for n in names}
    config = ConfigDict(dict(family="flexibert", seed=0, zerolm=dict(sample_size=10)))
    ranking = write_outputs(archs, names, done, tmp_path, config).ranking
    assert {"zerolm_sampled_alpha", "zerolm_heuristic_alpha"} <= set(ranking)
    for f in ("scores.csv", "ranking.json", "table.csv", "table.md", "scatter.png"):
        assert (tmp_path / f).stat().st_size > 0
    with open(tmp_path / "table.csv") as f:
        assert len(list(csv.DictReader(f))) == 5
