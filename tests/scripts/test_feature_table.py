"""scripts/feature_table.py: a feature table from rank workdirs, partial until every cell is computed."""

import csv
import json

import pytest

from lpzero_jax.configs import shipped_config
from lpzero_jax.families import get_family
from scripts.feature_table import main


def _rank_workdir(path, proxies, values, **overrides):
    """A rank workdir as the rank mode leaves it: config_rank.json and rank_values.jsonl with
    `values` {(arch_id, proxy): (value, seconds)}."""
    config = shipped_config("flexibert")
    config.mode, config.proxies, config.workdir = "rank", proxies, str(path)
    for k, v in overrides.items():
        setattr(config, k, v)
    path.mkdir()
    (path / "config_rank.json").write_text(json.dumps(config.to_dict(), default=str))
    with open(path / "rank_values.jsonl", "w") as f:
        for (arch_id, proxy), (value, seconds) in values.items():
            f.write(json.dumps({"arch_id": arch_id, "proxy": proxy, "value": value,
                                "seconds": seconds}) + "\n")
    return config


def _read(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_merged_runs_give_one_complete_table_with_each_runs_values_and_costs(tmp_path):
    config = shipped_config("flexibert")
    archs = get_family("flexibert").load_benchmark(config)
    ids = [str(a.arch_id) for a in archs]
    _rank_workdir(tmp_path / "a", "params", {(i, "params"): (float(k), 0.5) for k, i in enumerate(ids)})
    _rank_workdir(tmp_path / "b", "zerolm", {(i, "zerolm"): (-float(k), 1.0 + k % 2)
                                             for k, i in enumerate(ids)})
    out = tmp_path / "t" / "flexibert.csv"
    assert main(["--workdir", str(tmp_path / "a"), "--workdir", str(tmp_path / "b"),
                 "--out", str(out)]) == 0
    rows = _read(out)
    assert rows[0] == ["arch_id", "score", "params", "zerolm"]
    assert [r[0] for r in rows[1:]] == ids
    assert float(rows[3][1]) == archs[2].score and float(rows[3][2]) == 2.0
    assert float(rows[3][3]) == -2.0
    cost = json.loads((tmp_path / "t" / "flexibert.cost.json").read_text())
    assert cost["complete"] and cost["missing_values"] == 0
    assert cost["seconds_per_arch"]["zerolm"]["seconds_mean"] == pytest.approx(1.5)
    assert cost["seconds_per_arch"]["zerolm"]["seconds_max"] == 2.0
    assert json.loads((tmp_path / "t" / "flexibert.seconds.json").read_text()) == \
        {"params": 0.5, "zerolm": 1.5}
    assert not (tmp_path / "t" / "flexibert.partial.csv").exists()


def test_a_table_with_gaps_is_written_as_partial_only(tmp_path):
    ids = [str(a.arch_id) for a in get_family("flexibert").load_benchmark(shipped_config("flexibert"))]
    _rank_workdir(tmp_path / "a", "params,zerolm",
                  {(ids[0], "params"): (3.0, 0.1), (ids[1], "zerolm"): (4.0, 0.2)})
    out = tmp_path / "flexibert.csv"
    main(["--workdir", str(tmp_path / "a"), "--out", str(out)])
    assert not out.exists()
    rows = _read(tmp_path / "flexibert.partial.csv")
    assert rows[1][2:] == ["3.0", ""] and rows[2][2:] == ["", "4.0"]
    cost = json.loads((tmp_path / "flexibert.partial.cost.json").read_text())
    assert not cost["complete"] and cost["missing_values"] == 2 * len(ids) - 2
    assert cost["seconds_per_arch"]["params"]["archs"] == 1


def test_runs_of_other_input_settings_are_refused(tmp_path):
    _rank_workdir(tmp_path / "a", "params", {})
    _rank_workdir(tmp_path / "b", "zerolm", {}, batch_size=32)
    with pytest.raises(SystemExit, match="batch_size"):
        main(["--workdir", str(tmp_path / "a"), "--workdir", str(tmp_path / "b"),
              "--out", str(tmp_path / "x.csv")])
