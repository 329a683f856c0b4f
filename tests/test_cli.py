"""The `lpzero` console script: shipped configs by name, otherwise `python -m lpzero_jax.main`."""

import json
import subprocess
import sys
from pathlib import Path

from lpzero_jax.cli import resolve_config_argv
from lpzero_jax.configs import config_path

TINY = Path(__file__).resolve().parent / "benchmarks" / "data" / "gpt2_tiny.jsonl"


def test_config_names_become_the_shipped_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["lpzero", "--config=gpt2", "--config.mode=rank", "--config.proxies=params"]
    assert resolve_config_argv(argv) == ["lpzero", f"--config={config_path('gpt2')}"] + argv[2:]
    assert resolve_config_argv(["lpzero", "--config=llama:x"])[1] == f"--config={config_path('llama')}:x"
    assert resolve_config_argv(["lpzero", "--config=my/own.py"])[1] == "--config=my/own.py"
    (tmp_path / "gpt2").write_text("")  # a file of that name here wins: it is a path
    assert resolve_config_argv(["lpzero", "--config=gpt2"])[1] == "--config=gpt2"


def test_console_script_ranks_an_own_benchmark(tmp_path):
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "lpzero_jax.cli", "--config=gpt2", "--config.mode=rank",
                    f"--config.benchmark_file={TINY}", "--config.proxies=params",
                    "--config.seq_len=64",  # the benchmark has 64 positions
                    f"--config.workdir={out}", "--config.compilation_cache_dir="],
                   check=True, cwd=Path(__file__).resolve().parent.parent, capture_output=True)
    ranking = json.loads((out / "ranking.json").read_text())
    assert ranking["params"]["spearman_rho"] == 1.0 and ranking["params"]["n"] == 7
