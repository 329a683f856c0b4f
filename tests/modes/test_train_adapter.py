"""train_adapter mode on a tiny GGUF supernet: its files, the adapter in the cache folder, resume,
and its settings checked before any work."""

import json

import numpy as np
import pytest

pytest.importorskip("gguf")

from lpzero_jax import workdir  # noqa: E402
from lpzero_jax.adapters.lora import AdapterMismatchError  # noqa: E402
from lpzero_jax.adapters.store import load_adapter  # noqa: E402
from lpzero_jax.errors import ConfigError  # noqa: E402
from lpzero_jax.modes import MODES, train_adapter  # noqa: E402
from tests.families.test_smollm import run_config, supernet  # noqa: E402,F401  (fixture)


def mode_config(supernet, tmp_path, **adapter):  # noqa: F811
    c = run_config(supernet, mode="train_adapter", workdir=str(tmp_path / "run"))
    c.adapter.update(dict(steps=6, batch_size=2, seq_len=16, warmup_steps=2, learning_rate=1e-2,
                          checkpoint_every=2, log_every=1, eval_windows=2, eval_seq_len=16,
                          eval_archs="full,s000", cache_dir=str(tmp_path / "cache")))
    c.adapter.update(adapter)
    return c


def test_mode_trains_saves_and_resumes(supernet, tmp_path):  # noqa: F811
    config = mode_config(supernet, tmp_path, stop_at=4)
    run = tmp_path / "run"
    first = MODES.get("train_adapter")(config, run)
    assert first["cost"]["steps_done"] == 4 and not first["cost"]["complete"]
    config.adapter.stop_at = 0
    done = MODES.get("train_adapter")(config, run)  # resumes at step 4
    result = json.loads((run / "train_adapter.json").read_text())
    assert result["cost"]["steps_done"] == 6 and result["cost"]["complete"]
    assert result["digest"] == first["digest"] == done["digest"]
    assert (run / "loss_curve.png").stat().st_size > 1000
    folder = tmp_path / "cache" / result["digest"]
    spec = train_adapter.adapter_spec(supernet[0], config.adapter)
    adapter, meta = load_adapter(folder, spec)
    assert meta["sha256"] == result["adapter_sha256"] and meta["cost"]["steps_done"] == 6
    assert float(np.abs(adapter["layer_0"]["mlp"]["up_proj"]["lora_b"]).max()) > 0  # trained
    subnets = result["eval"]["subnets"]
    assert set(subnets) == {"full", "s000", "min"}
    assert subnets["full"]["ppl_before"] == 10.0 and subnets["s000"]["ppl_before"] == 11.0  # the benchmark's
    assert subnets["min"]["ppl_before"] is None and np.isfinite(subnets["min"]["ppl_after"])
    assert [l["ffn_width"] for l in subnets["s000"]["layers"]] == [32, 48]
    assert {l["lora_rank"] for l in subnets["min"]["layers"]} == {16}
    # the same adapter loaded for another rank set: refused by name
    other = train_adapter.adapter_spec(supernet[0], dict(config.adapter.to_dict(), rank_choices=(32, 16)))
    with pytest.raises(AdapterMismatchError, match="rank_choices"):
        load_adapter(folder, other)


@pytest.mark.parametrize("setting,value,match", [
    ("rank_choices", (16, 32), "adapter.rank_choices"),
    ("width_ratios", (1.0, 1.5), "adapter.width_ratios"),
    ("sandwich_period", 1, "adapter.sandwich_period"),
    ("steps", 0, "adapter.steps"),
])
def test_bad_settings_are_refused_before_work(supernet, tmp_path, setting, value, match):  # noqa: F811
    config = mode_config(supernet, tmp_path)
    config.adapter[setting] = value
    with pytest.raises(ConfigError, match=match):
        workdir.validate_config(config)


def test_training_on_the_evaluation_text_is_refused(supernet, tmp_path):  # noqa: F811
    config = mode_config(supernet, tmp_path, train_corpus="wikitext-2/test.txt")
    with pytest.raises(ConfigError, match="same file"):
        MODES.get("train_adapter")(config, tmp_path / "run")
