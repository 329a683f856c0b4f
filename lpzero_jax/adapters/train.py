"""Training the elastic super-adapter (LoNAS): each step one subnet, the sandwich rule, exact resume.

A run is a pure function of (spec, base weights, training ids, TrainSettings):
  - step s trains the subnet `step_choice(space, s)`: in every cycle of `sandwich_period` steps the
    first is the largest subnet, the second the smallest, the others uniform random draws of the
    space seeded by (seed, s) (the sandwich rule of BigNAS / BootstrapNAS, the largest and smallest
    always in the rotation). The subnet is data (masks, `lora.masked_params`), so one compiled
    program trains them all;
  - the batch of step s: windows of `seq_len` tokens cut from the training ids, in seeded epochs
    (`lm_training.batch_order` with data_seed);
  - only the adapter is differentiated; the base weights are an argument that is never updated;
  - AdamW with linear warm-up and cosine decay (`lm_training.adamw_warmup_cosine`), global-norm clip.
Because the subnet and the batch of a step depend on (seeds, step) alone, the checkpoint (adapter,
optimizer state, step, per-step losses, elapsed seconds; written atomically every
`checkpoint_every` steps) resumes a killed run onto the same trajectory as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from pathlib import Path
from typing import Callable, List, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from lpzero_jax import files
from lpzero_jax.adapters.lora import AdapterSpec, choice_masks, init_adapter, masked_params
from lpzero_jax.errors import DataFileError
from lpzero_jax.lm_training import adamw_warmup_cosine, batch_order, windows
from lpzero_jax.models.llama import Llama, lm_loss
from lpzero_jax.models.lonas import Choice, LonasSpace

CHECKPOINT = "adapter_checkpoint.msgpack"
KIND_MAX, KIND_MIN, KIND_RANDOM = "max", "min", "random"


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Everything that decides the trained adapter (its digest names the result)."""

    steps: int = 2000  # the schedule's length (a run may stop earlier and resume later)
    batch_size: int = 4
    seq_len: int = 128
    learning_rate: float = 1e-3  # LoNAS's LLaMA-7B runs: 3e-4
    warmup_steps: int = 30  # LoNAS's LLaMA-7B runs: 100
    final_lr_fraction: float = 0.0
    weight_decay: float = 0.0  # HF Trainer's default, as in LoNAS's commands
    b1: float = 0.9
    b2: float = 0.999
    grad_clip: float = 1.0
    sandwich_period: int = 4  # per cycle: largest, smallest, then period - 2 random subnets
    seed: int = 0  # adapter init and the random subnets
    data_seed: int = 0  # batch order


def settings_digest(spec: AdapterSpec, settings: TrainSettings, data: dict) -> str:
    """sha256 (16 hex) of the spec, the settings and `data` (e.g. the base file's and the training
    text's digests): the trained adapter's name."""
    return files.value_digest({"spec": spec.describe(), "settings": dataclasses.asdict(settings),
                               "data": data})


def step_kind(step: int, period: int) -> str:
    phase = step % period
    return KIND_MAX if phase == 0 else KIND_MIN if phase == 1 else KIND_RANDOM


def step_choice(space: LonasSpace, step: int, settings: TrainSettings) -> Choice:
    """The subnet trained at `step` (a pure function of the seed and the step)."""
    kind = step_kind(step, settings.sandwich_period)
    if kind == KIND_MAX:
        return space.max_choice()
    if kind == KIND_MIN:
        return space.min_choice()
    return space.random_choice(np.random.default_rng([settings.seed, step]))


@functools.lru_cache(maxsize=4)
def make_step(spec: AdapterSpec, settings: TrainSettings):
    """(optimizer, jitted step(adapter, opt_state, base, width_mask, rank_mask, ids) -> (adapter,
    opt_state, loss)). Gradients are taken with respect to the adapter only."""
    model = Llama(spec.adapted)
    optimizer = adamw_warmup_cosine(settings.steps, settings.learning_rate, settings.warmup_steps,
                                    settings.final_lr_fraction, settings.weight_decay, settings.b1,
                                    settings.b2, settings.grad_clip)

    def loss_fn(adapter, base, width_mask, rank_mask, ids):
        params = masked_params(base, adapter, width_mask, rank_mask)
        return lm_loss(model.apply(params, model.apply(params, ids, method=model.embed)), ids)

    @jax.jit
    def step(adapter, opt_state, base, width_mask, rank_mask, ids):
        loss, grads = jax.value_and_grad(loss_fn)(adapter, base, width_mask, rank_mask, ids)
        updates, opt_state = optimizer.update(grads, opt_state, adapter)
        return jax.tree_util.tree_map(jnp.add, adapter, updates), opt_state, loss

    return optimizer, step


@dataclasses.dataclass
class TrainState:
    adapter: dict
    opt_state: object
    step: int = 0
    losses: List[float] = dataclasses.field(default_factory=list)  # one per step done
    seconds: float = 0.0  # training wall time summed over the runs that made it
    run_rate: float = float("nan")  # tokens/s of this run's steps after its first (not saved)


