"""A ranker fitted on the S labelled architectures: proxy values in, a ranking of the rest out.

Features are per-architecture proxy values (hand-crafted zoo proxies, searched genomes); the target
is the ranks of the S scores (higher is better). Three model kinds:

  single:     the one feature with the largest |Spearman rho| on the training set, with its sign
              (what `best_zoo_on_S` is; a fallback the cross-validation can choose);
  ridge:      ridge regression (closed form, numpy) of the rank-normalised target on the
              rank-normalised features; hyperparameter: alpha (on the 1/n-scaled Gram matrix);
  lambdarank: LightGBM's listwise `lambdarank` objective on the raw features (trees read only the
              order of a feature), the S architectures as one query; hyperparameters: a small grid
              of leaves, rounds and minimum leaf size.

`fit_ranker` chooses the model kind and its hyperparameters by repeated k-fold cross-validation
INSIDE the training set (mean Spearman rho of each fold's predictions on its own held-out part),
then refits the winner on the whole training set. Nothing but the rows it is given is read.

Rank normalisation maps a value to its mid-rank ECDF among the TRAINING values (stored in the
ranker), interpolated linearly between training values and squashed monotonically beyond them (towards
0 or 1 as d / (1 + d) of the distance d in training ranges, which keeps far values ordered), so a
single new architecture is scored exactly as it would be among many; a missing (NaN) value is the
median rank 0.5.

A fitted `Ranker` saves to one JSON file (kind, feature list, normalisation state, weights or
LightGBM's model string, the CV table) and loads back with bit-identical predictions.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from lpzero_jax import evaluation
from lpzero_jax.errors import UserError
from lpzero_jax.files import write_json
from lpzero_jax.search.arch_features import PREFIX

FORMAT = "lpzero_jax.ranker/1"
MODEL_KINDS = ("single", "ridge", "lambdarank")
RIDGE_ALPHAS = (0.001, 0.01, 0.1, 1.0, 10.0)
LAMBDARANK_GRID = tuple(dict(num_leaves=leaves, num_rounds=rounds, min_data_in_leaf=leaf)
                        for leaves, rounds, leaf in itertools.product((3, 7), (30, 100), (2, 5)))
MAX_GRADES = 31  # LightGBM's default label_gain covers relevance grades 0..30


class RankerFileError(UserError, ValueError):
    """A ranker file that is missing, malformed or of another format; the message names it."""


# --- rank normalisation ---------------------------------------------------------------------------

def _column_transform(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Mid-rank ECDF of `x` among the sorted finite `train` values (see the module docstring)."""
    x = np.asarray(x, np.float64)
    out = np.full(x.shape, 0.5)
    if len(train) == 0:
        return out
    m = len(train)
    u = np.unique(train)
    mid = (np.searchsorted(train, u, "left") + np.searchsorted(train, u, "right")) / (2.0 * m)
    finite = np.isfinite(x)
    xf = x[finite]
    r = np.interp(xf, u, mid)
    scale = float(u[-1] - u[0]) or max(abs(float(u[0])), 1.0)
    low, high = xf < u[0], xf > u[-1]
    d_low, d_high = (u[0] - xf[low]) / scale, (xf[high] - u[-1]) / scale
    r[low] = mid[0] / (1.0 + d_low)  # d / (1 + d): no saturation far out
    r[high] = mid[-1] + (1.0 - mid[-1]) * d_high / (1.0 + d_high)
    out[finite] = r
    return out


def rank_normalise(x: np.ndarray, train: Sequence[np.ndarray]) -> np.ndarray:
    """[N, F] values -> [N, F] ranks in [0, 1] against the per-feature sorted training values."""
    x = np.asarray(x, np.float64)
    return np.stack([_column_transform(x[:, j], train[j]) for j in range(x.shape[1])], axis=1)


def normaliser_state(x: np.ndarray) -> List[np.ndarray]:
    """Per feature the sorted finite training values (what `rank_normalise` compares against)."""
    x = np.asarray(x, np.float64)
    return [np.sort(c[np.isfinite(c)]) for c in x.T]


