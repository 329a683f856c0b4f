"""What every benchmark reader returns: a list of `Arch` (id, architecture config, ground truth)."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence, Union

from lpzero_jax.errors import UserError
from lpzero_jax.paths import read_json

ArchId = Union[int, str]


class BenchmarkFormatError(UserError, ValueError):
    """A benchmark file or entry is malformed; the message names the file and the entry."""


@dataclasses.dataclass(frozen=True)
class Arch:
    """One trained architecture of a benchmark.

    arch_id: the benchmark's own id (FlexiBERT `id`, LTS `config_<i>_j<k>`).
    config: the architecture as plain data, already validated by the reader.
    score: ground truth, higher is better (GLUE average, -validation perplexity, ...).
    extra: reader-specific facts (raw metrics, published parameter counts, ...).
    """

    arch_id: ArchId
    config: Mapping[str, Any]
    score: float
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def require(mapping: Any, key: str, where: str) -> Any:
    """Returns mapping[key] or raises BenchmarkFormatError naming `where`."""
    if not isinstance(mapping, Mapping):
        raise BenchmarkFormatError(f"{where}: expected a mapping, got {type(mapping).__name__}")
    if key not in mapping:
        raise BenchmarkFormatError(f"{where}: missing field {key!r}")
    return mapping[key]


def require_choice(value: Any, allowed: Sequence[Any], what: str, where: str) -> Any:
    """Returns value if it is one of `allowed`, else raises BenchmarkFormatError."""
    if value not in allowed:
        raise BenchmarkFormatError(f"{where}: unknown {what} {value!r}; expected one of {list(allowed)}")
    return value


def require_int(value: Any, what: str, where: str, minimum: int = 1) -> int:
    """Returns value as int if it is an integer >= minimum, else raises BenchmarkFormatError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BenchmarkFormatError(f"{where}: {what} must be an integer >= {minimum}, got {value!r}")
    return value


def require_number(value: Any, what: str, where: str) -> float:
    """Returns value as a finite float, else raises BenchmarkFormatError."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BenchmarkFormatError(f"{where}: {what} must be a finite number, got {value!r}")
    return float(value)


def read_json_file(path) -> Any:
    """The parsed JSON of a benchmark file (plain, .gz or .xz); BenchmarkFormatError naming the file
    if it is missing or not JSON."""

    return read_json(path, BenchmarkFormatError)
