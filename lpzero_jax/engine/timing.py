"""Optional instrumentation of the staged extraction: seconds and FLOPs per stage kind."""

from __future__ import annotations

import collections
from typing import Dict, Hashable, Optional

import jax

from lpzero_jax.models.softmax import unrolled


class StageTimer:
    """Optional instrumentation of `extract_staged`: per stage kind ('outer', 'layer_fwd', 'head',
    'layer_bwd', 'prelude_bwd') the seconds (each call waited for) and the FLOPs of the very
    programs run (XLA cost analysis of each call's lowering, cached per program and shapes; loops
    are unrolled for the count, `models.softmax.unrolled`)."""

    def __init__(self):
        self.seconds: Dict[str, float] = collections.defaultdict(float)
        self.flops: Dict[str, float] = collections.defaultdict(float)
        self._cost: Dict[Hashable, float] = {}

    def host(self, kind: str, fn, *args):
        """Times a host (NumPy) step: seconds only, no compiled program, no FLOPs counted."""
        import time

        t = time.perf_counter()
        out = fn(*args)
        self.seconds[kind] += time.perf_counter() - t
        return out

    def __call__(self, kind: str, fn, *args):
        import time

        key = (kind, id(fn), jax.tree_util.tree_structure(args),
               tuple((tuple(x.shape), str(x.dtype)) for x in jax.tree_util.tree_leaves(args)))
        if key not in self._cost:
            # traced afresh with loops unrolled: XLA's cost analysis counts a loop body once

            with unrolled():
                cost = jax.jit(lambda *a: fn.__wrapped__(*a)).lower(*args).cost_analysis()
            cost = cost[0] if isinstance(cost, (list, tuple)) else cost
            self._cost[key] = float(cost.get("flops", 0.0)) if cost else 0.0
        t = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        self.seconds[kind] += time.perf_counter() - t
        self.flops[kind] += self._cost[key]
        return out


def call_stage(kind: str, fn, *args, timer: Optional[StageTimer] = None):
    return fn(*args) if timer is None else timer(kind, fn, *args)


def call_host(kind: str, fn, *args, timer: Optional[StageTimer] = None):
    return fn(*args) if timer is None else timer.host(kind, fn, *args)