def target_ranks(y: np.ndarray) -> np.ndarray:
    """Scores -> mid-ranks scaled to (0, 1) (higher score, higher rank)."""
    from scipy import stats

    y = np.asarray(y, np.float64)
    return (stats.rankdata(y) - 0.5) / len(y)


# --- the models -----------------------------------------------------------------------------------

def _fit_single(z: np.ndarray, y: np.ndarray) -> dict:
    """The feature with the largest |rho| with y (first of equals), and its sign."""
    best, best_rho = 0, -1.0
    for j in range(z.shape[1]):
        rho = evaluation.spearman_rho(z[:, j], y)
        if np.isfinite(rho) and abs(rho) > best_rho:
            best, best_rho = j, abs(rho)
    rho = evaluation.spearman_rho(z[:, best], y)
    return {"feature": best, "sign": -1.0 if np.isfinite(rho) and rho < 0 else 1.0,
            "rho_on_train": float(rho) if np.isfinite(rho) else float("nan")}


def _fit_ridge(z: np.ndarray, y: np.ndarray, alpha: float) -> dict:
    t = target_ranks(y)
    mean = z.mean(axis=0)
    zc, tc = z - mean, t - t.mean()
    n, f = z.shape
    w = np.linalg.solve(zc.T @ zc / n + alpha * np.eye(f), zc.T @ tc / n)
    return {"mean": mean.tolist(), "weights": w.tolist(), "intercept": float(t.mean())}


def _grades(y: np.ndarray) -> np.ndarray:
    """Integer relevance grades 0..min(n, MAX_GRADES)-1 from the ranks of y."""
    levels = min(len(y), MAX_GRADES)
    return np.minimum((target_ranks(y) * levels).astype(int), levels - 1)


def _lambdarank_params(hp: dict, seed: int) -> dict:
    return {"objective": "lambdarank", "metric": "none", "verbosity": -1,
            "num_leaves": int(hp["num_leaves"]), "min_data_in_leaf": int(hp["min_data_in_leaf"]),
            "learning_rate": 0.05, "min_sum_hessian_in_leaf": 0.0, "min_data_in_bin": 1,
            "feature_pre_filter": False, "lambdarank_truncation_level": 10_000,
            "deterministic": True, "force_col_wise": True, "num_threads": 1, "seed": int(seed)}


def _fit_lambdarank(x: np.ndarray, y: np.ndarray, hp: dict, seed: int):
    """A LightGBM Booster trained with lambdarank on one query of all rows."""
    import lightgbm as lgb

    data = lgb.Dataset(np.asarray(x, np.float64), label=_grades(y), group=[len(y)],
                       params={"verbosity": -1, "min_data_in_bin": 1, "feature_pre_filter": False})
    return lgb.train(_lambdarank_params(hp, seed), data, num_boost_round=int(hp["num_rounds"]))


