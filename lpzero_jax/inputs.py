"""The six proxy inputs of LPZero for any family, computed once per architecture, stored compactly.

Definitions (paper Section 1 / Figure 1), for a model at its fixed initialisation, in eval mode, on
one real-text mini-batch:
  A  Activations: the FFN (MLP) hidden activations, one tensor per FFN nonlinearity.
  J  Jacobian: d loss / d word embeddings, [B, S, E] (per example, since examples are independent).
     For FlexiBERT the loss is sum(last hidden states), so J is the output Jacobian-vector product
     with ones; for the causal LMs it is the gradient of the LM loss w.r.t. the input embeddings.
  G  Gradients of the loss (the family's `proxy_loss`) w.r.t. the weight matrices W.
  H  Head outputs: the per-head query/key/value projections (or the op's input projection).
  W  Weight matrices (kernels) of the layers, as chosen by `family.is_proxy_weight`.
  S  Softmax outputs: attention probabilities (or the op's normalised mixing weights).
A, H, S, W, G are grouped per layer (the `layer_<i>` module they belong to); J is one tensor for the
whole model. All six come out of ONE jitted function per architecture: one forward and one
backward pass (gradients taken after the backward pass exists, never before).

Compact storage. A proxy expression only ever sees a tensor through element-wise maps and
whole-tensor reductions (see `lpzero_jax.expression.ops`), i.e. as the multiset of its values. So each
tensor is stored as `sample_size` values drawn uniformly with replacement (all values, in order,
when it has no more than `sample_size`) plus its full element count N. Reductions that are sums
(Frobenius, L1) are rescaled by N / samples, which makes them unbiased estimates of the full-tensor
values; means, standard deviations and min/max are estimated from the sample. Index draws depend
only on (sample seed, slot, N), so W and G of the same matrix are sampled at the same positions
and W * G samples the element-wise product. Per architecture and input this is an array
`values` [L, T, K] and `counts` [L, T] (N of each tensor, 0 for an empty slot).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Dict, Hashable, List, Mapping, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from lpzero_jax.engine.extract import extract_staged
from lpzero_jax.engine.sampling import compact_numpy, compact_tensors, sample_indices  # noqa: F401  (public here too)
from lpzero_jax.files import atomic_write
from lpzero_jax.models.init import path_names

INPUT_NAMES = ("A", "J", "G", "H", "W", "S")
LAYERWISE = ("A", "G", "H", "W", "S")
# What each extraction level yields: the weights alone need no forward pass, A/H/S need one, G/J
# need the backward pass too. Extraction runs the cheapest level covering the inputs asked for.
LEVELS = {"weights": ("W",), "forward": ("A", "H", "S", "W"), "backward": INPUT_NAMES}


def level_for(needed) -> str:
    """The cheapest extraction level that yields every input in `needed`."""
    needed = set(needed)
    unknown = needed - set(INPUT_NAMES)
    if unknown:
        raise KeyError(f"unknown proxy inputs {sorted(unknown)}; known: {', '.join(INPUT_NAMES)}")
    for level, names in LEVELS.items():
        if needed <= set(names):
            return level
    return "backward"
_LAYER = re.compile(r"^layer_(\d+)$")


class CacheFileError(ValueError):
    """A cached inputs file is damaged or is not the one asked for (it is recomputed)."""


def _checksum(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of `arrays`."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclasses.dataclass
class CompactInputs:
    """The six inputs of ONE architecture: name -> (values [L, T, K] f32, counts [L, T] i64)."""

    values: Dict[str, np.ndarray]
    counts: Dict[str, np.ndarray]

    def save(self, path: Path, header: Mapping = None) -> None:
        """Writes the arrays and a JSON header (`header`, e.g. arch id and fingerprint, plus the
        checksum of the arrays) to `path` atomically (no half file, even with two writers)."""
        arrays = {f"values_{k}": v for k, v in self.values.items()}
        arrays.update({f"counts_{k}": v for k, v in self.counts.items()})
        meta = dict(header or {}, checksum=_checksum(arrays))

        with atomic_write(path, binary=True) as f:
            np.savez(f, header=np.asarray(json.dumps(meta, sort_keys=True)), **arrays)

    @classmethod
    def load(cls, path: Path, expected: Mapping = None) -> "CompactInputs":
        """The inputs saved at `path`; CacheFileError if the file has no header, its arrays do not
        match their checksum, or a header field differs from `expected` (another arch's file)."""
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files if k != "header"}
            meta = json.loads(str(data["header"])) if "header" in data.files else None
        if meta is None:
            raise CacheFileError(f"{path}: no header (written by an older version)")
        if meta.get("checksum") != _checksum(arrays):
            raise CacheFileError(f"{path}: arrays do not match their checksum")
        for key, want in (expected or {}).items():
            if meta.get(key) != want:
                raise CacheFileError(f"{path}: holds {key} {meta.get(key)!r}, expected {want!r}")
        names = [k for k in INPUT_NAMES if f"values_{k}" in arrays]
        return cls({k: arrays[f"values_{k}"] for k in names}, {k: arrays[f"counts_{k}"] for k in names})


