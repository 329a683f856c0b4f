"""Perplexity of a LLaMA on fixed token windows, compiled per distinct layer (not per model).

LoNAS subnets of one supernet differ only in their layers' FFN widths, so a whole-model program
per subnet would recompile 30 layers each time; here each distinct `DecoderLayer` is jitted once
(`_layer_fn`, keyed by its config) and reused by every subnet that has it, and the embedding and
head are one more program shared by all. Equal to the whole-model `lm_loss` (tested).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Dict, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from lpzero_jax.models.llama import DecoderLayer, Llama, LlamaConfig, LlamaLayerConfig


@functools.lru_cache(maxsize=32)
def _layer_fn(shared: LlamaConfig, layer: LlamaLayerConfig):
    module = DecoderLayer(shared, layer)
    return jax.jit(lambda p, x: module.apply({"params": p}, x))


@functools.lru_cache(maxsize=4)
def _outer_fns(shared: LlamaConfig):
    model = Llama(shared)

    def embed(p, ids):
        return model.apply(p, ids, method=model.embed)

    def summed_nll(p, hidden, ids):
        logits = model.apply(p, hidden, method=model.logits)
        logp = jax.nn.log_softmax(logits[:, :-1].astype(jnp.float32), axis=-1)
        return -jnp.sum(jnp.take_along_axis(logp, ids[:, 1:, None], axis=-1))

    return jax.jit(embed), jax.jit(summed_nll)


def windows_nll(config: LlamaConfig, params, windows: np.ndarray, batch_size: int = 8) -> Tuple[float, int]:
    """(summed next-token NLL, number of predicted tokens) over `windows` [N, S] (each window on its
    own: S - 1 predictions), in batches of `batch_size` (a smaller last batch compiles once more)."""
    shared = dataclasses.replace(config, layers=())
    p = params["params"]
    outer = {"params": {k: v for k, v in p.items() if not k.startswith("layer_")}}
    embed, summed_nll = _outer_fns(shared)
    total, count = 0.0, 0
    windows = np.asarray(windows, np.int32)
    for i in range(0, len(windows), batch_size):
        ids = jnp.asarray(windows[i:i + batch_size])
        x = embed(outer, ids)
        for j, layer in enumerate(config.layers):
            x = _layer_fn(shared, layer)(p[f"layer_{j}"], x)
        total += float(summed_nll(outer, x, ids))
        count += ids.shape[0] * (ids.shape[1] - 1)
    return total, count


def perplexity(config: LlamaConfig, params, windows: np.ndarray, batch_size: int = 8) -> Dict[str, float]:
    """{loss: mean NLL per predicted token, ppl: exp(loss), tokens: predictions counted}."""
    total, count = windows_nll(config, params, windows, batch_size)
    loss = total / count
    return {"loss": loss, "ppl": math.exp(loss), "tokens": count}


def spread_windows(ids: np.ndarray, num: int, seq_len: int) -> np.ndarray:
    """`num` windows of `seq_len` tokens at evenly spaced offsets over the whole of `ids` (a fixed
    slice that samples the text's every part, not only its first article), [num, seq_len] int32."""
    if len(ids) < num * seq_len:
        raise ValueError(f"{len(ids)} tokens are fewer than {num} windows of {seq_len}")
    starts = np.linspace(0, len(ids) - seq_len, num).astype(np.int64)
    return np.stack([ids[s:s + seq_len] for s in starts]).astype(np.int32)
