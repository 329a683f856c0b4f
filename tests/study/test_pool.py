"""Which architectures a study's pool holds: all, the cached ones, or those of an id file."""

import numpy as np
import pytest

from lpzero_jax.benchmarks.base import Arch
from lpzero_jax.errors import ConfigError
from lpzero_jax.study.pool import choose_archs


class Store:
    def __init__(self, cached):
        self.cached = set(cached)

    def has(self, arch_id):
        return str(arch_id) in self.cached


def archs():
    return [Arch(arch_id=i, config={}, score=float(i)) for i in (5, 1, 7, 3)]


def test_pools_keep_benchmark_order(tmp_path):
    assert [a.arch_id for a in choose_archs(archs(), Store([]), "all")] == [5, 1, 7, 3]
    assert [a.arch_id for a in choose_archs(archs(), Store(["3", "5"]), "cached")] == [5, 3]
    ids = tmp_path / "ids.txt"
    ids.write_text("# pool\n3\n\n7  # held out\n")
    assert [a.arch_id for a in choose_archs(archs(), Store([]), str(ids))] == [7, 3]


def test_unknown_ids_and_missing_files_are_named(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("3\n99\n")
    with pytest.raises(ConfigError, match="1 ids are not in the benchmark \\(first '99'\\)"):
        choose_archs(archs(), Store([]), str(ids))
    with pytest.raises(ConfigError, match="no such file; give 'all', 'cached'"):
        choose_archs(archs(), Store([]), str(tmp_path / "none.txt"))


def test_references_are_counted_once_and_only_when_read():
    from lpzero_jax.study.pool import LazyReferences

    calls = []

    def count():
        calls.append(1)
        return {"params": np.array([3.0, 1.0])}

    refs = LazyReferences(count)
    assert calls == []  # loading a pool counts nothing
    assert refs["params"].tolist() == [3.0, 1.0] and list(refs) == ["params"] and len(refs) == 1
    assert dict(refs.items())["params"].tolist() == [3.0, 1.0] and calls == [1]
