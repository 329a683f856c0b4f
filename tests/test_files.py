"""Atomic writes, the workdir lock, safe file names and content digests (lpzero_jax.files)."""

import errno
import os

import pytest

from lpzero_jax import files
from lpzero_jax.errors import ConfigError, WorkdirBusyError


def _temp_files(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(files.TMP_SUFFIX)]


def test_atomic_write_keeps_the_old_file_and_no_temp_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "scores.csv"
    files.write_text(target, "old\n")

    def full_disk(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "_sync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        files.write_text(target, "new, longer content\n" * 100)
    assert target.read_text() == "old\n"  # never 0 bytes, never half
    assert _temp_files(tmp_path) == []
    with pytest.raises(ZeroDivisionError):
        with files.atomic_write(target) as f:
            f.write("partial")
            1 / 0
    assert target.read_text() == "old\n" and _temp_files(tmp_path) == []


def test_stale_temp_files_of_a_killed_writer_are_removed(tmp_path):
    (tmp_path / "sub").mkdir()
    stale = tmp_path / "sub" / f".ranking.json.123.abcd{files.TMP_SUFFIX}"
    stale.write_text("{")
    keep = tmp_path / "ranking.json"
    keep.write_text("{}")
    assert files.remove_stale_temp_files(tmp_path) == 1
    assert not stale.exists() and keep.exists()


def test_workdir_lock_is_exclusive_unless_shared(tmp_path):
    with files.workdir_lock(tmp_path):
        with pytest.raises(WorkdirBusyError, match=f"pid {os.getpid()}"):
            with files.workdir_lock(tmp_path):
                pass
        with pytest.raises(WorkdirBusyError):
            with files.workdir_lock(tmp_path, shared=True):
                pass
    with files.workdir_lock(tmp_path, shared=True):
        with files.workdir_lock(tmp_path, shared=True):  # rank shards share the workdir
            with pytest.raises(WorkdirBusyError):
                with files.workdir_lock(tmp_path):
                    pass
    with files.workdir_lock(tmp_path):  # released on exit
        pass


@pytest.mark.parametrize("arch_id", ["../evil", "..", ".", "/abs/path", "a/b", "x.weights", "",
                                     "é", "%2E", "a" * 400])
def test_safe_names_stay_in_their_folder(tmp_path, arch_id):
    name = files.safe_name(arch_id)
    assert "/" not in name and name not in (".", "..") and not name.startswith(".")
    assert (tmp_path / f"{name}.npz").resolve().parent == tmp_path.resolve()
    assert len(name) <= 150


def test_safe_names_are_injective_and_keep_plain_ids():
    ids = ["0", "config_0_j0", "a-b", "a.b", "a%2Eb", "a/b", "a%2Fb", "x" * 300, "x" * 301]
    names = [files.safe_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    assert names[:3] == ["0", "config_0_j0", "a-b"]  # existing cache names unchanged
    assert files.safe_name(0) == files.safe_name("0")  # one canonical id, one name


def test_file_digest_follows_content_not_path(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("same text")
    b.write_text("same text")
    assert files.file_digest(a) == files.file_digest(b)
    b.write_text("other text")
    assert files.file_digest(a) != files.file_digest(b)
    d = tmp_path / "dir"
    (d / "x").mkdir(parents=True)
    (d / "x" / "f.yaml").write_text("1")
    before = files.file_digest(d)
    (d / "x" / "f.yaml").write_text("22")
    assert files.file_digest(d) != before


def test_unwritable_folder_is_a_config_error_naming_the_setting(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="inputs.cache_dir: cannot write in"):
        files.check_writable(blocker / "cache", "inputs.cache_dir")


def test_processes_probing_one_workdir_together_do_not_collide(tmp_path):
    """The hosts of a distributed job check the shared workdir at the same time: each probe file is
    its own (one shared name made one process's unlink fail with ENOENT, seen as 'cannot write')."""
    import threading

    from lpzero_jax.files import check_writable

    errors = []

    def probe():
        try:
            for _ in range(200):
                check_writable(tmp_path, "workdir")
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=probe) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and not list(tmp_path.glob(".write_probe*"))


def _strict(text):
    """json.loads that refuses NaN / Infinity, as most JSON parsers do."""
    import json

    def refuse(name):
        raise ValueError(f"bare {name} in JSON")

    return json.loads(text, parse_constant=refuse)


def test_json_outputs_are_valid_json_with_null_for_undefined_values(tmp_path):
    import numpy as np

    payload = {"rho": float("nan"), "tau": np.float32("nan"), "n": np.int64(3),
               "seconds": [1.5, float("inf"), -np.inf], "ok": np.float64(0.25),
               "scores": np.array([1.0, np.nan])}
    files.write_json(tmp_path / "r.json", payload, indent=2)
    assert _strict((tmp_path / "r.json").read_text()) == {
        "rho": None, "tau": None, "n": 3, "seconds": [1.5, None, None], "ok": 0.25,
        "scores": [1.0, None]}
    files.write_json(tmp_path / "state.json", {"fitness": float("nan")}, exact=True)
    assert "NaN" in (tmp_path / "state.json").read_text()  # a checkpoint keeps its numbers


def test_rank_ranking_json_is_valid_json_when_a_proxy_is_nan(tmp_path):
    from lpzero_jax.benchmarks.base import Arch
    from lpzero_jax.modes.rank import write_outputs

    archs = [Arch(arch_id=i, config={}, score=float(i)) for i in range(4)]
    done = {(str(i), "p"): (float("nan"), 0.1) for i in range(4)}
    write_outputs(archs, ["p"], done, tmp_path)
    ranking = _strict((tmp_path / "ranking.json").read_text())
    assert ranking["p"]["spearman_rho"] is None and ranking["p"]["n"] == 0


def test_a_full_disk_error_names_the_file(tmp_path, monkeypatch):
    def full_disk(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "_sync", full_disk)
    with pytest.raises(OSError) as caught:
        files.write_json(tmp_path / "ranking.json", {"a": 1})
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(tmp_path / "ranking.json")
    assert "ranking.json" in str(caught.value)
