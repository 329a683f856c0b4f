"""Real LLaMA weights from local safetensors files (HF layout) into `models.llama.Llama` params.

A checkpoint is a folder with `config.json` and `model.safetensors` (or shards listed in
`model.safetensors.index.json`), or a single `.safetensors` file plus a config given separately.
Optional LoRA adapters come from a peft adapter file (`adapter_model.safetensors`, names prefixed
`base_model.model.`). Nothing is ever downloaded.

HF name -> our param path (Flax kernels are [in, out], HF weights [out, in], hence the transposes):
  model.embed_tokens.weight                      embed_tokens/embedding
  model.layers.<i>.input_layernorm.weight        layer_<i>/input_layernorm/scale
  model.layers.<i>.self_attn.<p>_proj.weight     layer_<i>/self_attn/<p>_proj/kernel   (transposed)
  model.layers.<i>.post_attention_layernorm.weight  layer_<i>/post_attention_layernorm/scale
  model.layers.<i>.mlp.<p>_proj.weight           layer_<i>/mlp/<p>_proj/kernel         (transposed)
  model.layers.<i>.<m>.<p>_proj.lora_A.weight    .../<p>_proj/lora_a   [r, in] -> [in, r]
  model.layers.<i>.<m>.<p>_proj.lora_B.weight    .../<p>_proj/lora_b   [out, r] -> [r, out]
  model.norm.weight                              norm/scale
  lm_head.weight                                 lm_head/kernel                         (transposed)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Tuple

import jax
import numpy as np

from lpzero_jax.models.init import leaf_rng, path_names
from lpzero_jax.models.llama import LlamaConfig

PEFT_PREFIX = "base_model.model."
_LAYER = re.compile(r"^layer_(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint does not fit the model: missing, unexpected or mis-shaped tensors."""


def hf_name(path: Tuple[str, ...]) -> Tuple[str, bool]:
    """Our param path (without the 'params' root) -> (HF tensor name, transpose?)."""
    if path == ("embed_tokens", "embedding"):
        return "model.embed_tokens.weight", False
    if path == ("norm", "scale"):
        return "model.norm.weight", False
    if path == ("lm_head", "kernel"):
        return "lm_head.weight", True
    m = _LAYER.match(path[0]) if path else None
    if m is None:
        raise KeyError(f"no HF name for parameter {'/'.join(path)}")
    prefix = f"model.layers.{m.group(1)}"
    rest = path[1:]
    if len(rest) == 2 and rest[1] == "scale":
        return f"{prefix}.{rest[0]}.weight", False
    if len(rest) == 3:
        block, proj, leaf = rest
        leaf_name = {"kernel": "weight", "lora_a": "lora_A.weight", "lora_b": "lora_B.weight"}.get(leaf)
        if leaf_name is not None:
            return f"{prefix}.{block}.{proj}.{leaf_name}", True
    raise KeyError(f"no HF name for parameter {'/'.join(path)}")


def read_safetensors(path: Path) -> Dict[str, np.ndarray]:
    """All tensors of a safetensors file, a folder's model.safetensors, or its sharded index."""
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():
        index = path / "model.safetensors.index.json"
        if index.is_file():
            with open(index) as f:
                files = sorted(set(json.load(f)["weight_map"].values()))
            out: Dict[str, np.ndarray] = {}
            for name in files:
                out.update(read_safetensors(path / name))
            return out
        path = path / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"no safetensors checkpoint at {path}")
    out = {}
    with safe_open(str(path), framework="flax") as f:  # flax: bfloat16 tensors load too
        for name in f.keys():
            out[name] = np.asarray(f.get_tensor(name).astype("float32"))
    return out


def read_hf_config(folder: Path) -> dict:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no config.json in {folder}")
    with open(path) as f:
        return json.load(f)


FillFn = Callable[[Tuple[str, ...], Tuple[int, ...]], np.ndarray]


def params_from_hf(shapes, tensors: Mapping[str, np.ndarray], fill_missing_lora: Optional[FillFn] = None):
    """Builds the params pytree of `shapes` (ShapeDtypeStructs) from HF-named tensors.

    Every base weight must be present with the right shape; LoRA factors missing from `tensors`
    are filled by `fill_missing_lora(path, shape)` (an error if None). Tensors the model does not
    use (besides rotary `inv_freq` buffers) are an error: the config does not match the file.
    """
    used = set()
    missing = []

    def fill(path, leaf):
        names = path_names(path)
        local = names[1:] if names and names[0] == "params" else names
        name, transpose = hf_name(local)
        shape = tuple(leaf.shape)
        if name not in tensors:
            if local[-1] in ("lora_a", "lora_b") and fill_missing_lora is not None:
                return jax.numpy.asarray(fill_missing_lora(local, shape), dtype=leaf.dtype)
            missing.append(name)
            return None
        used.add(name)
        value = np.asarray(tensors[name])
        value = value.T if transpose else value
        if value.shape != shape:
            raise CheckpointError(f"{name}: checkpoint shape {value.shape} (after transpose) does not "
                                  f"match the model's {shape}")
        return jax.numpy.asarray(value, dtype=leaf.dtype)

    params = jax.tree_util.tree_map_with_path(fill, shapes)
    if missing:
        raise CheckpointError(f"checkpoint lacks {len(missing)} tensors the model needs, e.g. "
                              f"{missing[:5]}")
    unexpected = sorted(n for n in tensors if n not in used and not n.endswith("rotary_emb.inv_freq"))
    if unexpected:
        raise CheckpointError(f"checkpoint has {len(unexpected)} tensors the model does not use, e.g. "
                              f"{unexpected[:5]} (config mismatch?)")
    return params


def read_adapter(path: Path) -> Dict[str, np.ndarray]:
    """peft adapter tensors with the `base_model.model.` prefix stripped (names as in the base)."""
    path = Path(path)
    if path.is_dir():
        path = path / "adapter_model.safetensors"
    tensors = read_safetensors(path)
    return {(k[len(PEFT_PREFIX):] if k.startswith(PEFT_PREFIX) else k): v for k, v in tensors.items()}


def load_llama_checkpoint(folder: Path, family, attn_lora_rank: int = 0, ffn_lora_rank: int = 0,
                          lora_scaling: float = 2.0, adapter_path: Optional[Path] = None,
                          seed: int = 0) -> Tuple[LlamaConfig, object]:
    """(LlamaConfig, params) of a local HF LLaMA checkpoint folder, optionally with LoRA adapters.

    Adapters of the requested ranks that the adapter file does not provide are initialised as
    peft does (A uniform, B zero) by the family's init rule, with `seed`.
    """
    config = LlamaConfig.from_hf(read_hf_config(folder), attn_lora_rank, ffn_lora_rank, lora_scaling)
    tensors = read_safetensors(Path(folder))
    if adapter_path is not None:
        tensors.update(read_adapter(Path(adapter_path)))
    shapes = family.param_shapes(config)

    def fill_lora(path, shape):
        # the same per-leaf generator as `init_from_shapes`, so a missing adapter gets exactly the
        # value `family.init_params(config, seed)` would give it
        names = ("params",) + tuple(path)
        return family.init_rule(config, names, shape, leaf_rng(seed, names))

    return config, params_from_hf(shapes, tensors, fill_lora)
