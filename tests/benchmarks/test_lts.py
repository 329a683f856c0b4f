"""LTS benchmark reader: the shared 200-arch directory, and errors on hand-made broken copies."""

import shutil

import pytest
import yaml

from lpzero_jax.benchmarks.base import BenchmarkFormatError
from lpzero_jax.benchmarks.lts import DEFAULT_DIR, PARAMS_COLUMNS, find_model_configs, load_lts

CONFIG = {
    "n_layer": 2, "d_model": 64, "d_embed": 128, "n_head": [2, 4], "d_inner": [100, 200],
    "n_token": 50264, "div_val": 4, "cutoffs": [19997, 39997, 199997, 50264], "tie_weight": True,
    "tie_projs": [False, True, True, True], "tgt_len": 192, "weight_init_std": 0.02,
    "proj_init_std": 0.01, "pre_lnorm": False, "primer_square": False,
}


@pytest.fixture(scope="module")
def real_dir(data_root):
    return data_root / DEFAULT_DIR


def make_benchmark(root, ids=((0, 0), (0, 1), (2, 0), (10, 3)), config=CONFIG, params=True):
    """A small LTS directory: one model_config.yaml per (i, k), ppl and params summaries."""
    ppl, summary = {}, {}
    for n, (i, k) in enumerate(ids):
        d = root / f"config_{i}" / f"j{k}"
        d.mkdir(parents=True)
        (d / "model_config.yaml").write_text(yaml.safe_dump(config))
        ppl[f"config_{i}_j{k}"] = {"valid_ppl": 30.0 + n, "test_ppl": 31.0 + n}
        summary[f"config_{i}_j{k}"] = {c: float(1000 + n) for c in PARAMS_COLUMNS}
    (root / "ppl_summary.yaml").write_text(yaml.safe_dump(ppl))
    if params:
        (root / "params_summary.yaml").write_text(yaml.safe_dump(summary))
    return root


def test_real_benchmark_has_200_archs_in_numeric_order(real_dir):
    archs = load_lts(real_dir)
    assert len(archs) == 200
    ids = [a.arch_id for a in archs]
    assert ids[:3] == ["config_0_j0", "config_0_j1", "config_0_j2"]
    assert ids[10] == "config_1_j0" and ids[20] == "config_2_j0" and ids[-1] == "config_19_j9"
    assert len(set(ids)) == 200
    first = archs[0]
    assert first.score == pytest.approx(-45.022968707221274)
    assert first.extra["valid_ppl"] == pytest.approx(45.022968707221274)
    assert first.extra["params"] == {"AdaEmb": 6631088, "Attn": 330240, "FFN": 1457316,
                                     "nonembedding": 1790372, "total": 8505006}
    c = first.config
    assert c["n_head"] == (2, 4, 4, 8, 8) and c["d_inner"] == (1071, 640, 1286, 800, 1871)
    assert (c["d_model"], c["d_embed"], c["div_val"], c["n_layer"]) == (128, 256, 4, 5)
    assert c["cutoffs"] == (19997, 39997, 199997, 50264) and c["tgt_len"] == 192


def test_num_archs_takes_the_first_in_order(real_dir):
    assert [a.arch_id for a in load_lts(real_dir, num_archs=12)][-2:] == ["config_1_j0", "config_1_j1"]


def test_any_directory_with_the_layout(tmp_path):
    archs = load_lts(make_benchmark(tmp_path))
    assert [a.arch_id for a in archs] == ["config_0_j0", "config_0_j1", "config_2_j0", "config_10_j3"]
    assert [a.score for a in archs] == [-30.0, -31.0, -32.0, -33.0]
    assert archs[3].extra["params"]["total"] == 1003
    assert archs[0].extra["ppl"]["test_ppl"] == 31.0


def test_params_summary_is_optional(tmp_path):
    archs = load_lts(make_benchmark(tmp_path, params=False))
    assert len(archs) == 4 and "params" not in archs[0].extra


def test_unrelated_entries_are_ignored(tmp_path):
    root = make_benchmark(tmp_path)
    (root / "notes").mkdir()
    (root / "config_0" / "logs").mkdir()
    assert len(find_model_configs(root)) == 4


def test_missing_ppl_summary_names_the_file(tmp_path):
    root = make_benchmark(tmp_path)
    (root / "ppl_summary.yaml").unlink()
    with pytest.raises(BenchmarkFormatError, match="ppl_summary.yaml: file is missing"):
        load_lts(root)


def test_missing_model_config_names_the_file(tmp_path):
    root = make_benchmark(tmp_path)
    (root / "config_2" / "j0" / "model_config.yaml").unlink()
    with pytest.raises(BenchmarkFormatError, match=r"config_2/j0/model_config.yaml: file is missing"):
        load_lts(root)


