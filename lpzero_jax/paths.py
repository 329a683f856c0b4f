"""Where third-party data lives: a flag, the LPZERO_DATA variable, or ../shared/data next to the repo."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from lpzero_jax.errors import UserError

ENV_DATA_ROOT = "LPZERO_DATA"
_REPO_ROOT = Path(__file__).resolve().parent.parent


class DataNotFoundError(UserError, FileNotFoundError):
    """A data file or folder the run needs is missing; the message says where it was looked for."""


def data_root(configured: Optional[str] = None) -> Path:
    """Returns the data root: `configured` if given, else $LPZERO_DATA, else <repo>/../shared/data."""
    if configured:
        root = Path(configured).expanduser()
        source = "the data_root config field"
    elif os.environ.get(ENV_DATA_ROOT):
        root = Path(os.environ[ENV_DATA_ROOT]).expanduser()
        source = f"${ENV_DATA_ROOT}"
    else:
        root = _REPO_ROOT.parent / "shared" / "data"
        source = "the default (../shared/data next to the repository)"
    if not root.is_dir():
        raise DataNotFoundError(
            f"data root {root} (from {source}) is not a directory; pass --config.data_root=PATH "
            f"or set {ENV_DATA_ROOT}"
        )
    return root


def resolve_data_file(relative: str, configured_root: Optional[str] = None,
                      override: Optional[str] = None) -> Path:
    """Returns `override` if given, else data_root()/relative; raises DataNotFoundError if missing."""
    path = Path(override).expanduser() if override else data_root(configured_root) / relative
    if not path.exists():
        raise DataNotFoundError(f"{path} does not exist (looked for {relative!r})")
    return path
