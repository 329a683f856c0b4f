"""Reader of the LiteTransformerSearch (LTS) benchmark layout (GPT-2 on WikiText-103).

A benchmark directory holds, for every trained architecture, `config_<i>/j<k>/model_config.yaml`
(the `HfGPT2Flex` hyperparameters), and at its top level `ppl_summary.yaml` (ground truth:
`valid_ppl` per `config_<i>_j<k>`, lower is better) and optionally `params_summary.yaml` (the
parameter counts LTS published: `AdaEmb`, `Attn`, `FFN`, `nonembedding`, `total`).

The same benchmark also reads from one compact file (`load_lts_compact`, format
`lpzero_jax.lts_compact/1`: every YAML value of the directory in one JSON object, gzip-compressed),
which is how the package ships the 200 LTS architectures; `load_lts_path` takes either form.

Every field the model needs is validated here and returned as plain data, so a malformed file fails
with its path instead of deep inside model construction. Architectures come in a deterministic order:
numerically by i, then by k (config_2 before config_10).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from lpzero_jax.benchmarks.base import (
    Arch,
    BenchmarkFormatError,
    require,
    require_int,
    require_number,
)
from lpzero_jax.paths import read_json

DEFAULT_DIR = "gpt2_wt103/random_GPT2_wt103"
MODEL_CONFIG = "model_config.yaml"
PPL_SUMMARY = "ppl_summary.yaml"
PARAMS_SUMMARY = "params_summary.yaml"
PARAMS_COLUMNS = ("AdaEmb", "Attn", "FFN", "nonembedding", "total")

_CONFIG_DIR = re.compile(r"^config_(\d+)$")
_JOB_DIR = re.compile(r"^j(\d+)$")

# Fields HfGPT2Flex accepts but that we only support at one value (all 200 LTS configs use it).
_UNSUPPORTED_IF_TRUE = ("primer_square", "primer_conv")


def read_yaml(path: Path) -> Any:
    """Parsed YAML of `path`; BenchmarkFormatError naming the file if missing or malformed."""
    if not path.is_file():
        raise BenchmarkFormatError(f"{path}: file is missing")
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise BenchmarkFormatError(f"{path}: not valid YAML ({e})") from None


def arch_id_of(config_index: int, job_index: int) -> str:
    return f"config_{config_index}_j{job_index}"


def find_model_configs(directory: Path) -> List[Tuple[str, Path]]:
    """(arch id, model_config.yaml path) of every `config_<i>/j<k>/`, sorted by (i, k)."""
    found = []
    for config_dir in directory.iterdir():
        m = _CONFIG_DIR.match(config_dir.name)
        if not m or not config_dir.is_dir():
            continue
        for job_dir in config_dir.iterdir():
            j = _JOB_DIR.match(job_dir.name)
            if not j or not job_dir.is_dir():
                continue
            found.append(((int(m.group(1)), int(j.group(1))), job_dir / MODEL_CONFIG))
    found.sort(key=lambda item: item[0])
    return [(arch_id_of(i, k), path) for (i, k), path in found]


def _per_layer(value: Any, n_layer: int, what: str, where: str) -> Tuple[int, ...]:
    """An int or a list of n_layer ints -> tuple of n_layer positive ints (HF `_map_to_list`)."""
    if isinstance(value, list):
        if len(value) != n_layer:
            raise BenchmarkFormatError(f"{where}: {what} has {len(value)} entries for n_layer {n_layer}")
        return tuple(require_int(v, f"{what}[{i}]", where) for i, v in enumerate(value))
    return (require_int(value, what, where),) * n_layer


def _bool(value: Any, what: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise BenchmarkFormatError(f"{where}: {what} must be true or false, got {value!r}")
    return value


def parse_model_config(raw: Any, where: str) -> Dict[str, Any]:
    """Validates one model_config.yaml; returns the fields the GPT-2 flex model uses, as plain data.

    d_embed -1 means d_model (as HfGPT2Config). cutoffs are returned as written (the model cleans
    them the way the reference does); weight/proj init stds default to the reference's 0.02/0.01.
    """
    n_layer = require_int(require(raw, "n_layer", where), "n_layer", where)
    d_model = require_int(require(raw, "d_model", where), "d_model", where)
    d_embed = require(raw, "d_embed", where)
    d_embed = d_model if d_embed == -1 else require_int(d_embed, "d_embed", where)
    n_head = _per_layer(require(raw, "n_head", where), n_layer, "n_head", where)
    d_inner = _per_layer(require(raw, "d_inner", where), n_layer, "d_inner", where)
    for i, h in enumerate(n_head):
        if d_model % h:
            raise BenchmarkFormatError(f"{where}: d_model {d_model} is not a multiple of n_head[{i}] {h}")
    n_token = require_int(require(raw, "n_token", where), "n_token", where)
    div_val = require_int(require(raw, "div_val", where), "div_val", where)
    cutoffs = require(raw, "cutoffs", where)
    if not isinstance(cutoffs, list) or not cutoffs:
        raise BenchmarkFormatError(f"{where}: cutoffs must be a non-empty list, got {cutoffs!r}")
    cutoffs = tuple(require_int(c, f"cutoffs[{i}]", where) for i, c in enumerate(cutoffs))
    # increasing up to the first entry past n_token (the reference ignores what follows it)
    for a, b in zip(cutoffs, cutoffs[1:]):
        if b <= a:
            raise BenchmarkFormatError(f"{where}: cutoffs {list(cutoffs)} are not increasing")
        if b > n_token:
            break
    tie_projs = require(raw, "tie_projs", where)
    if not isinstance(tie_projs, list) or not tie_projs:
        raise BenchmarkFormatError(f"{where}: tie_projs must be a non-empty list, got {tie_projs!r}")
    tie_projs = tuple(_bool(t, f"tie_projs[{i}]", where) for i, t in enumerate(tie_projs))
    for field in _UNSUPPORTED_IF_TRUE:
        if raw.get(field, False):
            raise BenchmarkFormatError(f"{where}: {field}: true is not supported")
    return {
        "n_layer": n_layer,
        "d_model": d_model,
        "d_embed": d_embed,
        "n_head": n_head,
        "d_inner": d_inner,
        "n_token": n_token,
        "div_val": div_val,
        "cutoffs": cutoffs,
        "tie_weight": _bool(require(raw, "tie_weight", where), "tie_weight", where),
        "tie_projs": tie_projs,
        "tgt_len": require_int(require(raw, "tgt_len", where), "tgt_len", where),
        "weight_init_std": require_number(raw.get("weight_init_std", 0.02), "weight_init_std", where),
        "proj_init_std": require_number(raw.get("proj_init_std", 0.01), "proj_init_std", where),
    }


def _summary_row(summary: Any, arch_id: str, path: Any) -> Dict[str, Any]:
    if not isinstance(summary, dict):
        raise BenchmarkFormatError(f"{path}: expected a mapping of arch ids, got {type(summary).__name__}")
    if arch_id not in summary:
        raise BenchmarkFormatError(f"{path}: no entry for {arch_id}")
    row = summary[arch_id]
    if not isinstance(row, dict):
        raise BenchmarkFormatError(f"{path}: entry {arch_id} is not a mapping")
    return row


def load_lts(directory: Path, num_archs: Optional[int] = None) -> List[Arch]:
    """Reads an LTS benchmark directory; returns the first `num_archs` archs in (i, k) order (all if None).

    Arch: id `config_<i>_j<k>`, config = validated model_config fields, score = -valid_ppl,
    extra = {"valid_ppl", "ppl" (the whole ppl_summary row), "params" (params_summary row, or absent)}.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise BenchmarkFormatError(f"{directory}: benchmark directory does not exist")
    configs = find_model_configs(directory)
    if not configs:
        raise BenchmarkFormatError(f"{directory}: no config_<i>/j<k>/{MODEL_CONFIG} found")
    if num_archs is not None:
        configs = configs[:num_archs]
    params_path = directory / PARAMS_SUMMARY
    params = read_yaml(params_path) if params_path.exists() else None
    raw = [(arch_id, read_yaml(path), str(path)) for arch_id, path in configs]
    return _archs(raw, read_yaml(directory / PPL_SUMMARY), str(directory / PPL_SUMMARY),
                  params, str(params_path))


