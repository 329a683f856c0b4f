"""rank's scoring loop (proxies/scoring.py): what it keeps between architectures."""

import jax
import jax.numpy as jnp

from lpzero_jax.engine import staging
from lpzero_jax.proxies import scoring


def test_programs_are_dropped_only_past_the_bound(monkeypatch):
    rss = {"now": 1 << 30}
    dropped = []
    monkeypatch.setattr(scoring.runtime, "resident_bytes", lambda: rss["now"])
    monkeypatch.setattr(scoring.runtime, "release_host_memory", lambda **_: False)
    monkeypatch.setattr(scoring.staging, "clear_programs", lambda: dropped.append(1))
    bound = scoring.ProgramBound(1.0)  # the start: 1 GB
    rss["now"] = (1 << 30) + (1 << 29)
    assert bound.check("a") is False and dropped == []  # 0.5 GB above the start
    rss["now"] = 3 << 30
    assert bound.check("b") is True and dropped == [1] and bound.clears == 1
    assert bound.check("b2") is False  # the floor is now what the drop left (3 GB here)
    rss["now"] = (4 << 30) + 1
    assert bound.check("b3") is True and dropped == [1, 1]
    assert scoring.ProgramBound(None).check("c") is False and dropped == [1, 1]  # None keeps all


def test_clear_programs_empties_the_stage_cache():
    f = staging.cached_jit(("test_clear_programs",), lambda: jax.jit(lambda x: x * 2))
    assert float(f(jnp.ones(()))) == 2.0
    assert staging.compiled_programs() >= 1
    staging.clear_programs()
    assert staging.compiled_programs() == 0 and len(staging._COMPILED) == 0
