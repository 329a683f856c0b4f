"""GPT2Flex cut into the engine's stages (lpzero_jax/engine/staging.py): the layer-less outer
model, one `Block` per layer (optionally bucketed: FFN widths rounded up, fine heads mixed by
`head_mix`), the head's run module and its zero-padded parameters, and the host-side prelude."""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from lpzero_jax.engine.staging import Stages
from lpzero_jax.models.gpt2_flex import (
    Block,
    GPT2Flex,
    GPT2FlexConfig,
    head_mix,
    tail_cluster_rows,
)


def first_layer_input_host(config: GPT2FlexConfig, params, input_ids: np.ndarray) -> np.ndarray:
    """`prelude(embed(input_ids))` in NumPy on the host (GPT2Flex params, with or without the
    leading 'params'): the adaptive embedding's table rows (each cluster's rows only, through its
    projection) times sqrt(d_model), plus the position table. Same values as the module within
    float rounding; no compiled program per embedding configuration."""
    p = params.get("params", params)
    wte, c = p["wte"], config
    ids = np.asarray(input_ids)
    if ids.shape[1] > c.n_positions:
        raise ValueError(f"sequence length {ids.shape[1]} exceeds the {c.n_positions} positions")
    if c.div_val == 1:
        out = np.asarray(wte["emb_0"])[ids]
        if c.has_input_projections():
            out = out @ np.asarray(wte["proj_0"])
    else:
        out = np.zeros(ids.shape + (c.d_model,), np.float32)
        for i, (l, r) in enumerate(c.cluster_bounds()):
            rows = (ids >= l) & (ids < r)
            out[rows] = np.asarray(wte[f"emb_{i}"])[ids[rows] - l] @ np.asarray(wte[f"proj_{i}"])
    out = out.astype(np.float32) * np.float32(math.sqrt(c.d_model))
    return out + np.asarray(p["wpe"]["embedding"])[:ids.shape[1]][None]


def head_module(config: GPT2FlexConfig) -> "GPT2Flex":
    """The module `head_params` are for (see there)."""
    return GPT2Flex(dataclasses.replace(config, n_head=(), d_inner=(), div_val=2,
                                        cluster_width=config.d_embed))


def head_params(config: GPT2FlexConfig, outer_params) -> dict:
    """Params with which `head_module(config)` computes the head (`head_loss`: ln_f + adaptive
    softmax) of `config` in a form shared by every architecture with the same d_model and d_embed: one table and one
    projection per cluster, every cluster d_embed wide (`cluster_width`). The real tables and
    projections are zero-padded to that width (zero columns of a table meet zero rows of its
    projection: exact); div_val 1 splits its one table (and bias) by cluster and gives each tail its
    tied projection; without projections (div_val 1, d_embed = d_model) each is the identity. Same
    loss and hidden-state gradient as the real head within float rounding (NumPy on the host)."""
    c, p = config, outer_params.get("params", outer_params)
    bounds, e = c.cluster_bounds(), c.d_embed
    wte, head = p["wte"], p["lm_head"]

    def pad(x, shape):
        x = np.asarray(x, np.float32)
        if x.shape == tuple(shape):
            return x  # a view where it can be (div_val 1 slices its table): no copy
        return np.pad(x, [(0, q - r) for r, q in zip(x.shape, shape)])

    def cluster(tree, name, i):  # cluster i's slice of a div_val-1 tensor, or its own tensor
        return np.asarray(tree[name])[bounds[i][0]:bounds[i][1]] if c.div_val == 1 else tree[f"{name}_{i}"]

    in_projs = []
    for i in range(len(bounds)):
        if not c.has_input_projections():
            in_projs.append(np.eye(e, c.d_model, dtype=np.float32))
        else:
            in_projs.append(pad(wte["proj_0" if c.div_val == 1 else f"proj_{i}"], (e, c.d_model)))
    run_wte, run_head = {}, {}
    for i, (l, r) in enumerate(bounds):
        run_wte[f"emb_{i}"] = pad(cluster(wte, "emb", i) if c.div_val > 1 else
                                  np.asarray(wte["emb_0"])[l:r], (r - l, e))
        run_wte[f"proj_{i}"] = in_projs[i]
        run_head[f"bias_{i}"] = np.asarray(cluster(head, "bias", i) if c.div_val > 1 else
                                           np.asarray(head["bias"])[l:r])
        if not c.tie_weight:
            run_head[f"weight_{i}"] = pad(cluster(head, "weight", i) if c.div_val > 1 else
                                          np.asarray(head["weight"])[l:r], (r - l, e))
        if not c.tie_projs[i]:
            run_head[f"proj_{i}"] = (pad(head[f"proj_{i}"], (e, c.d_model))
                                     if c.has_input_projections() else in_projs[i])
    for k in ("cluster_weight", "cluster_bias"):
        if k in head:
            run_head[k] = np.asarray(head[k])
    return {"params": {"wte": run_wte, "lm_head": run_head, "ln_f": p["ln_f"]}}


