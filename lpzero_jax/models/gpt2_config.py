"""The GPT-2 flex architecture (LiteTransformerSearch's per-layer heads and FFN widths, adaptive
embedding and softmax) as a config, and its parameter counts in the benchmark's own groups
(`analytical_param_counts`, equal to LTS's params_summary.yaml). The model is `gpt2_flex.GPT2Flex`."""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from lpzero_jax.models.dropout import TrainDropout

N_TOKEN = 50264
N_POSITIONS = 192


def clean_cutoffs(cutoffs: Sequence[int], n_token: int) -> Tuple[int, ...]:
    """Cluster ends as the reference cleans them: keep entries up to the first one past n_token
    (that one cut to n_token), then make sure the last end is n_token."""
    cutoffs = list(cutoffs) or [n_token]
    kept = [cutoffs[0]]
    for c in cutoffs[1:]:
        if c <= kept[-1]:
            raise ValueError(f"cutoffs {cutoffs} are not increasing")
        if c > n_token:
            break
        kept.append(c)
    if kept[-1] > n_token:
        kept[-1] = n_token
    if kept[-1] < n_token:
        kept.append(n_token)
    return tuple(kept)


@dataclasses.dataclass(frozen=True)
class GPT2FlexConfig:
    """One GPT-2 flex architecture (hashable). `cutoffs` are cluster ends (cleaned, last = n_token);
    `tie_projs` has one flag per cluster."""

    d_model: int
    n_head: Tuple[int, ...]
    d_inner: Tuple[int, ...]
    d_embed: int
    div_val: int
    cutoffs: Tuple[int, ...]
    tie_projs: Tuple[bool, ...]
    tie_weight: bool = True
    n_token: int = N_TOKEN
    n_positions: int = N_POSITIONS
    layer_norm_eps: float = 1e-5
    weight_init_std: float = 0.02
    proj_init_std: float = 0.01
    # 0: cluster i is d_embed // div_val**i wide. > 0 (div_val > 1 only): every cluster this wide,
    # the form the compact extraction's head stage runs in (`head_run`: tables zero-padded)
    cluster_width: int = 0
    # train-mode dropout (None: eval mode, the default); see `models.dropout`
    dropout: Optional[TrainDropout] = None

    def __post_init__(self):
        # n_layer 0 (both empty) is the layer-less outer stage of `stages` (embeddings and head only)
        if len(self.n_head) != len(self.d_inner):
            raise ValueError(f"n_head {self.n_head} and d_inner {self.d_inner} must be equally long")
        for h in self.n_head:
            if self.d_model % h:
                raise ValueError(f"d_model {self.d_model} is not a multiple of n_head {h}")
        if self.div_val < 1:
            raise ValueError(f"div_val must be >= 1 (adaptive embedding), got {self.div_val}")
        if self.cutoffs[-1] != self.n_token:
            raise ValueError(f"cutoffs {self.cutoffs} must end at n_token {self.n_token}")
        if len(self.tie_projs) != len(self.cutoffs):
            raise ValueError(f"{len(self.tie_projs)} tie_projs flags for {len(self.cutoffs)} clusters")
        if self.cluster_width and self.div_val == 1:
            raise ValueError("cluster_width needs div_val > 1 (one table per cluster)")

    @classmethod
    def from_lts(cls, fields: Mapping) -> "GPT2FlexConfig":
        """From the fields of an LTS model_config.yaml (as `benchmarks.lts` returns them)."""
        n_token = int(fields["n_token"])
        cutoffs = clean_cutoffs(fields["cutoffs"], n_token)
        tie_projs = tuple(bool(t) for t in fields["tie_projs"])[:len(cutoffs)]
        return cls(d_model=int(fields["d_model"]), n_head=tuple(fields["n_head"]),
                   d_inner=tuple(fields["d_inner"]), d_embed=int(fields["d_embed"]),
                   div_val=int(fields["div_val"]), cutoffs=cutoffs, tie_projs=tie_projs,
                   tie_weight=bool(fields["tie_weight"]), n_token=n_token,
                   n_positions=int(fields["tgt_len"]),
                   weight_init_std=float(fields.get("weight_init_std", 0.02)),
                   proj_init_std=float(fields.get("proj_init_std", 0.01)))

    @property
    def n_layer(self) -> int:
        return len(self.n_head)

    @property
    def n_clusters(self) -> int:
        """Number of tail clusters (0: a plain softmax)."""
        return len(self.cutoffs) - 1

    def cluster_bounds(self) -> List[Tuple[int, int]]:
        ends = (0,) + self.cutoffs
        return [(ends[i], ends[i + 1]) for i in range(len(self.cutoffs))]

    def cluster_widths(self) -> List[int]:
        """Embedding width of each cluster (all d_embed when div_val is 1; all cluster_width when
        that is set)."""
        if self.cluster_width:
            return [self.cluster_width] * len(self.cutoffs)
        if self.div_val == 1:
            return [self.d_embed] * len(self.cutoffs)
        return [self.d_embed // self.div_val ** i for i in range(len(self.cutoffs))]

    def has_input_projections(self) -> bool:
        """div_val > 1: one projection per cluster; div_val 1: one, only if d_embed != d_model."""
        return self.div_val > 1 or self.d_embed != self.d_model


# ------------------------------------------------------------------------------------------------
# parameter counts, analytically (checked against the shapes and LTS's params_summary.yaml)


def analytical_param_counts(c: GPT2FlexConfig) -> Dict[str, int]:
    """Parameter counts per LTS group, term by term, as LTS's `HfGPT2Flex.get_params` reports them.

    AdaEmb: the AdaptiveEmbedding module (tables + input projections) PLUS the position table
        (LTS adds max_position_embeddings * d_model = tgt_len * d_model by hand).
    Attn: per layer c_attn (d 3d + 3d) + c_proj (d d + d) = 4d^2 + 4d (independent of n_head).
    FFN: per layer c_fc (d f + f) + c_proj (f d + d).
    LayerNorm: ln_1 and ln_2 per layer (2d each) + ln_f (2d).
    nonembedding = Attn + FFN + LayerNorm.
    Softmax: what the output layer owns beyond the tied tensors: cluster_weight (n_clusters x
        d_embed) + cluster_bias (n_clusters) + one output bias per token (n_token) + the untied
        output projections (+ the output tables when tie_weight is false). LTS has no column for it.
    total = AdaEmb + nonembedding + Softmax: every distinct parameter once (LTS's
        sum(p.nelement() for p in model.parameters()); tied tensors are one parameter).
    """
    d = c.d_model
    widths = c.cluster_widths()
    bounds = c.cluster_bounds()
    if c.div_val == 1:
        ada = c.n_token * c.d_embed + (d * c.d_embed if c.d_embed != d else 0)
    else:
        ada = sum((r - l) * w + d * w for (l, r), w in zip(bounds, widths))
    ada += c.n_positions * d
    attn = c.n_layer * (4 * d * d + 4 * d)
    ffn = sum(2 * d * f + f + d for f in c.d_inner)
    layer_norm = c.n_layer * 4 * d + 2 * d
    softmax = c.n_clusters * c.d_embed + c.n_clusters + c.n_token
    if c.has_input_projections():  # else no projection anywhere, tied or not
        softmax += sum(d * w for tied, w in zip(c.tie_projs, widths) if not tied)
    if not c.tie_weight:
        softmax += c.n_token * c.d_embed if c.div_val == 1 else sum(
            (r - l) * w for (l, r), w in zip(bounds, widths))
    nonembedding = attn + ffn + layer_norm
    return {"AdaEmb": ada, "Attn": attn, "FFN": ffn, "LayerNorm": layer_norm,
            "nonembedding": nonembedding, "Softmax": softmax,
            "total": ada + nonembedding + softmax}
