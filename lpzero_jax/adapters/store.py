"""A trained super-adapter on disk: `adapter.msgpack` (the LoRA factors) and `adapter.json` beside it.

The folder is `<cache_dir>/<settings digest>` (default: `runtime.user_cache_dir("adapters")`): a build
artefact that `train_adapter` rebuilds, not package data. adapter.json holds the spec (supernet,
rank set, width ratios, scaling, targets), the training settings, the steps done, the cost and the
sha256 of adapter.msgpack; `load_adapter` refuses a file whose bytes, rank set, supernet or shapes
do not match, naming what differs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Tuple

from flax import serialization

from lpzero_jax import files
from lpzero_jax.adapters.lora import AdapterMismatchError, AdapterSpec, check_adapter
from lpzero_jax.errors import DataFileError
from lpzero_jax.results import load_json

ADAPTER_FILE = "adapter.msgpack"
META_FILE = "adapter.json"


def save_adapter(folder: Path, adapter, spec: AdapterSpec, meta: dict) -> dict:
    """Writes adapter.msgpack, then adapter.json (spec, `meta`, the file's sha256), both atomically;
    returns the JSON written."""
    folder = Path(folder).expanduser()
    blob = serialization.msgpack_serialize(serialization.to_state_dict(adapter))
    with files.atomic_write(folder / ADAPTER_FILE, binary=True) as f:
        f.write(blob)
    record = dict(meta, spec=spec.describe(), file=ADAPTER_FILE, sha256=hashlib.sha256(blob).hexdigest(),
                  bytes=len(blob))
    files.write_json(folder / META_FILE, record, indent=1)
    return record


def load_adapter(folder: Path, spec: AdapterSpec) -> Tuple[dict, dict]:
    """(adapter, its adapter.json) from `folder`, checked against `spec` (AdapterMismatchError
    naming the rank set, supernet or parameter that differs; DataFileError for a damaged file)."""
    folder = Path(folder).expanduser()
    meta = load_json(folder / META_FILE)
    if meta is None or not (folder / ADAPTER_FILE).exists():
        raise DataFileError(f"{folder}: no trained adapter ({META_FILE} and {ADAPTER_FILE}); train one with "
                            "--config.mode=train_adapter")
    blob = (folder / ADAPTER_FILE).read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
        raise DataFileError(f"{folder / ADAPTER_FILE}: its sha256 differs from {META_FILE}'s (damaged or "
                            "replaced): train it again")
    try:
        adapter = serialization.msgpack_restore(blob)
    except Exception as e:  # noqa: BLE001
        raise DataFileError(f"{folder / ADAPTER_FILE}: not readable ({type(e).__name__}): train it again") from None
    check_adapter(adapter, spec, meta.get("spec"), source=str(folder / ADAPTER_FILE))
    return adapter, meta


__all__ = ["ADAPTER_FILE", "META_FILE", "AdapterMismatchError", "load_adapter", "save_adapter"]
