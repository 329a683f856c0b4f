"""Each proxy's declared factors (`Proxy.factors`) hold: a proxy declared not to read the batch
(or the initialisation) gives the same value when only that factor's seed changes."""

import pytest

from tests.conftest import tiny_config
from tests.proxies.test_zoo import LAYERS, TINY_GPT2


def _context(family_name, data_root, init_seed, batch_seed):
    from lpzero_jax.benchmarks.base import Arch
    from lpzero_jax.families import get_family
    from lpzero_jax.proxies import ArchContext

    family = get_family(family_name)
    config = tiny_config(data_root=str(data_root), family=family_name, seed=batch_seed)
    arch = (Arch("tiny", dict(hidden_size=32, encoder_layers=LAYERS), 1.0, {})
            if family_name == "flexibert" else Arch("tiny_gpt2", TINY_GPT2, -100.0, {}))
    batch = family.make_batch(config)
    config.seed = init_seed
    return ArchContext(family, arch, config, batch)


def _unread(family_name):
    """(proxy, factor) pairs the registry declares unread for `family_name`."""
    import lpzero_jax.proxies  # noqa: F401
    from lpzero_jax.families import get_family
    from lpzero_jax.proxies import FACTORS, PROXIES

    family = get_family(family_name)
    return [(n, f) for n in PROXIES.names() for f in sorted(FACTORS - PROXIES.get(n).factors_for(family))]


@pytest.mark.parametrize("family_name", ["flexibert", "gpt2"])
def test_a_proxy_does_not_move_with_a_factor_it_declares_unread(family_name, data_root):
    from lpzero_jax.proxies import PROXIES

    pairs = _unread(family_name)
    # what the declarations say (a test of the test): counts from shapes read neither factor,
    # weight-only proxies no batch; GPT-2's data-free Synflow pass (sum of outputs) no batch
    assert ("params", "init") in pairs and ("zerolm", "batch") in pairs
    assert (("synflow", "batch") in pairs) == (family_name == "gpt2")
    assert ("attention_confidence", "batch") not in pairs
    contexts = {key: _context(family_name, data_root, *key) for key in ((0, 0), (1, 0), (0, 1))}
    for name, factor in pairs:
        fn = PROXIES.get(name)
        base = fn(contexts[(0, 0)])
        moved = fn(contexts[(1, 0) if factor == "init" else (0, 1)])
        assert moved == pytest.approx(base, rel=1e-6, nan_ok=True), (name, factor)
    # and a factor that is read does move the value (the contexts differ as intended)
    read = PROXIES.get("zerolm")
    assert read(contexts[(1, 0)]) != pytest.approx(read(contexts[(0, 0)]), rel=1e-6)
