"""One compiled evaluator for EVERY genome: the genome is data (op ids), not code.

`compile_genome` builds one XLA program per genome (fast to run, but each new genome pays a
compilation). Here each input (A J G H W S) gets one jitted *branch program* that takes a unary
chain as an int32 vector of op ids and applies it with `lax.switch` over the op table (a
conditional per position, so only the chosen op runs), then averages per (architecture, layer).
The two branch results are combined by one small jitted function with the binary op id as data.
Everything is compiled once per input shape; afterwards any genome is scored without compiling.

Branch results are cached per (input, chain): crossover recombines whole branches, so offspring
often reuse a parent's branch. Tensors are stored ragged — every real tensor of every architecture
as one row [M, K] with its (architecture, layer) segment — so no work is spent on padding slots.
Semantics are exactly those of compile.py (same ops, same aggregation), checked by tests.
"""

from __future__ import annotations

import functools
from typing import Dict, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from lpzero_jax.expression import ops
from lpzero_jax.expression.compile import as_tensor
from lpzero_jax.expression.genome import Genome
from lpzero_jax.inputs import INPUT_NAMES, StackedInputs
from lpzero_jax.transfer import to_device, to_host

UNARY_ID = {name: i for i, name in enumerate(ops.UNARY_NAMES)}
_PRUNE = UNARY_ID["prune"]
_IDENTITY = UNARY_ID["identity"]


def encode_chain(chain: Sequence[str], n_unary: int) -> np.ndarray:
    """Unary chain -> int32 op ids, padded with identity to n_unary."""
    if len(chain) > n_unary:
        raise ValueError(f"chain {chain} is longer than {n_unary}")
    return np.asarray([UNARY_ID[op] for op in chain] + [_IDENTITY] * (n_unary - len(chain)), np.int32)


def ragged(values: np.ndarray, counts: np.ndarray, groups: int = 1):
    """[N, L, T, K] / [N, L, T] -> rows of the real tensors [M, K], their counts [M] and their
    segment (arch * L + layer) [M], architecture-major.

    groups > 1: the architectures are split into `groups` contiguous blocks, each padded to the same
    number of rows (padding rows have count 0 and segment N * L, which segment sums drop), so that
    the rows can be sharded over `groups` devices without splitting an architecture.
    """
    n, l, t, k = values.shape
    arch, layer, slot = np.nonzero(counts > 0)
    rows, cnt, seg = values[arch, layer, slot], counts[arch, layer, slot], (arch * l + layer)
    if groups <= 1:
        return rows, cnt, seg.astype(np.int32)
    bounds = np.searchsorted(arch, np.linspace(0, n, groups + 1).round().astype(int))
    size = max(1, int(np.max(np.diff(bounds))))
    out_v = np.zeros((groups * size, k), np.float32)
    out_c = np.zeros((groups * size,), cnt.dtype)
    out_s = np.full((groups * size,), n * l, np.int32)
    for g in range(groups):
        a, b = bounds[g], bounds[g + 1]
        out_v[g * size:g * size + b - a] = rows[a:b]
        out_c[g * size:g * size + b - a] = cnt[a:b]
        out_s[g * size:g * size + b - a] = seg[a:b]
    return out_v, out_c, out_s


@functools.lru_cache(maxsize=64)
def _branch_program(num_segments: int, aggregate: str):
    table = [op.fn for op in ops.UNARY_OPS]

    def one(code, values, counts, segments):
        t = as_tensor(values, counts)
        for j in range(code.shape[0]):
            t = jax.lax.switch(code[j], table, t)
        per_tensor = ops.tensor_mean(t)
        sums = jax.ops.segment_sum(per_tensor, segments, num_segments)
        n = jax.ops.segment_sum(jnp.ones_like(per_tensor), segments, num_segments)
        return (sums if aggregate == "sum" else sums / jnp.maximum(n, 1.0)), n > 0

    def run(codes, values, counts, segments):
        return jax.lax.map(lambda c: one(c, values, counts, segments), codes)

    return jax.jit(run)


def _np_reciprocal(x: np.ndarray) -> np.ndarray:
    nz = x != 0
    return np.where(nz, 1.0 / np.where(nz, x, 1.0), 0.0).astype(np.float32)


# NumPy twins of ops.BINARY_OPS (same guards), for the tiny per-layer combine step
NP_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply,
             "div": lambda a, b: a * _np_reciprocal(b)}