@dataclasses.dataclass
class StackedInputs:
    """Inputs of several architectures padded to common shapes.

    values[name] [N, L, T, K] f32, counts[name] [N, L, T] i32, layer_mask [N, L]: the layers each
    architecture really has (J, a single model-wide tensor, counts as present at each of them).
    """

    values: Dict[str, np.ndarray]
    counts: Dict[str, np.ndarray]
    layer_mask: np.ndarray

    @property
    def num_archs(self) -> int:
        return self.layer_mask.shape[0]


def stack_inputs(items: Sequence[CompactInputs]) -> StackedInputs:
    """Pads every architecture's inputs to the largest L and T and stacks them on a new axis 0
    (the inputs present in every item)."""
    if not items:
        raise ValueError("no architectures to stack")
    values, counts = {}, {}
    names = [n for n in INPUT_NAMES if all(n in x.values for x in items)]
    for name in names:
        l_max = max(x.values[name].shape[0] for x in items)
        t_max = max(x.values[name].shape[1] for x in items)
        k = items[0].values[name].shape[2]
        v = np.zeros((len(items), l_max, t_max, k), np.float32)
        c = np.zeros((len(items), l_max, t_max), np.int32)
        for i, x in enumerate(items):
            lv, tv, kv = x.values[name].shape
            if kv != k:
                raise ValueError(f"input {name}: sample sizes differ ({kv} vs {k})")
            v[i, :lv, :tv] = x.values[name]
            c[i, :lv, :tv] = x.counts[name]
        values[name], counts[name] = v, c
    layerwise = [n for n in LAYERWISE if n in values]
    l_max = max(values[n].shape[1] for n in layerwise)
    layer_mask = np.zeros((len(items), l_max), bool)
    for n in layerwise:
        present = counts[n].sum(axis=-1) > 0
        layer_mask[:, :present.shape[1]] |= present
    return StackedInputs(values, counts, layer_mask)


# ------------------------------------------------------------------------------------------------
# grouping of pytrees into per-layer lists


def _layer_of(names: Tuple[str, ...]) -> int:
    for n in names:
        m = _LAYER.match(n)
        if m:
            return int(m.group(1))
    return -1


def group_by_layer(tree, name: str = None, keep=None) -> List[List[jax.Array]]:
    """Leaves of `tree` grouped by their `layer_<i>` ancestor, in layer order.

    name: keep only leaves under a key equal to `name` (the sow name A/H/S); keep: a predicate on the
    path names instead. Leaves outside any layer are dropped.
    """
    groups: Dict[int, List[jax.Array]] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        names = path_names(path)
        if name is not None and name not in names:
            continue
        if keep is not None and not keep(names):
            continue
        layer = _layer_of(names)
        if layer < 0:
            continue
        groups.setdefault(layer, []).append(leaf)
    return [groups[i] for i in sorted(groups)]


# ------------------------------------------------------------------------------------------------
# extraction


def forward_backward(model, params, batch: Mapping[str, jax.Array]):
    """One forward and one backward pass; returns (loss, intermediates, grads, d loss/d embeds)."""
    embeds = model.apply(params, batch["input_ids"], method=model.embed)

    def loss_fn(p, e):
        loss, state = model.apply(p, e, batch, method=model.proxy_loss, mutable=["intermediates"])
        return loss, state.get("intermediates", {})

    (loss, inter), (grads, d_embeds) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
        params, embeds)
    return loss, inter, grads, d_embeds


