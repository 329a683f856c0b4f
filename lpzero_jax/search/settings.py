"""The settings of `config.search`, checked before any work, and the sample S against the benchmark.

Every mode that runs Algorithm 1 or draws S (search, bench, study, joint_search) registers these
checks with its mode (`modes.base.register_mode`).
"""

from __future__ import annotations

from typing import Sequence

from lpzero_jax.checks import require_fraction, require_int
from lpzero_jax.errors import ConfigError
from lpzero_jax.proxies.resolve import resolve_proxies
from lpzero_jax.search.answer import ANSWERS, RANKER_FEATURES
from lpzero_jax.search.driver import BASELINES
from lpzero_jax.search.ranker import MODEL_KINDS


def validate_search(config) -> None:
    """ConfigError naming the first bad `search.*` setting."""
    s = config.search
    require_int(config, "search.population", 2)
    require_int(config, "search.generations", 0)
    require_int(config, "search.checkpoint_every", 1)
    require_int(config, "search.sample_archs", 2)
    require_int(config, "search.n_unary", 1)
    require_fraction(config, "search.pool_ratio", low_open=True)
    require_fraction(config, "search.crossover_rate")
    require_fraction(config, "search.mutation_rate")
    unknown = [b for b in (x.strip() for x in str(s.baselines).split(",")) if b and b not in BASELINES]
    if unknown:
        raise ConfigError(f"search.baselines: unknown {', '.join(map(repr, unknown))}; known: "
                          f"{', '.join(BASELINES)} (comma list, or '' for none)")
    if s.aggregate not in ("sum", "mean"):
        raise ConfigError(f"search.aggregate must be 'sum' or 'mean', got {s.aggregate!r}")
    if s.evaluator not in ("program", "compiled"):
        raise ConfigError(f"search.evaluator must be 'program' or 'compiled', got {s.evaluator!r}")
    validate_answer(config)


def split_list(text: str) -> list:
    """'a, b,,c' -> ['a', 'b', 'c']."""
    return [x.strip() for x in str(text).split(",") if x.strip()]


def validate_answer(config) -> None:
    """search.answer, search.ranker_features and search.zoo (search/answer.py) well formed."""
    s = config.search
    if s.answer not in ANSWERS:
        raise ConfigError(f"search.answer {s.answer!r}: expected one of {', '.join(ANSWERS)}")
    parts = split_list(s.ranker_features)
    bad = [p for p in parts if p not in RANKER_FEATURES]
    if bad or not parts:
        raise ConfigError(f"search.ranker_features {s.ranker_features!r}: expected a comma list of "
                          f"{', '.join(RANKER_FEATURES)}")
    kinds = split_list(s.ranker_kinds)
    if not kinds or any(k not in MODEL_KINDS for k in kinds):
        raise ConfigError(f"search.ranker_kinds {s.ranker_kinds!r}: expected a comma list of "
                          f"{', '.join(MODEL_KINDS)}")
    zoo = str(s.zoo).strip()
    if zoo:
        try:
            resolve_proxies(zoo)
        except (ValueError, KeyError) as e:
            raise ConfigError(f"search.zoo {zoo!r}: {e.args[0] if e.args else e}") from None
    elif s.answer == "best_zoo_on_S":
        raise ConfigError("search.answer=best_zoo_on_S needs zoo proxies: set search.zoo "
                          "(e.g. --config.search.zoo=params,zerolm)")


def _check_sample(config, archs: Sequence, hold_out: bool) -> None:
    s = config.search
    most = len(archs) - (1 if hold_out else 0)
    if s.sample_archs > most:
        raise ConfigError(
            f"search.sample_archs {s.sample_archs} leaves no architecture of the {len(archs)} "
            f"{'to hold out' if hold_out else 'to draw'}; set "
            f"--config.search.sample_archs={most} or less"
            + (" (or search.evaluate_all=False)" if hold_out else ""))


def check_sample(config, archs: Sequence) -> None:
    """The `search` mode's S against the benchmark: with evaluate_all, one architecture at least
    must be left to hold out."""
    _check_sample(config, archs, hold_out=bool(config.search.evaluate_all))


def check_drawn_sample(config, archs: Sequence) -> None:
    """S against the benchmark for the modes that only draw it (bench, study, joint_search)."""
    _check_sample(config, archs, hold_out=False)
