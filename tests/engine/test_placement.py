"""Host steps on the host (NumPy, the CPU's choice) or as device programs (an accelerator's):
the same inputs either way, and the device path copies nothing back but the results."""

import numpy as np
import pytest

from lpzero_jax import transfer
from lpzero_jax.engine import placement
from lpzero_jax.families import get_family
from lpzero_jax.inputs import extract_proxy_inputs
from tests.families.test_gpt2 import gpt2_config
from tests.test_transfer import strict_transfers


def test_the_choice_follows_the_backend_unless_forced():
    assert placement.host_steps_on_device() is False  # the tests run on the CPU backend
    with placement.host_steps("device"):
        assert placement.host_steps_on_device() is True
        with placement.host_steps("host"):
            assert placement.host_steps_on_device() is False
        assert placement.host_steps_on_device() is True
    assert placement.host_steps_on_device() is False
    with pytest.raises(ValueError, match="host steps run on one of"):
        with placement.host_steps("gpu"):
            pass


@pytest.mark.parametrize("arch_id", ["config_9_j3", "config_11_j5"])  # div_val 4; div_val 1
def test_gpt2_host_steps_give_the_same_inputs_on_either_side(arch_id, data_root, monkeypatch):
    family = get_family("gpt2")
    config = gpt2_config(data_root=str(data_root), batch_size=4, seq_len=32)
    arch = [a for a in family.load_benchmark(config) if a.arch_id == arch_id][0]
    mc = family.model_config(arch, config)
    params = family.arch_params(mc, config)
    batch = family.make_batch(config)
    stages = family.stages(mc)
    assert stages.host_prelude is not None and stages.head_params is not None
    assert any(stages.bucket(m).d_inner != m.d_inner for m, _ in stages.layers)  # padded layers
    host = extract_proxy_inputs(family, mc, params, batch, 512)
    with placement.host_steps("device"):
        extract_proxy_inputs(family, mc, params, batch, 512)  # compiles the device programs
        with strict_transfers(monkeypatch), transfer.counting() as copies:
            device = extract_proxy_inputs(family, mc, params, batch, 512)
    for n in ("A", "J", "G", "H", "W", "S"):
        np.testing.assert_array_equal(device.counts[n], host.counts[n], err_msg=n)
        np.testing.assert_allclose(device.values[n], host.values[n], rtol=2e-4, atol=1e-6,
                                   err_msg=n)
    # nothing comes back but the results (no parameter tables, no per-layer pads)
    assert copies.to_host_calls == 1
    assert copies.to_device_bytes < 4096  # the batch and the tail rows only
