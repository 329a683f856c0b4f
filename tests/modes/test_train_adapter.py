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


@pytest.mark.slow  # three processes, each compiling the training step: minutes on a shared CPU
def test_kill_9_then_rerun_gives_the_uninterrupted_losses(supernet, tmp_path):  # noqa: F811
    """A real SIGKILL of the CLI mid-run; the rerun resumes from the last checkpoint and ends with
    the same per-step losses and adapter as a run never interrupted."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from flax import serialization

    root = Path(__file__).resolve().parents[2]
    _, _, gguf, bench = supernet

    def command(run):
        return [sys.executable, "-m", "lpzero_jax.main", "--config=experiments/smollm.py",
                "--config.mode=train_adapter", f"--config.workdir={tmp_path / run}", f"--config.gguf_path={gguf}",
                f"--config.benchmark_file={bench}", "--config.batch_size=2", "--config.seq_len=16",
                "--config.compilation_cache_dir=", "--config.adapter.steps=30", "--config.adapter.batch_size=2",
                "--config.adapter.seq_len=16", "--config.adapter.warmup_steps=2",
                "--config.adapter.checkpoint_every=4", "--config.adapter.log_every=1",
                "--config.adapter.eval_windows=2", "--config.adapter.eval_seq_len=16",
                "--config.adapter.eval_archs=full", f"--config.adapter.cache_dir={tmp_path / 'cache'}"]

    env = dict(os.environ, PYTHONPATH=str(root))
    whole = subprocess.run(command("whole"), cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert whole.returncode == 0, whole.stderr[-2000:]
    log = tmp_path / "killed.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(command("killed"), cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.time() + 900
        while "step 10/30" not in log.read_text() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert "step 10/30" in log.read_text() and "step 30/30" not in log.read_text()
    resumed = subprocess.run(command("killed"), cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming at step" in resumed.stderr

    def state(run):
        return serialization.msgpack_restore((tmp_path / run / "adapter_checkpoint.msgpack").read_bytes())

    a, b = state("whole"), state("killed")
    assert a["step"] == b["step"] == 30
    np.testing.assert_array_equal(a["losses"], b["losses"])
    np.testing.assert_array_equal(a["adapter"]["layer_1"]["mlp"]["gate_proj"]["lora_b"],
                                  b["adapter"]["layer_1"]["mlp"]["gate_proj"]["lora_b"])