def _archs(raw: List[Tuple[str, Any, str]], ppl: Any, ppl_where: str, params: Any,
           params_where: str) -> List[Arch]:
    """Arch list from (arch id, raw model_config mapping, where it came from) and the two summaries
    (params may be None); shared by the directory and the compact-file readers."""
    archs = []
    for arch_id, raw_config, where in raw:
        config = parse_model_config(raw_config, where)
        ppl_row = _summary_row(ppl, arch_id, ppl_where)
        valid_ppl = require_number(require(ppl_row, "valid_ppl", f"{ppl_where} entry {arch_id}"),
                                   "valid_ppl", f"{ppl_where} entry {arch_id}")
        if valid_ppl <= 0 or not math.isfinite(valid_ppl):
            raise BenchmarkFormatError(f"{ppl_where} entry {arch_id}: valid_ppl must be > 0, got {valid_ppl}")
        extra = {"valid_ppl": valid_ppl, "ppl": dict(ppl_row)}
        if params is not None:
            row = _summary_row(params, arch_id, params_where)
            w = f"{params_where} entry {arch_id}"
            extra["params"] = {c: int(require_number(require(row, c, w), c, w)) for c in PARAMS_COLUMNS}
        archs.append(Arch(arch_id=arch_id, config=config, score=-valid_ppl, extra=extra))
    return archs


