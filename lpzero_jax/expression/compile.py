"""A genome becomes ONE jitted function over the stacked compact inputs of many architectures.

Aggregation, defined once here: each branch applies its unary chain to every stored tensor
(ops.py), reduces each tensor to its mean, combines the tensors of a layer into one value per
(architecture, layer) [N, L]; J, a single model-wide tensor, counts once at every layer. The binary
op combines the two branches layer by layer (a pruned branch yields the other branch unchanged),
and the layers are combined into the architecture's score. `aggregate` says how tensors of a
layer and layers of a model are combined: "sum" (default; the paper's Appendix B formulas sum over
layers, and a sum lets a proxy see depth and the number of FFN stacks) or "mean" (the original
code's average of its per-tensor list, which hides both).
Everything is vectorised over architectures, layers and tensors: one XLA program per genome (and
input shape), compiled once and cached.
"""

from __future__ import annotations

import functools
from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np

from lpzero_jax.expression import ops
from lpzero_jax.expression.genome import Genome, parse_genome
from lpzero_jax.inputs import StackedInputs

AGGREGATIONS = ("mean", "sum")


def as_tensor(values: jax.Array, counts: jax.Array) -> ops.Tensor:
    """Stacked (values [..., K], counts [...]) -> ops.Tensor (the first min(count, K) samples real)."""
    k = values.shape[-1]
    return ops.Tensor(values=values, n_valid=jnp.minimum(counts, k).astype(jnp.int32),
                      count=counts.astype(jnp.float32))


def branch_values(values: jax.Array, counts: jax.Array, chain: Tuple[str, ...],
                  aggregate: str = "sum"):
    """Applies a unary chain; returns (per-layer value [N, L], layer valid [N, L])."""
    t = as_tensor(values, counts)
    for name in chain:
        t = ops.unary(name).fn(t)
    per_tensor = ops.tensor_mean(t)  # [N, L, T]
    slot = counts > 0
    n_slots = jnp.sum(slot, axis=-1)
    per_layer = jnp.sum(jnp.where(slot, per_tensor, 0.0), axis=-1)
    if aggregate == "mean":
        per_layer = per_layer / jnp.maximum(n_slots, 1)
    return per_layer, n_slots > 0


def _align_layers(v1, m1, v2, m2, layer_mask):
    """Puts both branches on the architectures' real layers [N, L]; a single-layer branch (J) is
    broadcast to every real layer."""
    l = layer_mask.shape[1]

    def fit(v, m):
        if v.shape[1] == 1 and l > 1:
            return jnp.broadcast_to(v, (v.shape[0], l)), layer_mask & m
        if v.shape[1] == 1:
            return v, layer_mask & m
        pad = l - v.shape[1]
        if pad > 0:
            v = jnp.pad(v, ((0, 0), (0, pad)))
            m = jnp.pad(m, ((0, 0), (0, pad)))
        return v[:, :l], m[:, :l] & layer_mask

    v1, m1 = fit(v1, m1)
    v2, m2 = fit(v2, m2)
    return v1, m1, v2, m2


def reduce_layers(v: jax.Array, m: jax.Array, aggregate: str) -> jax.Array:
    """Per-layer values [N, L] (valid where m) -> one score per architecture (NaN if no layer):
    their sum or mean (`aggregate`)."""
    total = jnp.sum(jnp.where(m, v, 0.0), axis=-1)
    n = jnp.sum(m, axis=-1)
    score = total if aggregate == "sum" else total / jnp.maximum(n, 1)
    return jnp.where(n > 0, score, jnp.nan)


def combine(genome: Genome, b1, b2, layer_mask, aggregate: str = "sum") -> jax.Array:
    """Binary op per layer, then the layer reduction; NaN for an architecture with no valid layer."""
    (v1, m1), (v2, m2) = b1, b2
    p1, p2 = genome.branch_pruned(0), genome.branch_pruned(1)
    v1, m1, v2, m2 = _align_layers(v1, m1, v2, m2, layer_mask)
    if p1 and p2:
        return jnp.full(v1.shape[:1], jnp.nan)
    if p1:
        v, m = v2, m2
    elif p2:
        v, m = v1, m1
    else:
        v, m = ops.binary(genome.binary)(v1, v2), m1 & m2
    return reduce_layers(v, m, aggregate)


def genome_function(genome: Genome, aggregate: str = "sum"):
    """The pure (unjitted) scoring function f(v1, c1, v2, c2, layer_mask) -> scores [N]."""
    if aggregate not in AGGREGATIONS:
        raise ValueError(f"unknown aggregate {aggregate!r}; expected one of {AGGREGATIONS}")

    def score(v1, c1, v2, c2, layer_mask):
        b1 = branch_values(v1, c1, genome.unary[0], aggregate)
        b2 = branch_values(v2, c2, genome.unary[1], aggregate)
        return combine(genome, b1, b2, layer_mask, aggregate)

    return score


@functools.lru_cache(maxsize=4096)
def compile_genome(genome: Genome | str, aggregate: str = "sum"):
    """ONE jitted function scores(stacked: StackedInputs) -> np.ndarray [N] for this genome.

    Compilation is cached per genome (and per input shape by jit itself).
    """
    if isinstance(genome, str):
        genome = parse_genome(genome)
    jitted = jax.jit(genome_function(genome, aggregate))
    x1, x2 = genome.inputs

    def scores(stacked: StackedInputs) -> np.ndarray:
        return np.asarray(jitted(stacked.values[x1], stacked.counts[x1],
                                 stacked.values[x2], stacked.counts[x2], stacked.layer_mask))

    scores.genome = genome
    scores.jitted = jitted
    return scores
