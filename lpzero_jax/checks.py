"""Every setting of a run checked before any work, and the benchmark checked against them.

`validate_common` checks the settings every mode reads (types and ranges); the `require_*` helpers
serve each mode's own checks (`modes.base.Mode.validate`). `load_archs` loads the benchmark and
checks it against the settings: canonical unique ids, `num_archs` within the benchmark, `seq_len`
within every architecture's positions. Each failure is a ConfigError naming the setting and the fix.
The whole sequence for a mode (`workdir.validate_config`, `workdir.load_checked_archs`) is in
`lpzero_jax.workdir`.
"""

from __future__ import annotations

import math
from typing import List

from lpzero_jax.benchmarks.base import BenchmarkFormatError
from lpzero_jax.errors import ConfigError
from lpzero_jax.families import get_family


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


def validate_common(config) -> None:
    """Checks the settings every mode reads (family, batch, sequence, seeds, input sampling);
    ConfigError (or UnknownNameError) naming the first bad one. Cheap: reads no data file. Each
    mode checks its own settings (`modes.base.Mode.validate`)."""
    family = get_family(config.family)
    require_int(config, "batch_size", 1)
    require_int(config, "seq_len", family.min_seq_len)
    require_int(config, "num_archs", 0)
    require_int(config, "seed", 0)
    require_int(config, "inputs.sample_size", 1)
    require_int(config, "inputs.sample_seed", 0)
    limit = config.get("memory_limit_gb") or 0
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not 0 <= limit < math.inf:
        raise ConfigError(f"memory_limit_gb must be a number of GB >= 0 (0 = the free memory), "
                          f"got {limit!r}; set {_flag('memory_limit_gb')}=N")
    family.train_dropout_for(config)  # refuses train_mode where the family has no dropout
    validate_distributed(config)


def validate_distributed(config) -> None:
    """The `distributed` settings, before `jax.distributed.initialize` sees them (it aborts the
    process, or raises deep inside JAX, on a bad one): HOST:PORT, 1 <= num_processes,
    0 <= process_id < num_processes, positive timeouts."""
    dist = config.get("distributed")
    if not dist:
        return
    n = require_int(config, "distributed.num_processes", 1)
    address = dist.get("coordinator_address")
    if address:
        host, _, port = str(address).rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"distributed.coordinator_address {address!r}: expected HOST:PORT "
                              "(e.g. 10.0.0.1:1234); fix --config.distributed.coordinator_address")
        require_int(config, "distributed.process_id", 0, n - 1)
    for setting in ("initialization_timeout_s", "heartbeat_timeout_s", "shutdown_timeout_s",
                    "barrier_timeout_s"):
        value = dist.get(setting)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not value > 0):
            raise ConfigError(f"distributed.{setting} must be a positive number of seconds, got "
                              f"{value!r}; set {_flag('distributed.' + setting)}=N")


def check_archs(family, config, archs) -> None:
    """The benchmark against the settings: canonical ids unique (0 and "0" are one id),
    num_archs within the benchmark, seq_len within every architecture's positions."""
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


def load_archs(family, config) -> List:
    """The benchmark's architectures after `validate_common` and `check_archs`."""
    validate_common(config)
    archs = family.load_benchmark(config)
    check_archs(family, config, archs)
    return archs
