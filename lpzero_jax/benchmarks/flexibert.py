"""Reader of the FlexiBERT benchmark (NAS-Bench-BERT, `flexibert/BERT_benchmark.json`).

Each entry has `id`, `scores.glue` (ground truth) and `hparams.model_hparam_overrides` with
`hidden_size` and `nas_config.encoder_layers[]`. Every field the model needs is validated here,
so a malformed entry fails with its index and id instead of deep inside model construction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from lpzero_jax.benchmarks.base import (
    Arch,
    BenchmarkFormatError,
    require,
    require_choice,
    require_int,
    require_number,
)
from lpzero_jax.paths import read_json

DEFAULT_FILE = "flexibert/BERT_benchmark.json"

OPERATION_PARAMETERS = {"SA": ("SDP", "WMA"), "LT": ("DFT", "DCT"), "DSC": (5, 9)}
HIDDEN_SIZES = (128, 256)


def parse_layer(layer: Any, where: str) -> Dict[str, Any]:
    """Validates one `encoder_layers[]` entry and returns it as a plain dict."""
    op_type = require_choice(require(layer, "operation_type", where), tuple(OPERATION_PARAMETERS),
                             "operation_type", where)
    op_param = require_choice(require(layer, "operation_parameter", where),
                              OPERATION_PARAMETERS[op_type], f"operation_parameter for {op_type}", where)
    return {
        "operation_type": op_type,
        "operation_parameter": op_param,
        "num_operation_heads": require_int(require(layer, "num_operation_heads", where),
                                           "num_operation_heads", where),
        "feed_forward_dimension": require_int(require(layer, "feed_forward_dimension", where),
                                              "feed_forward_dimension", where),
        "num_feed_forward": require_int(require(layer, "num_feed_forward", where),
                                        "num_feed_forward", where),
    }


def parse_entry(entry: Any, index: int, source: str) -> Arch:
    """Validates one benchmark entry and returns it as an Arch (score = GLUE average)."""
    where = f"{source} entry #{index}"
    arch_id = require(entry, "id", where)
    where = f"{source} entry #{index} (id {arch_id!r})"
    overrides = require(require(entry, "hparams", where), "model_hparam_overrides", where)
    layers = require(require(overrides, "nas_config", where), "encoder_layers", where)
    config = parse_overrides(require(overrides, "hidden_size", where), layers, where)
    scores = require(entry, "scores", where)
    glue = require_number(require(scores, "glue", where), "scores.glue", where)
    return Arch(arch_id=arch_id, config=config, score=glue, extra={"scores": dict(scores)})


def parse_overrides(hidden_size: Any, layers: Any, where: str) -> Dict[str, Any]:
    """Validates hidden_size and encoder_layers; returns the Arch config {hidden_size, encoder_layers}."""
    hidden = require_int(hidden_size, "hidden_size", where)
    if not isinstance(layers, list) or not layers:
        raise BenchmarkFormatError(f"{where}: encoder_layers must be a non-empty list")
    parsed = [parse_layer(layer, f"{where} layer {i}") for i, layer in enumerate(layers)]
    for i, layer in enumerate(parsed):
        if hidden % layer["num_operation_heads"]:
            raise BenchmarkFormatError(
                f"{where} layer {i}: hidden_size {hidden} is not a multiple of "
                f"num_operation_heads {layer['num_operation_heads']}")
    return {"hidden_size": hidden, "encoder_layers": parsed}


def load_flexibert(path: Path, num_archs: Optional[int] = None) -> List[Arch]:
    """Reads BERT_benchmark.json (plain or .gz); returns the first `num_archs` entries (all when None)."""

    path = Path(path)
    entries = read_json(path, BenchmarkFormatError)
    if not isinstance(entries, list):
        raise BenchmarkFormatError(f"{path}: expected a JSON list of entries")
    if num_archs is not None:
        entries = entries[:num_archs]
    archs = [parse_entry(e, i, str(path)) for i, e in enumerate(entries)]
    ids = [a.arch_id for a in archs]
    if len(set(ids)) != len(ids):
        raise BenchmarkFormatError(f"{path}: duplicate ids")
    return archs
