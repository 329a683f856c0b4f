"""Short, deterministic causal-LM training runs with optax (ground truth for the mini-benchmarks).

A run is fully determined by (model config, init seed, data seed, TrainConfig, token arrays): the
parameters come from the family's rule-based init (`Family.init_params`), the training windows from
a NumPy generator seeded with `data_seed`, and the program is the same jitted step every time.
Every architecture of a benchmark sees the same windows in the same order.

Data: the training ids are cut into non-overlapping windows of `seq_len` tokens, shuffled once per
epoch; the loss of a window is the mean next-token cross-entropy over its seq_len - 1 targets.
Validation: the first `valid_windows` non-overlapping windows of the validation ids (all when 0);
perplexity = exp(mean cross-entropy over every predicted token).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Dict, Hashable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lpzero_jax.models.llama import lm_loss


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    tokens: int  # training budget: steps = tokens // (batch_size * seq_len)
    batch_size: int = 16
    seq_len: int = 128
    learning_rate: float = 2e-3
    warmup_fraction: float = 0.05
    final_lr_fraction: float = 0.1
    weight_decay: float = 0.1
    b1: float = 0.9
    b2: float = 0.95
    grad_clip: float = 1.0
    valid_windows: int = 0  # 0: the whole validation text
    eval_batch_size: int = 64

    @property
    def steps(self) -> int:
        return max(1, self.tokens // (self.batch_size * self.seq_len))


def windows(ids: np.ndarray, seq_len: int) -> np.ndarray:
    """Non-overlapping windows [N, seq_len] from the start of `ids` (the tail is dropped)."""
    n = len(ids) // seq_len
    if n == 0:
        raise ValueError(f"{len(ids)} tokens are fewer than one window of {seq_len}")
    return np.asarray(ids[:n * seq_len], np.int32).reshape(n, seq_len)


def batch_order(num_windows: int, batch_size: int, steps: int, data_seed: int) -> np.ndarray:
    """Window indices [steps, batch_size]: epochs of seeded permutations, concatenated."""
    rng = np.random.default_rng(data_seed)
    need = steps * batch_size
    epochs = [rng.permutation(num_windows) for _ in range(-(-need // num_windows))]
    return np.concatenate(epochs)[:need].reshape(steps, batch_size)


def adamw_warmup_cosine(steps: int, learning_rate: float, warmup_steps: int, final_lr_fraction: float,
                        weight_decay: float, b1: float, b2: float,
                        grad_clip: float) -> optax.GradientTransformation:
    """Global-norm clipping, then AdamW whose rate rises linearly from 0 over `warmup_steps` and
    decays by a cosine to `final_lr_fraction` of the peak at `steps`."""
    warmup = max(1, int(warmup_steps))
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, warmup, max(steps, warmup + 1), learning_rate * final_lr_fraction)
    return optax.chain(optax.clip_by_global_norm(grad_clip),
                       optax.adamw(schedule, b1=b1, b2=b2, weight_decay=weight_decay))


def make_optimizer(tc: TrainConfig) -> optax.GradientTransformation:
    return adamw_warmup_cosine(tc.steps, tc.learning_rate, int(tc.warmup_fraction * tc.steps),
                               tc.final_lr_fraction, tc.weight_decay, tc.b1, tc.b2, tc.grad_clip)


def _loss_fn(model, params, ids):
    embeds = model.apply(params, ids, method=model.embed)
    return lm_loss(model.apply(params, embeds), ids)


@functools.lru_cache(maxsize=4)
def _compiled(family, model_config: Hashable, tc: TrainConfig):
    """(optimizer, jitted train step, jitted summed validation NLL), shared by runs of one shape."""
    model = family.build_model(model_config)
    optimizer = make_optimizer(tc)

    @jax.jit
    def step(params, opt_state, ids):
        loss, grads = jax.value_and_grad(lambda p: _loss_fn(model, p, ids))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def eval_nll(params, ids):
        return _loss_fn(model, params, ids) * (ids.shape[0] * (ids.shape[1] - 1))

    return optimizer, step, eval_nll


def train_lm(family, model_config: Hashable, train_ids: np.ndarray, valid_ids: np.ndarray,
             tc: TrainConfig, init_seed: int, data_seed: int, log_every: int = 0,
             log=print) -> Dict[str, float]:
    """Trains one model from its rule-based init; returns validation perplexity and run facts.

    Raises FloatingPointError if the training loss becomes NaN/inf.
    """
    params = family.init_params(model_config, init_seed)
    optimizer, step, eval_nll = _compiled(family, model_config, tc)
    opt_state = optimizer.init(params)

    train_windows = windows(train_ids, tc.seq_len)
    order = batch_order(len(train_windows), tc.batch_size, tc.steps, data_seed)
    started = time.perf_counter()
    losses = []
    for s in range(tc.steps):
        params, opt_state, loss = step(params, opt_state, jnp.asarray(train_windows[order[s]]))
        if log_every and (s + 1) % log_every == 0:
            loss = float(loss)
            if not math.isfinite(loss):
                raise FloatingPointError(f"training loss is {loss} at step {s + 1}")
            log(f"  step {s + 1}/{tc.steps} loss {loss:.4f} ({time.perf_counter() - started:.0f}s)")
        losses.append(loss)
    losses = [float(x) for x in losses[-max(1, tc.steps // 20):]]
    if not all(math.isfinite(x) for x in losses):
        raise FloatingPointError(f"training loss is not finite at the end: {losses[-1]}")
    train_seconds = time.perf_counter() - started

    valid = windows(valid_ids, tc.seq_len)
    if tc.valid_windows:
        valid = valid[:tc.valid_windows]
    total, count = 0.0, 0
    for i in range(0, len(valid), tc.eval_batch_size):  # the last batch may be smaller: one recompile
        chunk = valid[i:i + tc.eval_batch_size]
        total += float(eval_nll(params, jnp.asarray(chunk)))
        count += chunk.shape[0] * (chunk.shape[1] - 1)
    valid_loss = total / count
    return {"valid_loss": valid_loss, "valid_ppl": math.exp(valid_loss),
            "train_loss_end": float(np.mean(losses)), "steps": tc.steps,
            "train_tokens": tc.steps * tc.batch_size * tc.seq_len, "valid_tokens": count,
            "train_seconds": train_seconds, "eval_seconds": time.perf_counter() - started - train_seconds}
