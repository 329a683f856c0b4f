"""The input store: files carry their arch id, fingerprint and checksum; a wrong or damaged file is
recomputed (with a warning) in every mode; data files enter the key by content."""

import shutil

import numpy as np
import pytest

from lpzero_jax import inputs
from lpzero_jax.families import get_family
from lpzero_jax.input_store import InputStore, collect_inputs, fingerprint_fields
from tests.conftest import tiny_config


def _fake(seed):
    rng = np.random.default_rng(seed)
    values = {n: rng.standard_normal((2, 3, 8)).astype(np.float32) for n in inputs.INPUT_NAMES}
    counts = {n: np.full((2, 3), 100, np.int64) for n in inputs.INPUT_NAMES}
    return inputs.CompactInputs(values, counts)


def test_a_file_is_verified_against_its_header_and_checksum(tmp_path):
    path = tmp_path / "0.npz"
    _fake(0).save(path, {"arch_id": "0", "fingerprint": "abc"})
    back = inputs.CompactInputs.load(path, {"arch_id": "0", "fingerprint": "abc"})
    np.testing.assert_array_equal(back.values["G"], _fake(0).values["G"])
    with pytest.raises(inputs.CacheFileError, match="holds arch_id '0', expected '3'"):
        inputs.CompactInputs.load(path, {"arch_id": "3"})
    with np.load(path) as data:  # same header, other arrays: the checksum no longer matches
        arrays = {k: data[k] for k in data.files}
    arrays["values_G"] = arrays["values_G"] + 1
    np.savez(path, **arrays)
    with pytest.raises(inputs.CacheFileError, match="checksum"):
        inputs.CompactInputs.load(path)


def _store_and_archs(tmp_path, n=3):
    config = tiny_config(num_archs=n, arch_reading="pytorch_reference")
    config.inputs.cache_dir = str(tmp_path / "inputs_cache")
    family = get_family("flexibert")
    archs = family.load_benchmark(config)
    return config, family, archs, InputStore(config, tmp_path), family.make_batch(config)


def test_another_archs_file_and_a_damaged_file_are_recomputed(tmp_path, caplog):
    """Search mode (collect_inputs): arch 2's file copied over arch 0's and a truncated file for
    arch 1 are both recomputed, never used, never a crash about several hosts."""
    config, family, archs, store, batch = _store_and_archs(tmp_path)
    first, _ = collect_inputs(store, family, archs, config, batch, needed=("W",))
    shutil.copy(store.path(2, "weights"), store.path(0, "weights"))
    damaged = store.path(1, "weights")
    damaged.write_bytes(damaged.read_bytes()[:100])
    again, _ = collect_inputs(store, family, archs, config, batch, needed=("W",))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.values["W"], b.values["W"])
    assert "holds arch_id '2', expected '0'" in caplog.text
    assert str(damaged) in caplog.text
    third, _ = collect_inputs(store, family, archs, config, batch, needed=("W",))  # repaired files
    np.testing.assert_array_equal(third[0].values["W"], first[0].values["W"])
    assert not np.array_equal(first[0].values["W"], first[2].values["W"])


def test_unsafe_ids_stay_inside_the_cache_folder(tmp_path):
    config, family, archs, store, batch = _store_and_archs(tmp_path / "cache", n=1)
    from dataclasses import replace

    arch = replace(archs[0], arch_id="../../escaped")
    got, _ = collect_inputs(store, family, [arch], config, batch, needed=("W",))
    written = [p for p in tmp_path.rglob("*.npz")]
    assert len(written) == 1 and written[0].parent == store.dir
    assert not (tmp_path / "escaped.weights.npz").exists()


def test_corpus_content_not_path_is_in_the_cache_key(tmp_path, data_root):
    corpus = data_root / "wikitext-2" / "valid.txt"
    copy = tmp_path / "copy.txt"
    shutil.copy(corpus, copy)
    # the corpus named explicitly: on a bare install the default is the package's compressed copy
    base = fingerprint_fields(tiny_config(corpus_file=str(corpus)))
    assert fingerprint_fields(tiny_config(corpus_file=str(copy))) == base  # same bytes
    copy.write_text(corpus.read_text().replace(" the ", " a ", 50))
    changed = fingerprint_fields(tiny_config(corpus_file=str(copy)))
    assert changed["data"]["corpus"] != base["data"]["corpus"]
    assert inputs.inputs_fingerprint(changed) != inputs.inputs_fingerprint(base)


def test_train_mode_is_in_the_cache_key_and_eval_keys_are_unchanged(data_root):
    corpus = str(data_root / "wikitext-2" / "valid.txt")
    base = fingerprint_fields(tiny_config(corpus_file=corpus))
    assert "train_mode" not in base  # eval mode keeps the fingerprints of existing caches
    train = tiny_config(corpus_file=corpus)
    train.train_mode = True
    assert inputs.inputs_fingerprint(fingerprint_fields(train)) != inputs.inputs_fingerprint(base)


def test_progress_eta_leaves_the_compiling_first_arch_out():
    from lpzero_jax.input_store import eta_text

    assert eta_text([120.0], 9) == ""  # the first one compiled: no estimate from it
    assert eta_text([120.0, 2.0, 4.0, 3.0], 10) == ", ETA 30s"  # median of the steady ones
    assert eta_text([120.0, 2.0], 0) == ""


def test_the_cache_folder_is_the_users_unless_set_or_multi_process(tmp_path, user_cache):
    from lpzero_jax.input_store import cache_root

    config = tiny_config()
    assert cache_root(config, tmp_path / "w") == user_cache / "inputs"
    config.distributed.num_processes = 2  # the hosts share the workdir, not their home folders
    assert cache_root(config, tmp_path / "w") == tmp_path / "w" / "inputs_cache"
    config.inputs.cache_dir = str(tmp_path / "mine")
    assert cache_root(config, tmp_path / "w") == tmp_path / "mine"


def test_a_rank_in_a_new_workdir_reuses_the_inputs_another_extracted(tmp_path, user_cache,
                                                                     monkeypatch):
    """The issue's probe: `lz.rank` in a new workdir re-extracted every architecture. Now the
    second run shares the first's cache (by default) and extracts nothing; same values."""
    import lpzero_jax as lz

    extracted = []
    real = inputs.extract_proxy_inputs
    monkeypatch.setattr(inputs, "extract_proxy_inputs",
                        lambda *a, **k: extracted.append(1) or real(*a, **k))
    kw = dict(proxies="params,add(abs(W),log(W))", num_archs=2,
              overrides={"seed": 0, "batch_size": 2, "seq_len": 16, "compilation_cache_dir": "",
                         "inputs.sample_size": 256, "arch_reading": "pytorch_reference"})
    first = lz.rank("flexibert", workdir=tmp_path / "a", **kw)
    assert len(extracted) == 2
    second = lz.rank("flexibert", workdir=tmp_path / "b", **kw)
    assert len(extracted) == 2  # nothing extracted again
    assert second.scores == first.scores
    assert len(list((user_cache / "inputs").rglob("*.npz"))) == 2
    assert not list(tmp_path.rglob("*.npz"))  # nothing inside the workdirs