def combine_np(v1, m1, p1, v2, m2, p2, binary: str, aggregate: str) -> np.ndarray:
    """Binary op per layer (a pruned branch yields the other), then the layer reduction."""
    if p1 and p2:
        return np.full(v1.shape[0], np.nan, np.float32)
    if p1:
        v, m = v2, m2
    elif p2:
        v, m = v1, m1
    else:
        with np.errstate(all="ignore"):
            v, m = NP_BINARY[binary](v1, v2).astype(np.float32), m1 & m2
    total = np.sum(np.where(m, v, 0.0), axis=-1, dtype=np.float32)
    n = np.sum(m, axis=-1)
    score = total if aggregate == "sum" else total / np.maximum(n, 1)
    return np.where(n > 0, score, np.nan).astype(np.float32)


class GenomeProgram:
    """Scores genomes on fixed stacked inputs with compile-once branch programs and a branch cache."""

    def __init__(self, stacked: StackedInputs, n_unary: int, aggregate: str = "sum",
                 mesh=None):
        """mesh: a 1-D jax.sharding.Mesh ('archs'); rows are then sharded over its devices, whole
        architectures per device (see parallel.arch_mesh), with results equal to one device."""
        from jax.sharding import NamedSharding, PartitionSpec

        self.n_unary = n_unary
        self.aggregate = aggregate
        self.num_archs, self.num_layers = stacked.layer_mask.shape
        self.layer_mask = np.asarray(stacked.layer_mask)
        groups = mesh.devices.size if mesh is not None else 1
        put = to_device
        if groups > 1:
            put = lambda x: jax.device_put(x, NamedSharding(  # noqa: E731
                mesh, PartitionSpec("archs", *([None] * (np.ndim(x) - 1)))))
        self._data: Dict[str, tuple] = {}
        for name in INPUT_NAMES:
            values, counts = stacked.values[name], stacked.counts[name]
            layers = values.shape[1]
            if name == "J":  # one model-wide tensor: segment = architecture, one 'layer'
                values, counts, layers = values[:, :1], counts[:, :1], 1
            v, c, seg = ragged(values, counts, groups)
            self._data[name] = (put(v), put(c), put(seg), self.num_archs * layers, layers)
        self.branch_cache: Dict[Tuple[str, Tuple[str, ...]], tuple] = {}
        self.branch_hits = 0
        self.branch_misses = 0

    def compile(self) -> None:
        """Compiles every input's branch program and the combiner (once per input shape)."""
        code = jax.ShapeDtypeStruct((1, self.n_unary), jnp.int32)
        for name in INPUT_NAMES:
            v, c, seg, num_segments, _ = self._data[name]
            _branch_program(num_segments, self.aggregate).lower(code, v, c, seg).compile()
        self.scores([Genome(("A", "H"), (("identity",) * self.n_unary,) * 2, "add")])

    def _aligned(self, per_layer: np.ndarray, valid: np.ndarray, layers: int):
        per_layer = per_layer.reshape(self.num_archs, layers)
        valid = valid.reshape(self.num_archs, layers)
        if layers == 1:  # J: the same value at every real layer
            return np.broadcast_to(per_layer, self.layer_mask.shape), self.layer_mask & valid
        pad = self.num_layers - layers
        if pad > 0:
            per_layer = np.pad(per_layer, ((0, 0), (0, pad)))
            valid = np.pad(valid, ((0, 0), (0, pad)))
        return per_layer, valid & self.layer_mask

    def branches(self, requests: Sequence[Tuple[str, Tuple[str, ...]]]) -> None:
        """Computes (and caches) the per-layer values of uncached (input, chain) branches."""
        todo: Dict[str, list] = {}
        for name, chain in requests:
            key = (name, tuple(chain))
            if key in self.branch_cache:
                self.branch_hits += 1
            elif key not in todo.setdefault(name, []):
                todo[name].append(key)
        for name, keys in todo.items():
            if not keys:
                continue
            self.branch_misses += len(keys)
            v, c, seg, num_segments, layers = self._data[name]
            program = _branch_program(num_segments, self.aggregate)
            for key in keys:  # one chain per call: a single compiled batch shape
                code = to_device(encode_chain(key[1], self.n_unary)[None])
                per_layer, valid = to_host(program(code, v, c, seg))
                self.branch_cache[key] = self._aligned(per_layer[0], valid[0], layers) + (
                    "prune" in key[1],)

    def scores(self, genomes: Sequence[Genome]) -> np.ndarray:
        """[len(genomes), N] proxy scores (NaN for an architecture without a valid layer)."""
        self.branches([(g.inputs[i], g.unary[i]) for g in genomes for i in range(2)])
        out = []
        for g in genomes:
            v1, m1, p1 = self.branch_cache[(g.inputs[0], tuple(g.unary[0]))]
            v2, m2, p2 = self.branch_cache[(g.inputs[1], tuple(g.unary[1]))]
            out.append(combine_np(v1, m1, p1, v2, m2, p2, g.binary, self.aggregate))
        return np.stack(out)
