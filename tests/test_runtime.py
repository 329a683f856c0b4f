"""Process-wide runtime helpers."""

import sys

import pytest

from lpzero_jax import runtime


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim and /proc")
def test_host_memory_is_trimmed_only_past_the_bound():
    assert runtime.resident_bytes() > 0
    assert runtime.release_host_memory(growth=0.0, floor_bytes=0) is True  # always past the bound
    assert runtime.release_host_memory(growth=1e9, floor_bytes=1 << 50) is False



def test_growth_zero_trims_past_the_floor_whatever_the_last_trim_left(monkeypatch):
    """The last trim's resident size is the growth bound's baseline; one taken while a large
    architecture's tensors were live must not stop the between-architecture trim of rank."""
    trims = []
    monkeypatch.setattr(runtime, "_LIBC", type("Libc", (), {"malloc_trim": lambda self, n: trims.append(n)})())
    monkeypatch.setattr(runtime, "_TRIMMED_AT", 6 << 30)
    monkeypatch.setattr(runtime, "resident_bytes", lambda: 5 << 30)
    assert runtime.release_host_memory(growth=1.0, floor_bytes=2 << 30) is False and trims == []
    assert runtime.release_host_memory(growth=0.0, floor_bytes=2 << 30) is True and trims == [0]
    assert runtime._TRIMMED_AT == 5 << 30  # the new baseline
    monkeypatch.setattr(runtime, "resident_bytes", lambda: 1 << 30)
    assert runtime.release_host_memory(growth=0.0, floor_bytes=2 << 30) is False  # below the floor

def test_the_user_cache_folder_is_lpzero_cache_then_xdg_then_home(tmp_path, monkeypatch):
    """One helper places both caches (compiled programs, proxy inputs)."""
    monkeypatch.setenv("LPZERO_CACHE", str(tmp_path / "mine"))
    assert runtime.user_cache_dir("inputs") == tmp_path / "mine" / "inputs"
    monkeypatch.delenv("LPZERO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert runtime.user_cache_dir("xla") == tmp_path / "xdg" / "lpzero_jax" / "xla"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert runtime.user_cache_dir("inputs") == tmp_path / "home" / ".cache" / "lpzero_jax" / "inputs"


def test_the_compilation_cache_defaults_to_the_user_cache_folder(monkeypatch, user_cache):
    """compilation_cache_dir None (the configs' default) -> user_cache_dir('xla'); '' -> off."""
    seen = {}
    monkeypatch.setattr(runtime.jax.config, "update", lambda k, v: seen.__setitem__(k, v))
    runtime.configure_compilation_cache("")
    assert seen == {}
    runtime.configure_compilation_cache(None)
    assert seen["jax_compilation_cache_dir"] == str(user_cache / "xla")
    assert (user_cache / "xla").is_dir()
