"""The package's structure, checked with the ecosystem's tools: import-linter's contracts in setup.cfg
(layers from the CLI down to the leaf utilities, no import cycles) and ruff's lint (ruff.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    tool = shutil.which("lint-imports")
    if tool is None:
        pytest.skip("import-linter is not installed (pip install '.[test]')")
    return _run([tool, str(cwd / "setup.cfg")], cwd)


def test_the_import_contracts_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_layer_contract_by_name(tmp_path):
    """A newcomer who makes a model import a mode gets a failing check naming the rule."""
    shutil.copytree(ROOT / "lpzero_jax", tmp_path / "lpzero_jax",
                    ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copy(ROOT / "setup.cfg", tmp_path / "setup.cfg")
    init = tmp_path / "lpzero_jax" / "models" / "init.py"
    init.write_text(init.read_text() + "\nfrom lpzero_jax.modes import MODES  # noqa: E402,F401\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "lpzero_jax.models is not allowed to import lpzero_jax.modes" in result.stdout
    assert "lpzero_jax.models.init -> lpzero_jax.modes" in result.stdout


def test_ruff_finds_nothing():
    if shutil.which("ruff") is None and _run([sys.executable, "-m", "ruff", "--version"], ROOT).returncode:
        pytest.skip("ruff is not installed (pip install '.[test]')")
    result = _run([sys.executable, "-m", "ruff", "check", "."], ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