@dataclasses.dataclass
class Ranker:
    """A fitted ranker. kind: one of MODEL_KINDS; features: names in column order; params: the
    hyperparameters; state: the fitted numbers (normaliser, weights or LightGBM model string);
    cv: the cross-validation table it was chosen by (candidate -> mean fold rho)."""

    kind: str
    features: List[str]
    params: dict
    state: dict
    cv: List[dict] = dataclasses.field(default_factory=list)
    n_train: int = 0
    _booster: object = dataclasses.field(default=None, repr=False, compare=False)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """[N, F] feature values (columns in `features` order) -> [N] scores, higher = better."""
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(f"expected [N, {len(self.features)}] feature values "
                             f"({', '.join(self.features)}), got shape {x.shape}")
        if self.kind == "lambdarank":
            if self._booster is None:
                import lightgbm as lgb

                self._booster = lgb.Booster(model_str=self.state["model"])
            return np.asarray(self._booster.predict(x, num_threads=1), np.float64)
        train = [np.asarray(v, np.float64) for v in self.state["train_values"]]
        z = rank_normalise(x, train)
        if self.kind == "single":
            return self.params["sign"] * z[:, self.params["feature"]]
        if self.kind == "ridge":
            return (z - np.asarray(self.state["mean"])) @ np.asarray(self.state["weights"]) + \
                self.state["intercept"]
        raise ValueError(f"unknown ranker kind {self.kind!r}")

    def to_dict(self) -> dict:
        return {"format": FORMAT, "kind": self.kind, "features": list(self.features),
                "params": self.params, "state": self.state, "cv": self.cv, "n_train": self.n_train}

    @classmethod
    def from_dict(cls, d: dict, where: str = "ranker") -> "Ranker":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise RankerFileError(f"{where}: not a ranker file (expected \"format\": \"{FORMAT}\"); "
                                  "write one with the `fit_ranker` mode or `Ranker.save`")
        try:
            kind, features = d["kind"], [str(f) for f in d["features"]]
            if kind not in MODEL_KINDS:
                raise ValueError(f"unknown kind {kind!r}")
            return cls(kind=kind, features=features, params=dict(d["params"]),
                       state=dict(d["state"]), cv=list(d.get("cv", [])),
                       n_train=int(d.get("n_train", 0)))
        except (KeyError, TypeError, ValueError) as e:
            raise RankerFileError(f"{where}: malformed ranker file ({e}); refit it") from None

    def save(self, path: Path) -> None:
        """One JSON file (floats written with full precision: the round trip is exact)."""

        write_json(Path(path), self.to_dict(), indent=1)

    @classmethod
    def load(cls, path: Path) -> "Ranker":
        path = Path(path)
        if not path.is_file():
            raise RankerFileError(f"{path}: no such ranker file; fit one first (mode fit_ranker)")
        try:
            d = json.loads(path.read_text())
        except ValueError as e:
            raise RankerFileError(f"{path}: not JSON ({e}); refit the ranker") from None
        return cls.from_dict(d, str(path))