def forward_only(model, params, batch: Mapping[str, jax.Array]):
    """One forward pass; returns (loss, intermediates)."""
    embeds = model.apply(params, batch["input_ids"], method=model.embed)
    loss, state = model.apply(params, embeds, batch, method=model.proxy_loss, mutable=["intermediates"])
    return loss, state.get("intermediates", {})


def raw_proxy_inputs(model, params, batch, is_proxy_weight,
                     level: str = "backward") -> Dict[str, List[List[jax.Array]]]:
    """The inputs of an extraction level as full tensors, per layer (J as a single one-tensor
    layer), and the loss. Traceable."""
    raw = {"W": group_by_layer(params, keep=is_proxy_weight)}
    if level == "weights":
        return raw, jnp.zeros(())
    if level == "forward":
        loss, inter = forward_only(model, params, batch)
    else:
        loss, inter, grads, d_embeds = forward_backward(model, params, batch)
        raw["G"] = group_by_layer(grads, keep=is_proxy_weight)
        raw["J"] = [[d_embeds]]
    raw.update({name: group_by_layer(inter, name=name) for name in ("A", "H", "S")})
    return raw, loss


@functools.lru_cache(maxsize=8)
def _compiled_extractor(family, model_config: Hashable, sample_size: int, sample_seed: int,
                        level: str = "backward"):
    model = family.build_model(model_config)

    def extract(params, batch):
        raw, loss = raw_proxy_inputs(model, params, batch, family.is_proxy_weight, level)
        out = {name: compact_tensors(raw[name], sample_size, sample_seed) for name in raw}
        return out, loss

    return jax.jit(extract)


def compact_weights(params, is_proxy_weight, sample_size: int, sample_seed: int) -> CompactInputs:
    """W alone, with NumPy (no tracing, no compilation): the 'weights' extraction level."""
    values, counts = compact_numpy(group_by_layer(params, keep=is_proxy_weight), sample_size,
                                   sample_seed)
    return CompactInputs({"W": values}, {"W": counts})


def extract_proxy_inputs(family, model_config: Hashable, params, batch: Mapping[str, np.ndarray],
                         sample_size: int, sample_seed: int = 0, staged: bool = True,
                         needed=INPUT_NAMES) -> CompactInputs:
    """Computes the proxy inputs of one architecture in compact form: all six by default (one
    forward, one backward pass), or the cheapest level covering `needed` (see LEVELS).

    staged: compile per layer when the family can cut its model into stages
    (`Family.stages`, engine/staging.py), else one program for the whole model. Raises
    FloatingPointError naming a non-finite loss or input.
    """
    level = level_for(needed)
    if level == "weights":
        return compact_weights(params, family.is_proxy_weight, sample_size, sample_seed)
    device_batch = {k: jnp.asarray(v) for k, v in batch.items()}
    stages = family.stages(model_config) if staged else None
    if stages is not None:
        values, counts, loss = extract_staged(stages, params, device_batch, family.is_proxy_weight,
                                              sample_size, sample_seed,
                                              backward=level == "backward")
        result = CompactInputs(values, counts)
    else:
        fn = _compiled_extractor(family, model_config, sample_size, sample_seed, level)
        out, loss = fn(params, device_batch)
        result = CompactInputs({k: np.asarray(v[0]) for k, v in out.items()},
                               {k: np.asarray(v[1]) for k, v in out.items()})
    if not np.isfinite(float(loss)):
        raise FloatingPointError(f"proxy loss is {float(loss)} for model {model_config}")
    for k, v in result.values.items():
        if not np.all(np.isfinite(v)):
            raise FloatingPointError(f"proxy input {k} has non-finite values for model {model_config}")
    return result


def inputs_fingerprint(fields: Mapping) -> str:
    """A short stable hash of everything the inputs depend on (names the on-disk cache folder)."""
    blob = json.dumps({k: fields[k] for k in sorted(fields)}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]
