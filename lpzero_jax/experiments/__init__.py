"""The experiment configs shipped with the package: `get_config()` of each family's main job.

`lpzero --config=gpt2` (or flexibert, llama) runs one of them from any directory; the repository's
`experiments/<name>.py` files are the same configs (they import these).
"""

from __future__ import annotations

from pathlib import Path

NAMES = ("flexibert", "gpt2", "llama")


def config_path(name: str) -> Path:
    """The file of a shipped config by family name; KeyError naming the known ones otherwise."""
    if name not in NAMES:
        raise KeyError(f"no shipped config {name!r}; known: {', '.join(NAMES)}")
    return Path(__file__).resolve().parent / f"{name}.py"
