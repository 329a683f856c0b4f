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


def _lpzero(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lpzero_jax.cli", *args], capture_output=True,
                          text=True, cwd=cwd or Path(__file__).resolve().parent.parent, timeout=300)


def test_first_contact_lists_the_configs_and_modes_without_absl_noise():
    for args, status in (((), 2), (("--help",), 0)):
        done = _lpzero(*args)
        text = done.stdout + done.stderr
        assert done.returncode == status, text
        for name in ("flexibert", "gpt2", "llama", "smollm", "rank", "search", "subnet_search"):
            assert f"\n  {name} " in text, (name, text)
        assert "FATAL" not in text and "libtpu" not in text and "Traceback" not in text


def test_command_line_mistakes_are_one_line_user_errors(tmp_path):
    binary = tmp_path / "bench.jsonl"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe" + bytes(range(256)))
    nested = tmp_path / "nested.jsonl"
    nested.write_text("[" * 200_000)
    cases = [
        (("--config=gpt2", "--config.serach.generations=5"), 'Did you mean "search"'),
        (("--config=gpt2", "--config.batch_size=abc"), "--config.batch_size=abc"),
        (("--config=foo",), "shipped configs: flexibert, gpt2"),
        (("--config=gpt2", "--config.mode=rank", f"--config.benchmark_file={binary}",
          f"--config.workdir={tmp_path / 'a'}"), "not a UTF-8 text file"),
        (("--config=gpt2", "--config.mode=rank", f"--config.benchmark_file={nested}",
          f"--config.workdir={tmp_path / 'b'}"), "nested too deeply"),
        (("--config=gpt2", "--config.mode=rank", "--config.proxies=add(" + "log(" * 1000 + "W"
          + ")" * 1000, f"--config.workdir={tmp_path / 'c'}"), "proxies"),
    ]
    for args, named in cases:
        done = _lpzero(*args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (args[-1][:60], done.stderr[-2000:])
        errors = [line for line in lines if line.startswith("lpzero: error:")]
        assert len(errors) == 1 and named in errors[0], (named, done.stderr[-2000:])
        assert "Traceback" not in done.stderr and "FATAL" not in done.stderr