def bucket_width(width: int, multiple: int) -> int:
    """width rounded up to a multiple of `multiple` (1: unchanged)."""
    return -(-width // multiple) * multiple


def stages(config: GPT2FlexConfig, ffn_multiple: int = 1, run_heads: int = 0):
    """The model cut into separately compiled stages (lpzero_jax/engine/staging.py).

    outer: the layer-less GPT2Flex (adaptive embedding + positions; ln_f + adaptive softmax loss),
    shared by every architecture with the same embedding side; layers: one `Block` each, keyed by
    (d_model, n_head, d_inner) only.
    ffn_multiple > 1: each layer runs as a Block whose FFN width is d_inner rounded up to that
    multiple (`Stages.bucket`); its zero-filled extra units are exact zeros in every output,
    activation and gradient (c_fc column, c_fc bias and c_proj row all zero: gelu(0) = 0 and their
    gradients vanish), so equal-bucket layers share one compiled program.
    run_heads > 0: a layer whose n_head divides run_heads (and run_heads divides d_model) runs as
    a mixed-heads Block of run_heads fine heads (`Attention`), so its program does not depend on
    n_head either; its `head_mix` comes from `Stages.bucket_params`, its S samples are read at
    stride run_heads / n_head along the head axis (`Stages.bucket_strides`).
    head_inputs: the rows of each tail cluster's targets (`tail_cluster_rows`), so the head stage
    runs each tail softmax on its ~5% of tokens instead of all of them.
    host_prelude: the embedding and positions in NumPy (`first_layer_input_host`): no compiled
    embedding program per embedding configuration.
    head_module / head_params: the head as every architecture with the same (d_model, d_embed)
    runs it (`head_params`: tail clusters zero-padded to d_embed, +5% head FLOPs), so 12 head
    programs serve the 200 architectures instead of 36.
    """


    if config.dropout is not None:
        raise ValueError("train-mode dropout runs in the whole-model programs only; the staged "
                         "extraction needs an eval-mode config (dropout None)")
    outer = GPT2Flex(dataclasses.replace(config, n_head=(), d_inner=()))
    layers = [(Block(config.d_model, h, f, config.layer_norm_eps), f"layer_{i}")
              for i, (h, f) in enumerate(zip(config.n_head, config.d_inner))]

    def head_inputs(batch):
        return {"cluster_rows": tail_cluster_rows(config, np.asarray(batch["input_ids"])[:, 1:])}

    def mixes(block: Block) -> bool:
        return run_heads > 0 and run_heads % block.n_head == 0 and block.d_model % run_heads == 0

    def bucket(block: Block) -> Block:
        width = bucket_width(block.d_inner, max(ffn_multiple, 1))
        if mixes(block):
            return block.clone(d_inner=width, n_head=run_heads, mixed_heads=True)
        return block.clone(d_inner=width)

    def bucket_params(block: Block, run: Block):
        return {"attn": {"head_mix": head_mix(block.d_model, block.n_head, run.n_head)}} if (
            run.mixed_heads) else {}

    def bucket_strides(block: Block, run: Block):
        return {"S": (1, run.n_head // block.n_head, 1, 1)} if run.mixed_heads else {}

    def host_prelude(outer_params, batch):
        return first_layer_input_host(config, outer_params, batch["input_ids"])

    bucketed = ffn_multiple > 1 or run_heads > 0
    return Stages(outer=outer, layers=layers, bucket=bucket if bucketed else None,
                  head_inputs=head_inputs, bucket_params=bucket_params if bucketed else None,
                  bucket_strides=bucket_strides if bucketed else None, host_prelude=host_prelude,
                  head_module=head_module(config),
                  head_params=functools.partial(head_params, config))
