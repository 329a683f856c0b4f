"""Where third-party data lives, and reading it whether plain or compressed.

A data file named by its path relative to a data root (e.g. `flexibert/BERT_benchmark.json`) is
resolved, in order:
  1. an explicit path field (`benchmark_file`, `benchmark_dir`, `corpus_file`, ...): must exist;
  2. `data_root` (config field), else `$LPZERO_DATA`: a directory that must hold the file;
  3. `../shared/data` next to the repository, when it holds the file;
  4. the compressed copy shipped inside the package (`lpzero_jax/data/`, see PACKAGED), so a bare
     `pip install` runs the main job.
A path the user gave that does not exist is an error naming it; there is no silent fallback from
1 or 2 to 3 or 4.
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import os
from pathlib import Path
from typing import Any, Optional, Type

from lpzero_jax.errors import UserError

ENV_DATA_ROOT = "LPZERO_DATA"
_REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DATA = Path(__file__).resolve().parent / "data"

# data-root-relative path -> the packaged copy (relative to PACKAGE_DATA). The GPT-2 benchmark
# directory ships as one compact file (benchmarks/lts.py reads both forms).
PACKAGED = {
    "flexibert/BERT_benchmark.json": "flexibert/BERT_benchmark.json.gz",
    "gpt2_wt103/random_GPT2_wt103": "gpt2_wt103/random_GPT2_wt103.json.gz",
    "wikitext-2/valid.txt": "wikitext-2/valid.txt.xz",
    "wikitext-2/test.txt": "wikitext-2/test.txt.xz",
}
BERT_VOCAB = PACKAGE_DATA / "bert_uncased" / "vocab.txt.gz"


class DataNotFoundError(UserError, FileNotFoundError):
    """A data file or folder the run needs is missing; the message says where it was looked for."""


def default_data_root() -> Path:
    """../shared/data next to the repository (it may not exist, e.g. in a bare install)."""
    return _REPO_ROOT.parent / "shared" / "data"


def data_root(configured: Optional[str] = None) -> Path:
    """Returns the data root: `configured` if given, else $LPZERO_DATA, else <repo>/../shared/data."""
    if configured:
        root = Path(configured).expanduser()
        source = "the data_root config field"
    elif os.environ.get(ENV_DATA_ROOT):
        root = Path(os.environ[ENV_DATA_ROOT]).expanduser()
        source = f"${ENV_DATA_ROOT}"
    else:
        root = default_data_root()
        source = "the default (../shared/data next to the repository)"
    if not root.is_dir():
        raise DataNotFoundError(
            f"data root {root} (from {source}) is not a directory; pass --config.data_root=PATH "
            f"or set {ENV_DATA_ROOT}")
    return root


def packaged_file(relative: str) -> Optional[Path]:
    """The package's compressed copy of a data-root-relative path, or None if none is shipped."""
    name = PACKAGED.get(str(relative).strip("/"))
    return PACKAGE_DATA / name if name and (PACKAGE_DATA / name).is_file() else None


def resolve_data_file(relative: str, configured_root: Optional[str] = None,
                      override: Optional[str] = None) -> Path:
    """The path of a data file or folder, in the order of the module docstring; raises
    DataNotFoundError naming every place looked at when none has it. The result may be a
    compressed file (read it with `open_text` / `read_json`)."""
    if override:
        path = Path(override).expanduser()
        if not path.exists():
            raise DataNotFoundError(f"{path} does not exist (given for {relative!r})")
        return path
    if configured_root or os.environ.get(ENV_DATA_ROOT):
        path = data_root(configured_root) / relative
        if not path.exists():
            raise DataNotFoundError(
                f"{path} does not exist (looked for {relative!r} under the data root you gave; "
                "without data_root / $LPZERO_DATA the copy shipped with the package is used)")
        return path
    shared = default_data_root() / relative
    if shared.exists():
        return shared
    packaged = packaged_file(relative)
    if packaged is not None:
        return packaged
    raise DataNotFoundError(
        f"{relative!r} was not found: not in {default_data_root()} and not shipped with the package; "
        f"pass --config.data_root=PATH or set {ENV_DATA_ROOT}")


def open_text(path: Path) -> io.TextIOBase:
    """Opens a UTF-8 text file for reading, decompressing `.gz` / `.xz` on the fly."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    if path.suffix == ".xz":
        return lzma.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_json(path: Path, error: Type[Exception] = ValueError) -> Any:
    """Parsed JSON of a plain or compressed file; `error` (naming the file) if missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file does not exist")
    try:
        with open_text(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError, lzma.LZMAError) as e:
        raise error(f"{path}: not valid JSON ({e})") from None
