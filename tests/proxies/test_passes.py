"""The releasable passes each proxy declares (`Proxy.passes`) and the rank loop's release plan:
a declaration covers every big pass the proxy reads, the plan releases a pass only after its last
reader, and scoring with releases gives the values of scoring without them."""

import json
import math

import pytest

from tests.conftest import tiny_config
from tests.proxies.test_zoo import TINY_GPT2, _context


def _registered():
    import lpzero_jax.proxies  # noqa: F401
    from lpzero_jax.proxies import PROXIES

    return {n: PROXIES.get(n) for n in PROXIES.names()}


@pytest.mark.parametrize("family_name", ["flexibert", "gpt2"])
def test_each_proxy_reads_only_the_passes_it_declares(family_name, data_root):
    from lpzero_jax.proxies.base import RELEASABLE

    proxies = _registered()
    assert all(p.passes is not None for p in proxies.values()), "every built-in proxy declares"
    seen = set()
    for fuse in (True, False):  # the fused HVP (rank's default) and the separate one
        ctx = _context(family_name, data_root)
        ctx.fuse_hvp = fuse
        for name, proxy in proxies.items():
            ctx.timed_call(proxy)
            read = ctx._used & RELEASABLE
            seen |= read
            assert read <= proxy.passes, (name, sorted(read - proxy.passes))
    # the test sees the big passes (it can fail): gradients, HVP, Synflow and compact inputs
    assert {"backward", "hvp", "synflow"} <= seen and seen & {"inputs_backward", "inputs_forward"}


def _fake(passes, needs_hvp=False):
    from lpzero_jax.proxies.base import Proxy

    return Proxy(lambda ctx: 0.0, needs_hvp=needs_hvp,
                 passes=None if passes is None else frozenset(passes))


def test_release_plan_groups_by_pass_and_releases_after_the_last_reader():
    from lpzero_jax.proxies.base import release_plan

    proxies = {"params": _fake(()), "synflow": _fake({"synflow"}), "snip": _fake({"backward"}),
               "genome": _fake({"inputs_backward", "inputs_forward", "inputs_weights"}),
               "grasp": _fake({"backward", "hvp"}, needs_hvp=True),
               "pca": _fake({"backward", "forward"})}
    plan = release_plan(proxies, list(proxies))
    assert plan == [("grasp", ("hvp",)), ("snip", ()), ("pca", ("backward", "forward")),
                    ("synflow", ("synflow",)),
                    ("genome", ("inputs_backward", "inputs_forward", "inputs_weights")),
                    ("params", ())]
    # an undeclared proxy may read anything: nothing is released while it is still to come
    proxies["custom"] = _fake(None)
    plan = dict(release_plan(proxies, list(proxies)))
    assert list(release_plan(proxies, list(proxies)))[1][0] == "custom"  # right after the HVP's
    assert plan["grasp"] == () and plan["custom"] == ("hvp", "linear_output_sums")
    # an unknown pass name is refused when registering
    from lpzero_jax.proxies.base import register_proxy

    with pytest.raises(ValueError, match="not among"):
        register_proxy("bad_passes_proxy", passes=frozenset({"activations"}))


def _score_all(data_root, tmp_path, release: bool):
    from lpzero_jax.benchmarks.base import Arch
    from lpzero_jax.families import get_family
    from lpzero_jax.proxies import ArchContext
    from lpzero_jax.proxies import scoring
    from lpzero_jax.proxies.resolve import resolve_proxies

    family = get_family("gpt2")
    config = tiny_config(data_root=str(data_root), family="gpt2")
    arch = Arch("tiny_gpt2", TINY_GPT2, -100.0, {})
    proxies = {**resolve_proxies("all"), **resolve_proxies("sub(softmax(square(J)),abs(square(J)))")}
    batch = family.make_batch(config)
    if not release:  # the previous loop: one context, the HVP's readers first, nothing released
        ctx = ArchContext(family, arch, config, batch, fuse_hvp=True)
        order = sorted(proxies, key=lambda n: not proxies[n].needs_hvp)
        return {n: ctx.timed_call(proxies[n])[0] for n in order}
    log = tmp_path / "values.jsonl"
    scoring.score_into_log(family, [arch], config, batch, proxies, None, log, {}, {})
    return {r["proxy"]: r["value"] for r in map(json.loads, log.read_text().splitlines())}


def test_scoring_with_releases_gives_the_values_of_one_context(data_root, tmp_path):
    released = _score_all(data_root, tmp_path, release=True)
    kept = _score_all(data_root, tmp_path, release=False)
    assert set(released) == set(kept) and len(kept) > 25
    for name, value in kept.items():
        assert math.isfinite(value) == math.isfinite(released[name]), name
        assert released[name] == pytest.approx(value, rel=1e-6, nan_ok=True), name
