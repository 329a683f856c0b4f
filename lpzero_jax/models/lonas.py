"""The LoNAS elastic search space over a LLaMA supernet (Munoz et al. 2024; LPZero Appendix A, Fig. 7).

LoNAS turns a pre-trained LLaMA into a weight-sharing supernet by adding LoRA adapters (peft, rank
32, alpha 64) on q, k, v, up and gate, and making widths elastic (NNCF BootstrapNAS
`overwrite_groups`, e.g. `nncf_config/unified_commonsense/nncf_lonas_llama_7b.json`). Per layer:
  - the adapter rank of q/k/v, one of [32, 28];
  - the FFN width (output channels of gate and up, and of their LoRA B; input channels of down),
    one of [11008, 9632, 8256, 6880, 5504] for LLaMA-7B = 100/87.5/75/62.5/50 % of the width;
  - (LoNAS's config has a third group, the rank of the gate/up adapters, also [32, 28]; the LPZero
    paper counts 2 x 5 choices per layer, i.e. one rank per layer. `separate_ffn_rank=False` (default)
    follows the paper: one rank choice for all five adapters of a layer; True gives LoNAS's 3 groups.)
A subnet keeps the FIRST k channels / ranks of every elastic weight (NNCF's elastic width slices
the leading channels), so `extract_subnet_params` is a prefix slice of each supernet tensor.

A subnet is a choice vector: per layer, one index per knob into that knob's values (index 0 = the
largest value = the supernet). `Choice` is that as a tuple of tuples (hashable); `choice_array`
gives it as an int array [L, K].
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence, Tuple

import jax
import numpy as np

from lpzero_jax.models.llama import LlamaConfig, count_llama_params

Choice = Tuple[Tuple[int, ...], ...]

LONAS_WIDTH_RATIOS = (1.0, 0.875, 0.75, 0.625, 0.5)
LONAS_RANKS = (32, 28)
KNOB_RANK = "lora_rank"  # q/k/v adapter rank (and gate/up's, unless separate_ffn_rank)
KNOB_FFN = "ffn_width"
KNOB_FFN_RANK = "ffn_lora_rank"


def elastic_widths(width: int, ratios: Sequence[float]) -> Tuple[int, ...]:
    """round(ratio * width) for each ratio, largest first; 11008 -> (11008, 9632, 8256, 6880, 5504)."""
    widths = tuple(sorted({int(round(r * width)) for r in ratios}, reverse=True))
    if len(widths) != len(ratios) or widths[-1] < 1:
        raise ValueError(f"ratios {tuple(ratios)} of width {width} give {widths}: not distinct positive widths")
    return widths


@dataclasses.dataclass(frozen=True)
class LonasSpace:
    """The elastic space of one supernet (its layers carry the largest width and ranks)."""

    supernet: LlamaConfig
    width_ratios: Tuple[float, ...] = LONAS_WIDTH_RATIOS
    rank_choices: Tuple[int, ...] = LONAS_RANKS  # (0,): no adapters, FFN widths alone (a plain model)
    separate_ffn_rank: bool = False

    def __post_init__(self):
        ranks = tuple(sorted(set(self.rank_choices), reverse=True))
        if ranks != tuple(self.rank_choices) or ranks[-1] < 0 or (0 in ranks and len(ranks) > 1):
            raise ValueError(f"rank_choices must be distinct positive ranks, largest first, or (0,) for no "
                             f"adapters: {self.rank_choices}")
        for i, l in enumerate(self.supernet.layers):
            if l.attn_lora_rank != ranks[0] or l.ffn_lora_rank != ranks[0]:
                raise ValueError(f"supernet layer {i} has adapter ranks ({l.attn_lora_rank}, "
                                 f"{l.ffn_lora_rank}); the space needs {ranks[0]} (its largest rank)")
            elastic_widths(l.intermediate_size, self.width_ratios)  # validates

    # --- the knobs --------------------------------------------------------------------------------
    @property
    def knobs(self) -> Tuple[str, ...]:
        return (KNOB_RANK, KNOB_FFN) + ((KNOB_FFN_RANK,) if self.separate_ffn_rank else ())

    @property
    def num_layers(self) -> int:
        return self.supernet.num_layers

    def knob_values(self, layer: int) -> Dict[str, Tuple[int, ...]]:
        """knob -> allowed values of `layer`, largest first."""
        values = {KNOB_RANK: tuple(self.rank_choices),
                  KNOB_FFN: elastic_widths(self.supernet.layers[layer].intermediate_size, self.width_ratios)}
        if self.separate_ffn_rank:
            values[KNOB_FFN_RANK] = tuple(self.rank_choices)
        return values

    def num_values(self) -> np.ndarray:
        """[L, K] number of values of every knob."""
        return np.array([[len(v) for v in self.knob_values(i).values()] for i in range(self.num_layers)])

    def size(self) -> int:
        """Number of subnets (2^L x 5^L for the paper's space)."""
        return int(np.prod(self.num_values().astype(object)))

    # --- choices ----------------------------------------------------------------------------------
    def validate(self, choice: Choice) -> Choice:
        arr = choice_array(choice)
        if arr.shape != (self.num_layers, len(self.knobs)):
            raise ValueError(f"choice has shape {arr.shape}, the space needs ({self.num_layers}, {len(self.knobs)})")
        if np.any(arr < 0) or np.any(arr >= self.num_values()):
            raise ValueError(f"choice {choice} has an index out of range (sizes {self.num_values().tolist()})")
        return as_choice(arr)

    def max_choice(self) -> Choice:
        return as_choice(np.zeros((self.num_layers, len(self.knobs)), int))

    def min_choice(self) -> Choice:
        return as_choice(self.num_values() - 1)

    def medium_choice(self) -> Choice:
        """The middle value of every knob (the larger of the two middles for an even count; LoNAS tests
        a similar hand-picked 'heuristic' subnet)."""
        return as_choice((self.num_values() - 1) // 2)

    def random_choice(self, rng: np.random.Generator) -> Choice:
        return as_choice(rng.integers(0, self.num_values()))

    def values_of(self, choice: Choice) -> List[Dict[str, int]]:
        """Per layer {knob: value}."""
        choice = self.validate(choice)
        out = []
        for i, idx in enumerate(choice):
            vals = self.knob_values(i)
            out.append({k: vals[k][j] for k, j in zip(self.knobs, idx)})
        return out

    def config_of(self, choice: Choice) -> LlamaConfig:
        """The subnet as a LlamaConfig (its own widths and ranks per layer)."""
        layers = []
        for sup, v in zip(self.supernet.layers, self.values_of(choice)):
            layers.append(dataclasses.replace(
                sup, intermediate_size=v[KNOB_FFN], attn_lora_rank=v[KNOB_RANK],
                ffn_lora_rank=v.get(KNOB_FFN_RANK, v[KNOB_RANK])))
        return dataclasses.replace(self.supernet, layers=tuple(layers))

    # --- parameter counts -------------------------------------------------------------------------
    def num_params(self, choice: Choice, adapters: bool = True) -> int:
        """Exact parameter count of a subnet (base weights + adapters; base only if adapters=False)."""
        config = self.config_of(choice)
        if not adapters:
            config = without_adapters(config)
        return count_llama_params(config)

    def params_formula(self, choices: np.ndarray) -> np.ndarray:
        """Vectorised closed form over choice arrays [N, L, K] -> params [N] (adapters included).

        params = P_fixed + sum_l [ r_a,l (3E + q + 2kv) + (3E + 2 r_f,l) I_l + 2 r_f,l E ], with
        P_fixed the embeddings/head/final norm and every layer's attention + norms (2E + 2Eq + 2Ekv).
        """
        choices = np.asarray(choices)
        if choices.ndim == 2:
            choices = choices[None]
        c, e = self.supernet, self.supernet.hidden_size
        total = np.full(choices.shape[0], c.vocab_size * e * (1 if c.tie_word_embeddings else 2) + e,
                        dtype=np.int64)
        for i, l in enumerate(c.layers):
            d = c.layer_head_dim(l)
            q, kv = l.num_heads * d, l.num_kv_heads * d
            vals = self.knob_values(i)
            r_a = np.asarray(vals[KNOB_RANK])[choices[:, i, 0]]
            width = np.asarray(vals[KNOB_FFN])[choices[:, i, 1]]
            r_f = np.asarray(vals[KNOB_FFN_RANK])[choices[:, i, 2]] if self.separate_ffn_rank else r_a
            total += 2 * e * q + 2 * e * kv + 2 * e
            total += r_a * (3 * e + q + 2 * kv) + (3 * e + 2 * r_f) * width + 2 * r_f * e
        return total


def without_adapters(config: LlamaConfig) -> LlamaConfig:
    """The same LLaMA with every LoRA rank set to 0."""
    return dataclasses.replace(config, layers=tuple(
        dataclasses.replace(l, attn_lora_rank=0, ffn_lora_rank=0) for l in config.layers))


def choice_array(choice) -> np.ndarray:
    return np.asarray(choice, dtype=np.int64).reshape(len(choice), -1) if len(choice) else np.zeros((0, 0), int)


def as_choice(arr) -> Choice:
    return tuple(tuple(int(x) for x in row) for row in np.asarray(arr))


def extract_subnet_params(super_params, sub_shapes):
    """Slices the supernet params to the subnet's shapes: the leading entries of every axis.

    `sub_shapes` is the subnet's param-shape pytree (`family.param_shapes(sub_config)`); its every
    path must exist in the supernet with sizes >= the subnet's (fewer layers: trailing layers are
    dropped). Gate/up kernels [E, I] -> [:, :k], down [I, E] -> [:k, :], LoRA A [in, R] -> [:, :r],
    LoRA B [R, out] -> [:r, :k], everything else unchanged.
    """
    def lookup(tree, path):
        node = tree
        for key in path:
            name = getattr(key, "key", getattr(key, "name", getattr(key, "idx", key)))
            try:
                node = node[name]
            except (KeyError, TypeError, IndexError):
                raise KeyError(f"supernet has no parameter {jax.tree_util.keystr(path)}") from None
        return node

    def cut(path, leaf):
        full = lookup(super_params, path)
        if len(full.shape) != len(leaf.shape) or any(s > f for s, f in zip(leaf.shape, full.shape)):
            raise ValueError(f"subnet parameter {jax.tree_util.keystr(path)} {tuple(leaf.shape)} does not fit "
                             f"in the supernet's {tuple(full.shape)}")
        return full[tuple(slice(0, s) for s in leaf.shape)]

    return jax.tree_util.tree_map_with_path(cut, sub_shapes)


def lonas_llama7b_space() -> LonasSpace:
    """The paper's space on LLaMA-7B (32 layers, E 4096, FFN 11008, 32 heads, vocab 32000)."""
    supernet = LlamaConfig.uniform(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                                   num_hidden_layers=32, num_attention_heads=32, attn_lora_rank=32,
                                   ffn_lora_rank=32)
    return LonasSpace(supernet)
