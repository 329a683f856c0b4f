"""Process-wide runtime helpers."""

import sys

import pytest

from lpzero_jax import runtime


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim and /proc")
def test_host_memory_is_trimmed_only_past_the_bound():
    assert runtime.resident_bytes() > 0
    assert runtime.release_host_memory(growth=0.0, floor_bytes=0) is True  # always past the bound
    assert runtime.release_host_memory(growth=1e9, floor_bytes=1 << 50) is False
