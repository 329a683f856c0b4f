"""Atomic JSON checkpoints for long searches (write to a temp file, then rename)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional


def save_json(path: Path, payload: dict, **dump_kwargs) -> None:
    """Writes `payload` so that an interruption (or a reader in another process) sees either the
    old or the new file, never half. dump_kwargs go to json.dump (indent, default)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(payload, f, **dump_kwargs)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def load_json(path: Path) -> Optional[dict]:
    """The checkpoint at `path`, or None if there is none."""
    path = Path(path)
    if not path.exists():
        return None
    with open(path) as f:
        return json.load(f)


def read_jsonl(path: Path) -> list:
    """The records of an append-only JSON-lines log; a last line cut by an interruption is skipped."""
    path = Path(path)
    records = []
    if path.exists():
        with open(path) as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return records
