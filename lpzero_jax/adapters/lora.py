"""The LoNAS elastic super-adapter: LoRA on q, k, v, gate and up of a frozen LLaMA, shared by every subnet.

LoNAS (Munoz et al. 2024) adds peft LoRA adapters to a pretrained LLaMA and makes the FFN width
and the adapter rank elastic (NNCF BootstrapNAS): a subnet keeps the leading FFN channels of gate,
up (and their LoRA B) and of down's input, and the leading `r` columns of every LoRA A and rows of
every LoRA B (`models/lonas.py`). One adapter pytree of the largest rank serves all subnets.

An adapter is a pytree with the model's own paths, holding only the LoRA factors:
  {layer_<i>: {self_attn: {q_proj|k_proj|v_proj: {lora_a [E, R], lora_b [R, out]}},
               mlp: {gate_proj|up_proj: {lora_a [E, R], lora_b [R, I]}}}}
The base weights (the GGUF's, float32, no adapters) are never part of it: training differentiates
the adapter alone.

Two ways to run a subnet with the adapter, equal up to float rounding (tested):
  - `masked_params`: the SUPERNET's shapes, the channels and ranks a subnet does not have masked to
    zero (down's input rows beyond the width, A's columns beyond the rank). One compiled program
    trains every subnet (`adapters/train.py`): the subnet is data, not a shape.
  - `merged_subnet`: W + scaling * A[:, :r] B[:r, :] folded into the base weights, then sliced to
    the subnet's widths: a plain LLaMA (no adapters) that `models/llama_eval.py` evaluates with its
    layers compiled once per width.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, Mapping, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from lpzero_jax.errors import DataFileError
from lpzero_jax.models.llama import LlamaConfig
from lpzero_jax.models.lonas import (
    KNOB_FFN,
    KNOB_RANK,
    Choice,
    LonasSpace,
    extract_subnet_params,
    without_adapters,
)

ATTN_TARGETS = ("q_proj", "k_proj", "v_proj")
FFN_TARGETS = ("gate_proj", "up_proj")
TARGETS = ATTN_TARGETS + FFN_TARGETS  # LoNAS's target modules on LLaMA (down_proj is not adapted)


class AdapterMismatchError(DataFileError):
    """An adapter whose shapes or rank set do not fit the supernet and settings it is used with."""


@dataclasses.dataclass(frozen=True)
class AdapterSpec:
    """What an adapter is for: the supernet (no adapters), its elastic widths and ranks, the scaling."""

    supernet: LlamaConfig  # the base model, every LoRA rank 0
    rank_choices: Tuple[int, ...] = (32, 24, 16)  # largest first; the adapter holds the largest
    width_ratios: Tuple[float, ...] = (1.0, 0.875, 0.75, 0.625, 0.5)
    scaling: float = 2.0  # peft lora_alpha / r of the largest rank (LoNAS: 64 / 32); not rescaled per rank

    def __post_init__(self):
        ranks = tuple(int(r) for r in self.rank_choices)
        if not ranks or ranks != tuple(sorted(set(ranks), reverse=True)) or ranks[-1] < 1:
            raise ValueError(f"rank_choices must be distinct positive ranks, largest first: {self.rank_choices}")
        if any(l.attn_lora_rank or l.ffn_lora_rank for l in self.supernet.layers):
            raise ValueError("the supernet of an adapter spec must have no adapters (ranks 0)")
        if len(set(self.supernet.layers)) != 1:
            raise ValueError("the super-adapter needs a supernet whose layers are all alike")

    @property
    def max_rank(self) -> int:
        return int(self.rank_choices[0])

    @property
    def adapted(self) -> LlamaConfig:
        """The supernet with the largest adapters on every layer (what training runs)."""
        return dataclasses.replace(self.supernet, lora_scaling=float(self.scaling), layers=tuple(
            dataclasses.replace(l, attn_lora_rank=self.max_rank, ffn_lora_rank=self.max_rank)
            for l in self.supernet.layers))

    def space(self) -> LonasSpace:
        """The LoNAS space of the adapted supernet: per layer one rank (all five adapters) and one
        FFN width (the paper's 2 knobs per layer)."""
        return LonasSpace(self.adapted, tuple(float(r) for r in self.width_ratios),
                          tuple(int(r) for r in self.rank_choices))

    def shapes(self) -> Dict[str, Dict[str, Dict[str, Dict[str, Tuple[int, ...]]]]]:
        """The adapter's leaf shapes by path."""
        c, r = self.supernet, self.max_rank
        out = {}
        for i, l in enumerate(c.layers):
            d = c.layer_head_dim(l)
            outs = {"q_proj": l.num_heads * d, "k_proj": l.num_kv_heads * d, "v_proj": l.num_kv_heads * d}
            out[f"layer_{i}"] = {
                "self_attn": {k: {"lora_a": (c.hidden_size, r), "lora_b": (r, n)} for k, n in outs.items()},
                "mlp": {k: {"lora_a": (c.hidden_size, r), "lora_b": (r, l.intermediate_size)}
                        for k in FFN_TARGETS}}
        return out

    def describe(self) -> dict:
        """JSON-able identity of the spec (stored beside an adapter, compared when loading one)."""
        return {"supernet": self.supernet.to_dict(), "rank_choices": [int(r) for r in self.rank_choices],
                "width_ratios": [float(r) for r in self.width_ratios], "scaling": float(self.scaling),
                "targets": list(TARGETS)}


def init_adapter(spec: AdapterSpec, seed: int):
    """peft's init: A ~ U(-1/sqrt(E), 1/sqrt(E)) (kaiming_uniform, a=sqrt(5)), B = 0: the adapter
    starts as the zero delta (the base model exactly)."""
    shapes = spec.shapes()
    paths = [(layer, block, name) for layer in shapes for block in shapes[layer] for name in shapes[layer][block]]
    keys = jax.random.split(jax.random.PRNGKey(seed), len(paths))
    out: dict = {}
    for key, (layer, block, name) in zip(keys, paths):
        a_shape, b_shape = shapes[layer][block][name]["lora_a"], shapes[layer][block][name]["lora_b"]
        bound = 1.0 / math.sqrt(a_shape[0])
        out.setdefault(layer, {}).setdefault(block, {})[name] = {
            "lora_a": jax.random.uniform(key, a_shape, jnp.float32, -bound, bound),
            "lora_b": jnp.zeros(b_shape, jnp.float32)}
    return out


def check_adapter(adapter, spec: AdapterSpec, stored_spec: Mapping = None, source: str = "adapter") -> None:
    """AdapterMismatchError naming the first difference: a rank set, width ratios, scaling or
    supernet other than `spec`'s (when `stored_spec`, the adapter's own description, is given), a
    missing or extra parameter, or a parameter of another shape."""
    if stored_spec is not None:
        want = spec.describe()
        for key in ("rank_choices", "width_ratios", "scaling", "targets", "supernet"):
            if stored_spec.get(key) != want[key]:
                shown = "differs" if key == "supernet" else f"{stored_spec.get(key)} != {want[key]}"
                raise AdapterMismatchError(
                    f"{source}: its {key} {shown} (this run's settings): train an adapter for these "
                    "settings (mode train_adapter) or set adapter.* to the ones it was trained with")
    want_shapes = spec.shapes()
    have = {jax.tree_util.keystr(p): tuple(np.shape(x)) for p, x in jax.tree_util.tree_leaves_with_path(adapter)}
    need = {jax.tree_util.keystr(p): tuple(x) for p, x in
            jax.tree_util.tree_leaves_with_path(want_shapes, is_leaf=lambda x: isinstance(x, tuple))}
    for path in sorted(set(need) | set(have)):
        if path not in have:
            raise AdapterMismatchError(f"{source}: parameter {path} is missing (shape {need[path]} expected)")
        if path not in need:
            raise AdapterMismatchError(f"{source}: parameter {path} is not part of this supernet's adapter")
        if have[path] != need[path]:
            raise AdapterMismatchError(f"{source}: parameter {path} has shape {have[path]}, this supernet and "
                                       f"rank {spec.max_rank} need {need[path]}")


def choice_masks(spec: AdapterSpec, choices: Sequence[Choice]) -> Tuple[np.ndarray, np.ndarray]:
    """(width masks [N, L, I], rank masks [N, L, R]) of subnets: 1 for the channels/ranks they keep."""
    space = spec.space()
    c = spec.supernet
    width = np.zeros((len(choices), c.num_layers, c.layers[0].intermediate_size), np.float32)
    rank = np.zeros((len(choices), c.num_layers, spec.max_rank), np.float32)
    for n, choice in enumerate(choices):
        for i, v in enumerate(space.values_of(choice)):
            width[n, i, :v[KNOB_FFN]] = 1.0
            rank[n, i, :v[KNOB_RANK]] = 1.0
    return width, rank


def masked_params(base, adapter, width_mask: jax.Array, rank_mask: jax.Array):
    """Params of `spec.adapted` (the Flax `Llama`) that compute the subnet of the masks: base
    weights with down_proj's input rows beyond the width zeroed, adapters with A's columns beyond
    the rank zeroed (then (x A) B sees only the leading ranks, and the FFN channels beyond the
    width reach nothing). width_mask [L, I], rank_mask [L, R]; traceable (one program for all)."""
    p = dict(base["params"])
    for name, layer in adapter.items():
        i = int(name.split("_")[1])
        merged = dict(p[name], self_attn=dict(p[name]["self_attn"]), mlp=dict(p[name]["mlp"]))
        for block, mods in layer.items():
            for m, lora in mods.items():
                merged[block][m] = dict(merged[block][m], lora_a=lora["lora_a"] * rank_mask[i][None, :],
                                        lora_b=lora["lora_b"])
        down = merged["mlp"]["down_proj"]
        merged["mlp"]["down_proj"] = dict(down, kernel=down["kernel"] * width_mask[i][:, None])
        p[name] = merged
    return {"params": p}


def merged_subnet(base, adapter, spec: AdapterSpec, choice: Choice, family) -> Tuple[LlamaConfig, dict]:
    """(plain LLaMA config, params) of a subnet with its adapter slice folded into the weights:
    W + scaling * A[:, :r] @ B[:r, :] on q, k, v, gate, up, then every tensor sliced to the subnet's
    widths. `family` (the llama family) gives the parameter layout. None adapter: the base alone."""
    space = spec.space()
    sub = without_adapters(space.config_of(choice))
    p = dict(base["params"])
    if adapter is not None:
        for i, v in enumerate(space.values_of(choice)):
            name, r = f"layer_{i}", v[KNOB_RANK]
            layer = dict(p[name], self_attn=dict(p[name]["self_attn"]), mlp=dict(p[name]["mlp"]))
            for block, mods in adapter[name].items():
                for m, lora in mods.items():
                    kernel = layer[block][m]["kernel"]
                    delta = spec.scaling * (lora["lora_a"][:, :r] @ lora["lora_b"][:r, :])
                    layer[block][m] = dict(layer[block][m], kernel=kernel + delta)
            p[name] = layer
    return sub, extract_subnet_params({"params": p}, family.param_shapes(sub))
