"""scripts/smollm_lonas_bench.py --adapter (ground truth v2) on a tiny GGUF: the subnets it plans,
their perplexity with the adapter merged, resume without recomputing."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

pytest.importorskip("gguf")

from lpzero_jax.adapters.evaluate import subnet_perplexity  # noqa: E402
from lpzero_jax.adapters.lora import AdapterSpec, init_adapter  # noqa: E402
from lpzero_jax.adapters.store import save_adapter  # noqa: E402
from lpzero_jax.families import get_family  # noqa: E402
from lpzero_jax.models.llama_eval import spread_windows  # noqa: E402
from lpzero_jax.models.llama_gguf import gguf_corpus_ids  # noqa: E402
from lpzero_jax.paths import resolve_data_file  # noqa: E402
from tests.families.test_smollm import supernet  # noqa: E402,F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # two subprocesses that tokenize test.txt: minutes on a shared CPU
def test_v2_plans_included_min_and_random_subnets_and_resumes(supernet, tmp_path):  # noqa: F811
    config, params, gguf, bench = supernet
    spec = AdapterSpec(config, rank_choices=(8, 4))
    adapter = jax.tree_util.tree_map(lambda x: x + 0.05, init_adapter(spec, 0))  # non-zero B
    save_adapter(tmp_path / "adapter", adapter, spec, {"digest": "test"})
    out = tmp_path / "v2.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "smollm_lonas_bench.py"), f"--gguf={gguf}",
           f"--adapter={tmp_path / 'adapter'}", f"--include={bench}", f"--out={out}",
           f"--workdir={tmp_path / 'work'}", "--num_total=6", "--windows=2", "--seq_len=16"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    data = json.loads(out.read_text())
    archs = {a["id"]: a for a in data["archs"]}
    assert list(archs) == ["full", "s000", "s001", "min", "r000", "r001"]
    assert archs["s000"]["ffn"] == [32, 48] and archs["s000"]["ranks"] == [8, 8]
    assert archs["min"]["ffn"] == [32, 32] and archs["min"]["ranks"] == [4, 4]
    assert data["adapter"]["sha256"] and data["space"]["rank_choices"] == [8, 4]
    windows = spread_windows(gguf_corpus_ids(str(gguf), str(resolve_data_file("wikitext-2/test.txt"))), 2, 16)
    want = subnet_perplexity(spec, params, adapter, spec.space().min_choice(), windows, get_family("llama"))
    assert archs["min"]["metrics"]["ppl"] == pytest.approx(want["ppl"], rel=1e-5)
    assert len({a["metrics"]["ppl"] for a in archs.values()}) == 6 and all(
        np.isfinite(a["metrics"]["ppl"]) for a in archs.values())
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert again.returncode == 0 and "6 done" in again.stdout
    assert json.loads(out.read_text())["archs"] == data["archs"]
