"""The search mode's answer (search/answer.py): every method chosen on S, reported on held-out."""

import numpy as np
import pytest

from lpzero_jax import evaluation
from lpzero_jax.search import answer


def problem(n=80, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.standard_normal(n)
    genome = truth + 1.0 * rng.standard_normal(n)
    zoo = np.stack([rng.standard_normal(n), -truth + 0.6 * rng.standard_normal(n)], axis=1)
    arch = np.stack([np.round(truth * 3) + 0.5 * rng.standard_normal(n)], axis=1)
    sample, held = evaluation.sample_split(n, 30, seed)
    return truth, sample, held, genome, zoo, arch


def methods_of(truth, sample, held, genome, zoo, arch, parts=answer.RANKER_FEATURES):
    return answer.answer_methods(truth, sample, held, genome, zoo, ["noise", "params"],
                                 ["arch:width"], arch, ranker_parts=parts, seed=1)


def test_each_method_is_chosen_on_the_sample_and_reported_on_the_held_out_architectures():
    truth, sample, held, genome, zoo, arch = problem()
    out = methods_of(truth, sample, held, genome, zoo, arch)
    assert set(out) == {"genome", "best_zoo_on_S", "params", "ranker"}
    assert out["best_zoo_on_S"]["choice"]["proxy"] == "params"  # the informative column ...
    assert out["best_zoo_on_S"]["choice"]["sign"] == -1.0  # ... with its sign
    assert all(e["held_out"]["n"] == len(held) for e in out.values())
    assert out["ranker"]["choice"]["features"] == ["arch:width", "genome", "noise", "params"]
    # three informative features combined rank better than the best one alone
    assert out["ranker"]["held_out"]["spearman_rho"] > out["best_zoo_on_S"]["held_out"]["spearman_rho"]
    # held-out labels reach no choice and no prediction
    corrupted = truth.copy()
    corrupted[held] = np.random.default_rng(5).permutation(truth[held]) * -4
    again = methods_of(corrupted, sample, held, genome, zoo, arch)
    for m in out:
        assert out[m]["choice"] == again[m]["choice"], m
        assert np.array_equal(out[m]["scores"], again[m]["scores"]), m
        assert out[m]["held_out"] != again[m]["held_out"], m


def test_the_summary_names_the_answer_and_what_it_did_not_beat():
    truth, sample, held, genome, zoo, arch = problem()
    out = methods_of(truth, sample, held, genome, zoo, arch, parts=("genome",))
    s = answer.summary(out, "genome")
    assert s["method"] == "genome" and set(s["methods"]) == set(out)
    rho = {m: e["held_out"]["spearman_rho"] for m, e in out.items()}
    assert s["not_beaten"] == [m for m in out if m != "genome" and rho[m] >= rho["genome"]]
    assert "best_zoo_on_S" in s["not_beaten"]  # the zoo column is better than this noisy genome
    with pytest.raises(ValueError, match="not computed"):
        answer.summary(out, "oracle")


def test_the_ranking_lists_every_architecture_best_first_with_only_the_sample_labels():
    truth, sample, held, genome, *_ = problem(n=40)
    rows = answer.ranking_rows([f"a{i}" for i in range(40)], genome, sample, truth)
    assert [r["rank"] for r in rows] == list(range(1, 41))
    assert [r["arch_id"] for r in rows] == [f"a{i}" for i in np.argsort(-genome, kind="stable")]
    assert all((r["label"] == "") != r["labelled"] for r in rows)
    assert sum(r["labelled"] for r in rows) == len(sample)


def test_the_shipped_configs_return_the_few_shot_studys_winner():
    """docs/results/few_shot.md: FlexiBERT ridge on descriptors + genome + params; GPT-2 ridge on
    the four parameter groups + the genome (0.981 vs 0.977 for the groups alone, p = 0.010)."""
    from lpzero_jax.configs import flexibert, gpt2

    g = gpt2.get_config().search
    assert (g.answer, g.ranker_features, g.ranker_kinds) == ("ranker", "genome,zoo", "ridge")
    assert set(g.zoo.split(",")) == {"params", "params_attn", "params_ffn", "params_nonembedding"}
    f = flexibert.get_config().search
    assert (f.answer, f.ranker_features, f.zoo) == ("ranker", "arch,genome,zoo", "params")
