"""The few-shot protocol: no held-out label reaches a choice, a fit or a hyperparameter; outputs."""

import csv

import numpy as np
import pytest

from lpzero_jax.study import few_shot as fs


def table(n=90, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal(n)
    values = np.stack([latent + 0.5 * rng.standard_normal(n), -latent + 0.9 * rng.standard_normal(n),
                       rng.standard_normal(n), np.abs(latent) + rng.random(n)], axis=1)
    descriptors = np.stack([np.round(latent * 2), rng.integers(2, 8, n)], axis=1).astype(float)
    return fs.FeatureTable("synthetic", [str(i) for i in range(n)], latent,
                           ["a", "b", "noise", "params"], values, {"a": 1.0, "b": 3.0, "width": 0.0, "depth": 0.0},
                           ["a", "noise", "params"], ["width", "depth"], descriptors)


def fake_searches(tab):
    """Genome 'searches' whose values depend on the sample's labels only (as the real ones do)."""
    def provider(seed, size, sample):
        w = float(np.mean(tab.truth[sample]))
        return {"evolution": {"values": tab.values[:, 0] + w, "genomes": ["g1"], "fitness_on_sample": 0.5},
                "random": {"values": tab.values[:, 2], "genomes": ["g2"], "fitness_on_sample": 0.1}}
    return provider


def choices_and_predictions(tab, seed, size, searches):
    sample = fs.evaluation.sample_split(len(tab.arch_ids), size, seed)[0]
    out = fs.run_seed(tab, seed, size, searches(seed, size, sample))
    return out, {m: (e["choice"], e["scores"]) for m, e in out.items() if m != fs.ORACLE}


@pytest.mark.parametrize("size", [20, pytest.param(40, marks=pytest.mark.slow)])
def test_no_held_out_label_reaches_any_choice_fit_or_prediction(size):
    tab = table()
    out, before = choices_and_predictions(tab, 3, size, fake_searches(tab))
    sample, held = fs.evaluation.sample_split(len(tab.arch_ids), size, 3)
    corrupted = fs.dataclasses.replace(tab, truth=tab.truth.copy())
    corrupted.truth[held] = np.random.default_rng(1).permutation(tab.truth[held])[::-1] * 7 - 3
    out2, after = choices_and_predictions(corrupted, 3, size, fake_searches(corrupted))
    assert set(before) == set(after) == set(fs.METHODS) - {fs.ORACLE}
    for method in before:
        assert before[method][0] == after[method][0], method  # every choice identical
        assert np.array_equal(before[method][1], after[method][1]), method  # every prediction
        assert out[method]["held_out"] != out2[method]["held_out"]  # only the report changes
    # the oracle line reads every label, so it is the one allowed to move
    assert out[fs.ORACLE]["choice"]["oracle"] is True


def test_the_protocol_summarises_seeds_with_paired_tests_and_writes_its_outputs(tmp_path):
    tab = table()
    result = fs.run_protocol(tab, seeds=range(42, 52), sizes=[20, 40],
                             methods=("best_zoo_on_S", "params", "ridge", fs.ORACLE),
                             searches=fake_searches(tab))
    block = result["summary"]["20"]
    assert set(block) == {"best_zoo_on_S", "params", "ridge", fs.ORACLE, "evolution", "random"}
    ridge = block["ridge"]
    assert ridge["n_seeds"] == 10 and len(ridge["rho_values"]) == 10
    assert ridge["rho_mean"] == pytest.approx(np.mean(ridge["rho_values"]))
    assert ridge["rho_sd"] == pytest.approx(np.std(ridge["rho_values"], ddof=1))
    assert set(ridge["tests"]) == {"vs_random", "vs_best_zoo_on_S"}
    assert ridge["tests"]["vs_random"]["n"] == 10 and ridge["tests"]["vs_random"]["p_two_sided"] < 0.01
    assert "vs_best_zoo_on_S" not in block["best_zoo_on_S"]["tests"]
    fs.write_outputs(result, tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "few_shot.csv")))
    assert len(rows) == 2 * 10 * 6
    text = (tmp_path / "few_shot.md").read_text()
    assert "oracle_zoo (ORACLE: chosen on all archs)" in text and "### S = 40" in text
    assert (tmp_path / "learning_curve.png").stat().st_size < 200_000


def test_feature_table_reads_the_rank_modes_scores_csv_and_refuses_a_missing_score(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("arch_id,ground_truth,params,grasp\na,1.5,10,\nb,2.0,20,0.3\nc,0.1,5,nan\n")
    tab = fs.read_feature_table(path)
    assert tab.names == ["params", "grasp"] and tab.arch_ids == ["a", "b", "c"]
    assert np.isnan(tab.values[0, 1]) and tab.values[1, 1] == 0.3
    assert tab.cheap == ["params"]  # grasp takes a Hessian-vector product
    path.write_text("arch_id,score,params\na,,10\n")
    with pytest.raises(fs.DataFileError, match="line 2: not a number"):
        fs.read_feature_table(path)


def test_the_learning_curve_draws_the_references_and_the_best_methods_only():
    from lpzero_jax.study.few_shot import ORACLE, plotted_methods

    names = ["random", "best_zoo_on_S", "evolution", ORACLE] + [f"m{i}" for i in range(12)]
    rho = {"random": 0.5, "best_zoo_on_S": 0.4, "evolution": 0.45, ORACLE: 0.99}
    rho.update({f"m{i}": 0.1 + 0.05 * i for i in range(12)})  # m11 best
    summary = {"20": {m: {"rho_mean": rho[m], "rho_sd": 0.0} for m in names},
               "50": {m: {"rho_mean": rho[m], "rho_sd": 0.0} for m in names if m != "m11"}}
    summary["50"]["m0"]["rho_mean"] = 0.9  # worst at S = 20, best at S = 50: drawn
    chosen = plotted_methods({"sizes": [20, 50], "summary": summary}, most=6)
    assert chosen == ["random", "best_zoo_on_S", "evolution", "m11", "m0", "m10", ORACLE]