# ------------------------------------------------------------------------------------------------
# the compact single-file form of an LTS directory (what the package ships)
#
# A gzip-compressed (or plain) JSON object:
#   format   "lpzero_jax.lts_compact/1"
#   source   where the directory came from (free text)
#   archs    [{"id": "config_<i>_j<k>", "model_config": {... the parsed model_config.yaml ...}}, ...]
#            in (i, k) order
#   ppl      the parsed ppl_summary.yaml ({arch id: row})
#   params   the parsed params_summary.yaml, or null
# It holds every value of the directory's YAML files unchanged, so `load_lts_compact` returns
# exactly the Arch list `load_lts` returns for the directory.

COMPACT_FORMAT = "lpzero_jax.lts_compact/1"


def lts_to_compact(directory: Path, source: str = "") -> Dict[str, Any]:
    """The compact form of an LTS benchmark directory (every YAML value, unchanged)."""
    directory = Path(directory)
    load_lts(directory)  # validates every file first
    params_path = directory / PARAMS_SUMMARY
    return {
        "format": COMPACT_FORMAT,
        "source": source,
        "archs": [{"id": arch_id, "model_config": read_yaml(path)}
                  for arch_id, path in find_model_configs(directory)],
        "ppl": read_yaml(directory / PPL_SUMMARY),
        "params": read_yaml(params_path) if params_path.exists() else None,
    }


def read_compact(path: Path) -> Dict[str, Any]:
    """The compact file's object, header checked; BenchmarkFormatError naming the file otherwise."""

    data = read_json(Path(path), BenchmarkFormatError)
    fmt = require(data, "format", str(path))
    if fmt != COMPACT_FORMAT:
        raise BenchmarkFormatError(f"{path}: format {fmt!r} is not {COMPACT_FORMAT!r}")
    archs = require(data, "archs", str(path))
    if not isinstance(archs, list) or not archs:
        raise BenchmarkFormatError(f"{path}: archs must be a non-empty list")
    require(data, "ppl", str(path))
    return data


def load_lts_compact(path: Path, num_archs: Optional[int] = None) -> List[Arch]:
    """Reads a compact LTS file (see above); the same Arch list as `load_lts` on its directory."""
    data = read_compact(path)
    entries = data["archs"][:num_archs] if num_archs is not None else data["archs"]
    raw = []
    for i, entry in enumerate(entries):
        where = f"{path} arch #{i}"
        arch_id = require(entry, "id", where)
        raw.append((arch_id, require(entry, "model_config", where), f"{where} ({arch_id})"))
    return _archs(raw, data["ppl"], f"{path} ppl", data.get("params"), f"{path} params")


def load_lts_path(path: Path, num_archs: Optional[int] = None) -> List[Arch]:
    """An LTS directory (`load_lts`) or a compact LTS file (`load_lts_compact`)."""
    path = Path(path)
    return load_lts(path, num_archs) if path.is_dir() else load_lts_compact(path, num_archs)


def write_lts_dir(compact: Dict[str, Any], directory: Path) -> Path:
    """Writes a compact LTS object back as an LTS directory (YAML files, same values)."""
    directory = Path(directory)
    for entry in compact["archs"]:
        m = re.match(r"^config_(\d+)_j(\d+)$", entry["id"])
        if not m:
            raise BenchmarkFormatError(f"arch id {entry['id']!r} is not config_<i>_j<k>")
        job = directory / f"config_{m.group(1)}" / f"j{m.group(2)}"
        job.mkdir(parents=True, exist_ok=True)
        (job / MODEL_CONFIG).write_text(yaml.safe_dump(entry["model_config"]))
    (directory / PPL_SUMMARY).write_text(yaml.safe_dump(compact["ppl"]))
    if compact.get("params") is not None:
        (directory / PARAMS_SUMMARY).write_text(yaml.safe_dump(compact["params"]))
    return directory


def main(argv: List[str]) -> None:
    """`python -m lpzero_jax.benchmarks.lts DIR OUT.json.gz`: writes DIR's compact form."""
    import gzip
    import json

    if len(argv) != 2:
        raise SystemExit("usage: python -m lpzero_jax.benchmarks.lts LTS_DIR OUT.json.gz")
    directory, out = Path(argv[0]), Path(argv[1])
    data = lts_to_compact(directory, source=f"LTS directory {directory.name}")
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    with gzip.GzipFile(out, "wb", compresslevel=9, mtime=0) as f:
        f.write(blob)
    print(f"{out}: {len(data['archs'])} archs, {out.stat().st_size} bytes")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
