"""Train-mode dropout (`config.train_mode`): fixed masks, eval mode unchanged, refused where absent."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from lpzero_jax.errors import ConfigError
from lpzero_jax.families import get_family
from lpzero_jax.models.dropout import TrainDropout
from lpzero_jax.models.flexibert import FlexiBert
from lpzero_jax.models.gpt2_flex import GPT2Flex
from tests.conftest import experiment_config
from tests.models.test_flexibert import TINY
from tests.models.test_gpt2_flex import CONFIGS, ids_batch, init


def test_masks_are_fixed_by_seed_and_site_and_keep_the_mean():
    x = jnp.ones((64, 256))
    d = TrainDropout(hidden=0.25, seed=3)
    a = np.asarray(d.apply(x, 0.25, 1, 0))
    np.testing.assert_array_equal(a, np.asarray(d.apply(x, 0.25, 1, 0)))  # same key, same mask
    assert not np.array_equal(a, np.asarray(d.apply(x, 0.25, 1, 1)))  # another site
    assert not np.array_equal(a, np.asarray(TrainDropout(0.25, seed=4).apply(x, 0.25, 1, 0)))
    assert abs(float(np.mean(a == 0)) - 0.25) < 0.02
    np.testing.assert_allclose(a[a != 0], 1 / 0.75, rtol=1e-6)  # inverted dropout
    assert d.apply(x, 0.0, 1, 0) is x
    with pytest.raises(ValueError, match="must be in"):
        TrainDropout(hidden=1.0)


def _gpt2_loss(config):
    model, params = init(dataclasses.replace(config, dropout=None))
    ids = ids_batch()
    model = GPT2Flex(config)
    return float(model.apply(params, model.apply(params, ids, method=model.embed), {"input_ids": ids},
                             method=model.proxy_loss))


@pytest.mark.slow  # ~25 s shared; the FlexiBERT dropout test stays
def test_gpt2_train_mode_changes_values_and_zero_rates_reproduce_eval():
    c = CONFIGS["div2"]
    eval_loss = _gpt2_loss(c)
    assert _gpt2_loss(dataclasses.replace(c, dropout=TrainDropout(seed=1))) == pytest.approx(
        eval_loss, rel=1e-6)
    train = _gpt2_loss(dataclasses.replace(c, dropout=TrainDropout(hidden=0.1, seed=1)))
    assert train != pytest.approx(eval_loss, rel=1e-4)
    assert train == _gpt2_loss(dataclasses.replace(c, dropout=TrainDropout(hidden=0.1, seed=1)))
    assert train != _gpt2_loss(dataclasses.replace(c, dropout=TrainDropout(hidden=0.1, seed=2)))


def test_flexibert_train_mode_changes_activations_and_zero_rates_reproduce_eval(bert_ids):
    family = get_family("flexibert")
    params = family.init_params(TINY, 0)
    ids = jnp.asarray(bert_ids)

    def hidden(config):
        model = FlexiBert(config)
        return np.asarray(model.apply(params, model.apply(params, ids, method=model.embed)))

    eval_h = hidden(TINY)
    np.testing.assert_allclose(hidden(dataclasses.replace(TINY, dropout=TrainDropout(seed=1))),
                               eval_h, rtol=1e-5, atol=1e-5)
    train = hidden(dataclasses.replace(TINY, dropout=TrainDropout(0.1, 0.1, seed=1)))
    assert np.max(np.abs(train - eval_h)) > 1e-2
    np.testing.assert_array_equal(
        train, hidden(dataclasses.replace(TINY, dropout=TrainDropout(0.1, 0.1, seed=1))))


@pytest.mark.parametrize("name", ["gpt2", "flexibert"])
def test_train_mode_option_sets_the_reference_dropout(name):
    family = get_family(name)
    config = experiment_config(name)
    config.num_archs = 1
    arch = family.load_benchmark(config)[0]
    assert family.model_config(arch, config).dropout is None  # eval mode is the default
    config.train_mode = True
    config.seed = 7
    mc = family.model_config(arch, config)
    hidden, attention = family.train_dropout
    assert mc.dropout == TrainDropout(hidden=hidden, attention=attention, seed=7)
    assert family.stages(mc) is None  # whole-model programs


def test_train_mode_is_refused_where_the_family_has_no_dropout():
    from lpzero_jax.workdir import validate_config

    config = experiment_config("llama")
    config.mode = "rank"
    validate_config(config)
    config.train_mode = True
    with pytest.raises(ConfigError, match="train_mode: family 'llama' has no dropout"):
        validate_config(config)
