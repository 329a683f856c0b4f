"""Results I/O of every mode: JSON files (results, checkpoints) and append-only JSON-lines logs.

Whole files are written atomically (`write_json`, from `lpzero_jax.files`): an interruption leaves
the old or the new file, never half of one. Logs are appended record by record (`open_log`) and read
back skipping a line an interruption cut (`read_jsonl`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from absl import logging

from lpzero_jax.errors import DataFileError
from lpzero_jax.files import write_json

__all__ = ["load_json", "numbered_records", "open_log", "read_jsonl", "write_json"]


def load_json(path: Path) -> Optional[dict]:
    """The checkpoint at `path`, or None if there is none; DataFileError naming the file and line
    if it is not valid JSON (it was damaged after it was written: atomic writes never cut one)."""
    path = Path(path)
    if not path.exists():
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataFileError(f"{path} line {e.lineno}: not valid JSON ({e.msg}); the file is damaged: "
                            "delete it to start that part again") from None
    if not isinstance(payload, dict):
        raise DataFileError(f"{path}: expected a JSON object, got {type(payload).__name__}; delete it "
                            "to start that part again")
    return payload


def read_jsonl(path: Path) -> list:
    """The records (dicts) of an append-only JSON-lines log; see `numbered_records`."""
    return [record for _, record in numbered_records(path)]


def numbered_records(path: Path) -> list:
    """The records of an append-only JSON-lines log as (line number, record) pairs.

    A line cut by an interruption (not valid JSON) is skipped with a warning; it is recomputed.
    A valid line that is not a JSON object is a DataFileError naming the file and line.
    """
    path = Path(path)
    records = []
    if not path.exists():
        return records
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                logging.warning("%s line %d: incomplete record (an interrupted write) skipped",
                                path, number)
                continue
            if not isinstance(record, dict):
                raise DataFileError(f"{path} line {number}: expected a JSON object, got {line.strip()[:80]!r}; "
                                    "delete that line (it is recomputed)")
            records.append((number, record))
    return records


def open_log(path: Path):
    """Opens a JSON-lines log for appending (O_APPEND: processes may share it), first ending a line
    that an interrupted write left without its newline, so the next record starts on its own line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a", encoding="utf-8")
    try:
        if f.tell() > 0:
            with open(path, "rb") as r:
                r.seek(-1, 2)
                if r.read(1) != b"\n":
                    f.write("\n")
                    f.flush()
    except BaseException:
        f.close()
        raise
    return f
