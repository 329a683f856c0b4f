"""The search mode's answer: which ranking of the architectures a run returns, chosen on S alone.

Algorithm 1 finds a genome on the S labelled architectures; the few-shot study (docs/results/
few_shot.md) measured which use of S ranks the held-out architectures best, per benchmark. The
search mode computes every method below from the same S and returns the one `search.answer` names
(each family's shipped config sets the study's winner); the others are reported beside it, on the
held-out architectures, so the output says when the answer did not beat a baseline.

  genome         the best genome of Algorithm 1 (LPZero's answer);
  best_zoo_on_S  the zoo proxy (search.zoo) with the largest |rho| on S, with its sign;
  params         the parameter count (when search.zoo has it; no choice);
  ranker         a ranker (search/ranker.py: single feature / ridge / LightGBM lambdarank, chosen
                 and fitted by cross-validation inside S) over the architecture descriptors
                 (search/arch_features.py, no extraction), the genome's values and the zoo's.

Only truth[sample_idx] reaches a choice or a fit; the held-out truth is read to report.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from lpzero_jax import evaluation
from lpzero_jax.search import baselines
from lpzero_jax.search import ranker as ranker_lib

ANSWERS = ("genome", "best_zoo_on_S", "ranker")
RANKER_FEATURES = ("arch", "genome", "zoo")  # what search.ranker_features may list


def _held_out(scores: np.ndarray, truth: np.ndarray, held: np.ndarray) -> dict:
    r = evaluation.rank_correlations(np.asarray(scores, np.float64)[held], truth[held])
    return {"spearman_rho": r["spearman_rho"], "kendall_tau": r["kendall_tau"], "n": r["n"]}


def ranker_inputs(parts: Sequence[str], genome_values: np.ndarray, zoo_values: np.ndarray,
                  zoo_names: Sequence[str], arch_names: Sequence[str],
                  arch_values: Optional[np.ndarray]) -> tuple:
    """(x [N, F], feature names) of the ranker from the parts named in `parts` (RANKER_FEATURES)."""
    cols, names = [], []
    if "arch" in parts and arch_values is not None and arch_values.shape[1]:
        cols.append(arch_values)
        names += list(arch_names)
    if "genome" in parts:
        cols.append(np.asarray(genome_values, np.float64)[:, None])
        names.append("genome")
    if "zoo" in parts and len(zoo_names):
        cols.append(np.asarray(zoo_values, np.float64))
        names += list(zoo_names)
    if not cols:
        raise ValueError(f"the ranker has no features (parts {list(parts)})")
    return np.concatenate(cols, axis=1), names


def answer_methods(truth: np.ndarray, sample_idx: np.ndarray, held_idx: np.ndarray,
                   genome_values: np.ndarray, zoo_values: np.ndarray, zoo_names: Sequence[str],
                   arch_names: Sequence[str] = (), arch_values: Optional[np.ndarray] = None,
                   ranker_parts: Sequence[str] = RANKER_FEATURES, seed: int = 0,
                   kinds: Sequence[str] = ranker_lib.MODEL_KINDS) -> Dict[str, dict]:
    """method -> {scores [N], choice (made on S), held_out {spearman_rho, kendall_tau, n}} for
    every method of the module docstring that its inputs allow."""
    truth = np.asarray(truth, np.float64)
    sample_idx, held_idx = np.asarray(sample_idx), np.asarray(held_idx)
    zoo_values = np.asarray(zoo_values, np.float64).reshape(len(truth), len(zoo_names))
    out: Dict[str, dict] = {"genome": {"scores": np.asarray(genome_values, np.float64),
                                       "choice": {}}}
    if len(zoo_names):
        pick = baselines.best_zoo_on_S(zoo_values, zoo_names, truth[sample_idx], sample_idx)
        out["best_zoo_on_S"] = {"scores": pick["scores"], "choice": {
            "proxy": pick["name"], "sign": pick["sign"], "rho_on_sample": pick["rho"]}}
    if "params" in zoo_names:
        out["params"] = {"scores": zoo_values[:, list(zoo_names).index("params")], "choice": {}}
    x, names = ranker_inputs(ranker_parts, genome_values, zoo_values, zoo_names, arch_names,
                             arch_values)
    model = ranker_lib.fit_ranker(x[sample_idx], truth[sample_idx], names, kinds=kinds, seed=seed)
    out["ranker"] = {"scores": model.predict(x), "choice": {
        "kind": model.kind, "features": names,
        "params": {k: v for k, v in model.params.items() if k not in ("rho_on_train",)}},
        "model": model}
    for entry in out.values():
        entry["held_out"] = _held_out(entry["scores"], truth, held_idx)
    return out


def summary(methods: Dict[str, dict], answer: str) -> dict:
    """The JSON block of search.json: the answer's method, choice and held-out figures, every
    method's held-out figures, and which methods the answer did not beat on the held-out set."""
    if answer not in methods:
        raise ValueError(f"answer {answer!r} not computed (have {', '.join(methods)})")
    mine = methods[answer]["held_out"]["spearman_rho"]
    return {
        "method": answer,
        "choice": methods[answer]["choice"],
        "held_out": methods[answer]["held_out"],
        "methods": {m: {"choice": e["choice"], "held_out": e["held_out"]} for m, e in methods.items()},
        "not_beaten": [m for m, e in methods.items() if m != answer
                       and e["held_out"]["spearman_rho"] >= mine],
    }


def ranking_rows(arch_ids: Sequence[str], scores: np.ndarray, sample_idx: np.ndarray,
                 truth: np.ndarray) -> List[dict]:
    """Rows of answer_ranking.csv, best first: rank, arch_id, score, labelled (in S), and the
    label of the S architectures (the held-out labels are not written beside the ranking)."""
    in_s = set(np.asarray(sample_idx).tolist())
    order = np.argsort(-np.nan_to_num(np.asarray(scores, np.float64), nan=-np.inf), kind="stable")
    return [{"rank": r + 1, "arch_id": str(arch_ids[i]), "score": float(scores[i]),
             "labelled": i in in_s, "label": float(truth[i]) if i in in_s else ""}
            for r, i in enumerate(order)]