def fit_model(kind: str, params: dict, x: np.ndarray, y: np.ndarray, features: Sequence[str],
              seed: int = 0) -> Ranker:
    """A ranker of `kind` with fixed hyperparameters `params` fitted on rows x [n, F], scores y [n]."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or x.shape[0] != len(y) or x.shape[1] != len(features):
        raise ValueError(f"x {x.shape}, y {y.shape} and {len(features)} feature names disagree")
    if not np.all(np.isfinite(y)):
        raise ValueError("training scores must all be finite")
    train = normaliser_state(x)
    state = {"train_values": [v.tolist() for v in train]}
    if kind == "lambdarank":
        booster = _fit_lambdarank(x, y, params, seed)
        ranker = Ranker(kind, list(features), dict(params, seed=int(seed)),
                        {"model": booster.model_to_string()}, n_train=len(y))
        return ranker
    z = rank_normalise(x, train)
    if kind == "single":
        params = dict(params, **_fit_single(z, y))
        params["feature_name"] = features[params["feature"]]
    elif kind == "ridge":
        state.update(_fit_ridge(z, y, float(params["alpha"])))
    else:
        raise ValueError(f"unknown ranker kind {kind!r}; known: {', '.join(MODEL_KINDS)}")
    return Ranker(kind, list(features), dict(params), state, n_train=len(y))


def candidates(kinds: Sequence[str]) -> List[Tuple[str, dict]]:
    """(kind, hyperparameters) of every model the cross-validation compares, simplest first."""
    out = []
    for kind in kinds:
        if kind == "single":
            out.append(("single", {}))
        elif kind == "ridge":
            out += [("ridge", {"alpha": a}) for a in sorted(RIDGE_ALPHAS, reverse=True)]
        elif kind == "lambdarank":
            out += [("lambdarank", dict(hp)) for hp in LAMBDARANK_GRID]
        else:
            raise ValueError(f"unknown ranker kind {kind!r}; known: {', '.join(MODEL_KINDS)}")
    return out


def cv_splits(n: int, seed: int, repeats: int = 3) -> List[Tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs of `repeats` shuffled k-fold splits of range(n), k = n // 10
    clamped to [2, 5] (each test fold holds about 10 or more rows, so its rho means something)."""
    if n < 4:
        raise ValueError(f"cross-validation needs at least 4 labelled architectures, got {n}")
    k = max(2, min(5, n // 10))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(repeats):
        order = rng.permutation(n)
        for fold in np.array_split(order, k):
            out.append((np.sort(np.setdiff1d(order, fold)), np.sort(fold)))
    return out


def cv_rhos(kind: str, params: dict, x: np.ndarray, y: np.ndarray, splits, seed: int) -> List[float]:
    """Spearman rho of each fold model's predictions on its test fold (NaN counts as 0)."""
    rhos = []
    names = [str(j) for j in range(x.shape[1])]
    for train, test in splits:
        model = fit_model(kind, params, x[train], y[train], names, seed)
        rho = evaluation.spearman_rho(model.predict(x[test]), y[test])
        rhos.append(float(rho) if np.isfinite(rho) else 0.0)
    return rhos


def cross_validate(x: np.ndarray, y: np.ndarray, kinds: Sequence[str] = MODEL_KINDS, seed: int = 0,
                   repeats: int = 3) -> List[dict]:
    """[{kind, params, cv_rho (mean over folds), cv_folds (each fold's rho)}] of every candidate
    of `kinds`, scored on the same splits of (x, y)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    splits = cv_splits(len(y), seed, repeats)
    out = []
    for kind, params in candidates(kinds):
        rhos = cv_rhos(kind, params, x, y, splits, seed)
        out.append({"kind": kind, "params": params, "cv_rho": float(np.mean(rhos)), "cv_folds": rhos})
    return out


def choose(table: Sequence[dict], kinds: Sequence[str] = MODEL_KINDS) -> Tuple[str, dict]:
    """(kind, params) of the best cross-validated candidate among `kinds` (the first of equals,
    i.e. the simplest, in `candidates` order)."""
    rows = [r for r in table if r["kind"] in kinds]
    if not rows:
        raise ValueError(f"no cross-validated candidate of kinds {list(kinds)}")
    best = max(range(len(rows)), key=lambda i: (rows[i]["cv_rho"], -i))
    return rows[best]["kind"], dict(rows[best]["params"])


def fit_ranker(x: np.ndarray, y: np.ndarray, features: Sequence[str],
               kinds: Sequence[str] = MODEL_KINDS, seed: int = 0, repeats: int = 3,
               table: Optional[Sequence[dict]] = None) -> Ranker:
    """The candidate (of `kinds`) with the best cross-validated rho inside (x, y), refitted on all
    of it; its `cv` lists the candidates' scores. `table`: a `cross_validate` result of the same
    (x, y, seed) to choose from instead of cross-validating again. With one candidate there is
    nothing to choose and no cross-validation is run."""
    options = candidates(kinds)
    if len(options) == 1:
        kind, params, table = options[0][0], options[0][1], []
    else:
        table = [r for r in (table if table is not None else
                             cross_validate(x, y, kinds, seed, repeats)) if r["kind"] in kinds]
        kind, params = choose(table, kinds)
    ranker = fit_model(kind, params, x, y, features, seed)
    ranker.cv = list(table)
    return ranker


def feature_costs(features: Sequence[str], seconds: Dict[str, float]) -> Dict[str, float]:
    """Per-architecture extraction cost of a feature set: `sum` of each feature's seconds as if
    computed alone (an upper bound: shared passes counted once per feature) and `max` (a lower
    bound: the dearest one); architecture descriptors cost 0; features without a known cost are
    listed in `unknown`."""

    seconds = dict(seconds, **{f: 0.0 for f in features if f.startswith(PREFIX)})  # read off configs
    known = [float(seconds[f]) for f in features if f in seconds and math.isfinite(seconds[f])]
    return {"sum": float(np.sum(known)) if known else float("nan"),
            "max": float(np.max(known)) if known else float("nan"),
            "unknown": [f for f in features if f not in seconds or not math.isfinite(seconds[f])]}


def predict_ranking(ranker: Ranker, arch_ids: Sequence[str], x: np.ndarray) -> List[dict]:
    """Rows {rank (1 = best), arch_id, predicted score}, best first (ties: input order)."""
    scores = ranker.predict(x)
    order = sorted(range(len(arch_ids)), key=lambda i: (-scores[i], i))
    return [{"rank": r + 1, "arch_id": str(arch_ids[i]), "predicted": float(scores[i])}
            for r, i in enumerate(order)]