def test_malformed_yaml_names_the_file(tmp_path):
    root = make_benchmark(tmp_path)
    (root / "config_0" / "j1" / "model_config.yaml").write_text("n_layer: [1, 2\n  d_model: :\n")
    with pytest.raises(BenchmarkFormatError, match=r"config_0/j1/model_config.yaml: not valid YAML"):
        load_lts(root)


@pytest.mark.parametrize("change, message", [
    ({"n_layer": None}, "missing field 'n_layer'"),
    ({"d_inner": [100]}, "d_inner has 1 entries for n_layer 2"),
    ({"n_head": [3, 4]}, "not a multiple of n_head"),
    ({"cutoffs": [39997, 19997, 50264]}, "not increasing"),
    ({"tie_weight": "yes"}, "tie_weight must be true or false"),
    ({"primer_square": True}, "primer_square: true is not supported"),
])
def test_bad_model_config_fields(tmp_path, change, message):
    config = dict(CONFIG)
    for k, v in change.items():
        if v is None:
            config.pop(k)
        else:
            config[k] = v
    root = make_benchmark(tmp_path, ids=((0, 0),), config=config)
    with pytest.raises(BenchmarkFormatError, match=message):
        load_lts(root)


def test_missing_ground_truth_entry(tmp_path):
    root = make_benchmark(tmp_path)
    ppl = yaml.safe_load((root / "ppl_summary.yaml").read_text())
    del ppl["config_10_j3"]
    (root / "ppl_summary.yaml").write_text(yaml.safe_dump(ppl))
    with pytest.raises(BenchmarkFormatError, match="ppl_summary.yaml: no entry for config_10_j3"):
        load_lts(root)


def test_incomplete_params_summary_row(tmp_path):
    root = make_benchmark(tmp_path)
    params = yaml.safe_load((root / "params_summary.yaml").read_text())
    del params["config_0_j1"]["Attn"]
    (root / "params_summary.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(BenchmarkFormatError, match="params_summary.yaml entry config_0_j1: missing field 'Attn'"):
        load_lts(root)


def test_empty_or_missing_directory(tmp_path):
    with pytest.raises(BenchmarkFormatError, match="no config_<i>/j<k>/model_config.yaml"):
        load_lts(tmp_path)
    with pytest.raises(BenchmarkFormatError, match="does not exist"):
        load_lts(tmp_path / "nowhere")


def test_copy_of_real_configs_loads(tmp_path, real_dir):
    """Two real configs copied with their summaries: the same Arch as from the shared directory."""
    for i, k in ((3, 1), (12, 5)):
        shutil.copytree(real_dir / f"config_{i}" / f"j{k}", tmp_path / f"config_{i}" / f"j{k}")
    for name in ("ppl_summary.yaml", "params_summary.yaml"):
        shutil.copy(real_dir / name, tmp_path / name)
    archs = load_lts(tmp_path)
    real = {a.arch_id: a for a in load_lts(real_dir)}
    assert [a.arch_id for a in archs] == ["config_3_j1", "config_12_j5"]
    assert all(a == real[a.arch_id] for a in archs)


def test_packaged_compact_file_yields_the_directory_archs(real_dir):
    from lpzero_jax.benchmarks.lts import load_lts_compact
    from lpzero_jax.paths import PACKAGE_DATA, PACKAGED

    compact = load_lts_compact(PACKAGE_DATA / PACKAGED[DEFAULT_DIR])
    assert compact == load_lts(real_dir)
    assert len(compact) == 200 and compact[0].extra["params"]["total"] == 8505006
    assert load_lts_compact(PACKAGE_DATA / PACKAGED[DEFAULT_DIR], 12) == load_lts(real_dir, 12)


def test_compact_round_trip_of_a_small_directory(tmp_path):
    import gzip
    import json

    from lpzero_jax.benchmarks.lts import load_lts_compact, lts_to_compact, write_lts_dir

    src = make_benchmark(tmp_path / "src")
    data = lts_to_compact(src)
    out = tmp_path / "b.json.gz"
    out.write_bytes(gzip.compress(json.dumps(data).encode()))
    assert load_lts_compact(out) == load_lts(src)
    assert load_lts(write_lts_dir(data, tmp_path / "back")) == load_lts(src)
    data["format"] = "other/1"
    out.write_bytes(gzip.compress(json.dumps(data).encode()))
    with pytest.raises(BenchmarkFormatError, match="is not 'lpzero_jax.lts_compact/1'"):
        load_lts_compact(out)