def save_checkpoint(path: Path, state: TrainState, digest: str) -> None:
    """Atomically: adapter, optimizer state, step, losses, seconds and the settings digest."""
    payload = {"adapter": serialization.to_state_dict(state.adapter),
               "opt_state": serialization.to_state_dict(state.opt_state),
               "step": state.step, "losses": np.asarray(state.losses, np.float64),
               "seconds": state.seconds, "digest": digest}
    with files.atomic_write(path, binary=True) as f:
        f.write(serialization.msgpack_serialize(payload))


def load_checkpoint(path: Path, fresh: TrainState, digest: str) -> Optional[TrainState]:
    """The state saved at `path` (None if there is none); DataFileError if it belongs to other
    settings or is damaged."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        raw = serialization.msgpack_restore(path.read_bytes())
        if raw.get("digest") != digest:
            raise DataFileError(f"{path} is a checkpoint of other settings ({raw.get('digest')}, this run "
                                f"{digest}): use a new workdir or delete it")
        return TrainState(adapter=serialization.from_state_dict(fresh.adapter, raw["adapter"]),
                          opt_state=serialization.from_state_dict(fresh.opt_state, raw["opt_state"]),
                          step=int(raw["step"]), losses=[float(x) for x in np.asarray(raw["losses"])],
                          seconds=float(raw["seconds"]))
    except DataFileError:
        raise
    except Exception as e:  # noqa: BLE001  (msgpack / structure errors: a damaged file)
        raise DataFileError(f"{path}: not a readable adapter checkpoint ({type(e).__name__}: {e}); "
                            "delete it to start again") from None


def train_adapter(spec: AdapterSpec, base, train_ids: np.ndarray, settings: TrainSettings, workdir: Path,
                  digest: str, checkpoint_every: int = 50, log_every: int = 10, stop_at: int = 0,
                  max_seconds: float = 0.0, log: Callable[[str], None] = print,
                  on_step: Optional[Callable[[int, float], None]] = None) -> TrainState:
    """Trains (or resumes) the super-adapter in `workdir` up to `settings.steps`, or fewer: up to
    step `stop_at` (> 0), or until `max_seconds` (> 0) of this run have passed; a checkpoint is
    written every `checkpoint_every` steps and when the run stops. `on_step(step, loss)` is called
    after each step (tests use it to simulate a kill). Returns the final state."""
    space = spec.space()
    base = jax.device_put(base)  # once: a host array would be copied in again at every step
    train = windows(train_ids, settings.seq_len)
    order = batch_order(len(train), settings.batch_size, settings.steps, settings.data_seed)
    optimizer, step_fn = make_step(spec, settings)
    adapter = init_adapter(spec, settings.seed)
    fresh = TrainState(adapter=adapter, opt_state=optimizer.init(adapter))
    path = Path(workdir) / CHECKPOINT
    state = load_checkpoint(path, fresh, digest) or fresh
    end = settings.steps if stop_at <= 0 else min(settings.steps, stop_at)
    if state.step:
        log(f"resuming at step {state.step}/{settings.steps} ({state.seconds:.0f}s trained)")
    tokens_per_step = settings.batch_size * settings.seq_len
    started = time.perf_counter()
    timed_from, timed_steps = None, 0  # the first step of a run includes compilation: not timed
    while state.step < end:
        s = state.step
        width, rank = choice_masks(spec, [step_choice(space, s, settings)])
        t = time.perf_counter()
        adapter, opt_state, loss = step_fn(state.adapter, state.opt_state, base, jnp.asarray(width[0]),
                                           jnp.asarray(rank[0]), jnp.asarray(train[order[s]]))
        loss = float(loss)
        if not math.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss} at step {s + 1} ({step_kind(s, settings.sandwich_period)} "
                                     "subnet): lower adapter.learning_rate")
        now = time.perf_counter()
        state.adapter, state.opt_state, state.step = adapter, opt_state, s + 1
        state.losses.append(loss)
        state.seconds += now - t
        if timed_from is None:
            timed_from = now
        else:
            timed_steps += 1
        if on_step is not None:
            on_step(state.step, loss)
        out_of_time = max_seconds > 0 and now - started >= max_seconds
        if state.step % checkpoint_every == 0 or state.step == end or out_of_time:
            save_checkpoint(path, state, digest)
        if timed_steps:
            state.run_rate = timed_steps * tokens_per_step / (now - timed_from)
        if log_every and (state.step % log_every == 0 or state.step == end or out_of_time):
            rate = state.run_rate
            eta = (settings.steps - state.step) * tokens_per_step / rate if timed_steps else float("nan")
            recent = state.losses[-log_every:]
            log(f"step {state.step}/{settings.steps} loss {np.mean(recent):.4f} (last {loss:.4f}, "
                f"{step_kind(s, settings.sandwich_period)}) {rate:.0f} tokens/s, eta {eta / 60:.1f} min "
                f"to step {settings.steps}")
        if out_of_time:
            log(f"stopped after {now - started:.0f}s (adapter.max_seconds) at step {state.step}")
            break
    return state


def loss_by_kind(losses, period: int) -> dict:
    """{kind: [(step, loss)]} of a per-step loss list (step counted from 1)."""
    out = {KIND_MAX: [], KIND_MIN: [], KIND_RANDOM: []}
    for s, loss in enumerate(losses):
        out[step_kind(s, period)].append((s + 1, float(loss)))
    return out
