"""The `lpzero` console script: `python -m lpzero_jax.main` that also takes a shipped config by name.

    lpzero --config=gpt2 [--config.mode=rank --config.proxies=params ...]

`--config=NAME` with NAME one of flexibert, gpt2, llama runs the config shipped with the package
(lpzero_jax/configs/NAME.py) from any directory; a path to a config file works as for
`python -m lpzero_jax.main`. Everything else (modes, overrides, outputs) is the same.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import List, Optional

from absl import app, flags

from lpzero_jax import main as entry
from lpzero_jax.configs import NAMES, config_path

_CONFIG_ARG = re.compile(r"^--config=([^:]*)(:.*)?$")


def resolve_config_argv(argv: List[str]) -> List[str]:
    """argv with `--config=NAME` (a shipped config's name, no such file here) -> its file path."""
    out = list(argv)
    for i, arg in enumerate(out):
        m = _CONFIG_ARG.match(arg)
        if m and m.group(1) in NAMES and not Path(m.group(1)).exists():
            out[i] = f"--config={config_path(m.group(1))}{m.group(2) or ''}"
    return out


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of the `lpzero` script."""
    flags.mark_flags_as_required(["config"])
    app.run(entry.main, argv=resolve_config_argv(sys.argv if argv is None else argv))


if __name__ == "__main__":
    main()
