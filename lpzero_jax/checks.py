"""Every setting of a run checked before any work, and the benchmark checked against them.

`validate_config` checks the settings alone (types and ranges, names of proxies, baselines, shard);
`load_archs` loads the benchmark and checks it against the settings: canonical unique ids,
`num_archs` within the benchmark, `seq_len` within every architecture's positions, `sample_archs`
within the architectures. Each failure is a ConfigError naming the setting and the fix.
"""

from __future__ import annotations

import math
from typing import List

from lpzero_jax.errors import ConfigError

SEARCH_MODES = ("search", "bench", "study", "joint_search")  # modes that read config.search


def _flag(setting: str) -> str:
    return f"--config.{setting}"


def _value(config, setting: str):
    """config's value at a dotted setting name ("search.population"), None when absent."""
    value = config
    for part in setting.split("."):
        value = value.get(part) if hasattr(value, "get") else None
    return value


def require_int(config, setting: str, minimum: int, maximum: int = None) -> int:
    """config[setting] (dotted) as an int within [minimum, maximum], else ConfigError."""
    value = _value(config, setting)
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum and \
        (maximum is None or value <= maximum)
    if not ok:
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ConfigError(f"{setting} must be an integer {bound}, got {value!r}; set "
                          f"{_flag(setting)}=N")
    return value


def require_fraction(config, setting: str, low_open: bool = False) -> float:
    """config[setting] (dotted) as a number in [0, 1] ((0, 1] with low_open), else ConfigError."""
    value = _value(config, setting)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (0 < value if low_open else 0 <= value) and value <= 1
    if not ok:
        raise ConfigError(f"{setting} must be a number in {'(0' if low_open else '[0'}, 1], got "
                          f"{value!r}; set {_flag(setting)}=X")
    return float(value)


def validate_config(config, mode: str = None) -> None:
    """Checks every setting that `mode` (default config.mode) reads; ConfigError (or
    UnknownNameError) naming the first bad one. Cheap: reads no data file."""
    from lpzero_jax.families import get_family
    from lpzero_jax.modes import MODES

    mode = mode or config.mode
    MODES.get(mode)
    family = get_family(config.family)
    require_int(config, "batch_size", 1)
    require_int(config, "seq_len", family.min_seq_len)
    require_int(config, "num_archs", 0)
    require_int(config, "seed", 0)
    require_int(config, "inputs.sample_size", 1)
    require_int(config, "inputs.sample_seed", 0)
    family.train_dropout_for(config)  # refuses train_mode where the family has no dropout
    if mode == "rank":
        from lpzero_jax.modes.rank import parse_shard
        from lpzero_jax.proxies.resolve import resolve_proxies

        parse_shard(config.get("rank_shard", ""))
        if _value(config, "zerolm") is not None:
            require_fraction(config, "zerolm.alpha")
            require_int(config, "zerolm.sample_size", 3)
        try:
            resolve_proxies(config.proxies)
        except KeyError:
            raise
        except ValueError as e:  # a genome that does not parse
            raise ConfigError(f"proxies: {e}; fix --config.proxies") from None
    if mode in SEARCH_MODES:
        _validate_search(config)
    if mode == "sensitivity":
        from lpzero_jax.study import sensitivity

        sensitivity.settings(config)  # the seed lists
        sensitivity.zoo_proxies(config)  # the zoo proxy names


def _validate_search(config) -> None:
    from lpzero_jax.modes.search import BASELINES

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


def check_archs(family, config, archs, mode: str = None) -> None:
    """The benchmark against the settings: canonical ids unique (0 and "0" are one id),
    num_archs within the benchmark, seq_len within every architecture's positions, sample_archs
    within the architectures."""
    from lpzero_jax.benchmarks.base import BenchmarkFormatError

    seen = {}
    for a in archs:
        key = str(a.arch_id)
        if key in seen:
            raise BenchmarkFormatError(f"architecture ids {seen[key]!r} and {a.arch_id!r} are the "
                                       f"same id {key!r} (ids are compared as text); make them unique "
                                       "in the benchmark file")
        seen[key] = a.arch_id
    if not archs:
        raise ConfigError("the benchmark has no architectures; check benchmark_file/benchmark_dir")
    wanted = int(config.num_archs)
    if wanted > len(archs):
        raise ConfigError(f"num_archs {wanted} exceeds the {len(archs)} architectures of the "
                          f"benchmark; set --config.num_archs={len(archs)} or less (0 = all)")
    seq_len = int(config.seq_len)
    limits = [(family.max_seq_len(family.model_config(a, config)), a.arch_id) for a in archs]
    short = sorted((n, i) for n, i in limits if n is not None and n < seq_len)
    if short:
        n, first = short[0]
        raise ConfigError(
            f"seq_len {seq_len} exceeds the {n} positions of architecture {first}"
            f"{f' (and {len(short) - 1} more)' if len(short) > 1 else ''}: the benchmark's models "
            f"were built for sequences of {n}; set --config.seq_len={n} (or less)")
    mode = mode or config.mode
    if mode in SEARCH_MODES:
        s = config.search
        most = len(archs) - (1 if mode == "search" and s.evaluate_all else 0)
        if s.sample_archs > most:
            raise ConfigError(
                f"search.sample_archs {s.sample_archs} leaves no architecture of the {len(archs)} "
                f"{'to hold out' if most < len(archs) else 'to draw'}; set "
                f"--config.search.sample_archs={most} or less"
                + (" (or search.evaluate_all=False)" if most < len(archs) else ""))


def load_archs(family, config, mode: str = None) -> List:
    """The benchmark's architectures after `validate_config` and `check_archs` for `mode`."""
    validate_config(config, mode)
    archs = family.load_benchmark(config)
    check_archs(family, config, archs, mode)
    return archs
