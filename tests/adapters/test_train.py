"""Super-adapter training on a tiny random LLaMA: the sandwich schedule, exact resume after a kill,
frozen base weights, a falling loss."""

import dataclasses

import jax
import numpy as np
import pytest

from lpzero_jax.adapters import train
from lpzero_jax.adapters.train import TrainSettings, step_choice, train_adapter
from lpzero_jax.errors import DataFileError
from lpzero_jax.families import get_family
from tests.adapters.test_lora import tiny_spec

SETTINGS = TrainSettings(steps=24, batch_size=2, seq_len=12, learning_rate=0.03, warmup_steps=3,
                         sandwich_period=4, seed=0, data_seed=0)


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def world():
    spec = tiny_spec()
    # weights 15x the init scale: frozen o/down projections of std 0.02 would pass almost nothing
    # of what the adapters learn (a pretrained model's are larger)
    base = jax.tree_util.tree_map(lambda x: x * 15 if x.ndim == 2 else x,
                                  get_family("llama").init_params(spec.supernet, 0))
    # a text with structure to learn: a repeated random phrase of 7 tokens
    phrase = np.random.default_rng(1).integers(0, 61, 7)
    ids = np.tile(phrase, 200).astype(np.int32)
    return spec, base, ids


def run(world, workdir, settings=SETTINGS, **kw):
    spec, base, ids = world
    return train_adapter(spec, base, ids, settings, workdir, digest="d", checkpoint_every=5, log_every=0, **kw)


def test_sandwich_subnets_in_every_cycle():
    space = tiny_spec().space()
    choices = [step_choice(space, s, SETTINGS) for s in range(12)]
    for s in (0, 4, 8):
        assert choices[s] == space.max_choice() and choices[s + 1] == space.min_choice()
    randoms = [choices[s] for s in (2, 3, 6, 7, 10, 11)]
    assert len(set(randoms)) == 6 and space.max_choice() not in randoms
    assert step_choice(space, 7, SETTINGS) == choices[7]  # a pure function of the step


def test_resume_after_kill_follows_the_same_trajectory(tmp_path, world):
    whole = run(world, tmp_path / "whole")
    assert len(whole.losses) == SETTINGS.steps

    def die_at_13(step, loss):  # after the checkpoint of step 10: steps 11..13 are lost
        if step == 13:
            raise Killed

    with pytest.raises(Killed):
        run(world, tmp_path / "killed", on_step=die_at_13)
    resumed = run(world, tmp_path / "killed")
    assert resumed.losses == whole.losses  # bit for bit, every step
    for a, b in zip(jax.tree_util.tree_leaves(resumed.adapter), jax.tree_util.tree_leaves(whole.adapter)):
        np.testing.assert_array_equal(a, b)


def test_stop_at_then_resume_equals_whole(tmp_path, world):
    whole = run(world, tmp_path / "whole")
    part = run(world, tmp_path / "part", stop_at=9)
    assert part.step == 9 and part.losses == whole.losses[:9]
    assert run(world, tmp_path / "part").losses == whole.losses


def test_checkpoint_of_other_settings_is_refused(tmp_path, world):
    spec, base, ids = world
    run(world, tmp_path, stop_at=5)
    with pytest.raises(DataFileError, match="checkpoint of other settings"):
        train_adapter(spec, base, ids, SETTINGS, tmp_path, digest="other", log_every=0)


def test_base_weights_stay_and_loss_falls(tmp_path, world):
    spec, base, ids = world
    before = jax.tree_util.tree_map(np.array, base)
    state = run(world, tmp_path, dataclasses.replace(SETTINGS, steps=40))
    for a, b in zip(jax.tree_util.tree_leaves(base), jax.tree_util.tree_leaves(before)):
        np.testing.assert_array_equal(a, b)
    # only LoRA factors are trained
    names = {str(p[-1].key) for p, _ in jax.tree_util.tree_leaves_with_path(state.adapter)}
    assert names == {"lora_a", "lora_b"}
    kinds = train.loss_by_kind(state.losses, SETTINGS.sandwich_period)
    first_max, last_max = kinds["max"][0][1], kinds["max"][-1][1]
    first_min, last_min = kinds["min"][0][1], kinds["min"][-1][1]
    assert last_max < 0.5 * first_max and last_min < 0.5 * first_min, (first_max, last_max, first_min, last_min)


def test_settings_digest_names_every_setting():
    spec = tiny_spec()
    d = train.settings_digest(spec, SETTINGS, {"base": "x"})
    assert d != train.settings_digest(spec, dataclasses.replace(SETTINGS, learning_rate=1e-3), {"base": "x"})
    assert d != train.settings_digest(dataclasses.replace(spec, rank_choices=(8, 4)), SETTINGS, {"base": "x"})
    assert d != train.settings_digest(spec, SETTINGS, {"base": "y"})
