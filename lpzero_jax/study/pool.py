"""A benchmark's pool: its architectures, ground truth and proxy inputs, loaded once for a study.

Every study searches and scores over inputs extracted once per architecture (the input store of
`lpzero_jax.input_store`); what the hand-crafted references need (#Params and the family's
parameter groups) is counted from shapes, without a forward pass.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Mapping, Optional

import numpy as np
from absl import logging

from lpzero_jax import evaluation
from lpzero_jax.checks import load_archs
from lpzero_jax.errors import ConfigError
from lpzero_jax.families import get_family
from lpzero_jax.input_store import InputStore, collect_inputs
from lpzero_jax.inputs import CompactInputs
from lpzero_jax.models.init import count_params
from lpzero_jax.proxies.param_groups import GROUP_PROXIES


@dataclasses.dataclass
class Pool:
    """arch_ids [N] in benchmark order, truth [N], inputs (N CompactInputs), references: hand-crafted
    proxy name -> [N] values, fingerprint: that of the inputs (config.seed, batch, data);
    positions [N]: each arch's index in the benchmark, of benchmark_size architectures."""

    family: str
    arch_ids: List[str]
    truth: np.ndarray
    inputs: List[CompactInputs]
    references: Mapping[str, np.ndarray]  # LazyReferences from load_pool
    fingerprint: str
    positions: np.ndarray
    benchmark_size: int

    @property
    def size(self) -> int:
        return len(self.arch_ids)

    def digest(self) -> str:
        """Names the pool: its inputs' fingerprint and which architectures (in order)."""
        text = self.fingerprint + "\n" + "\n".join(self.arch_ids)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def search_split(self, sample_archs: int, seed: int):
        """(sample, held_out) pool indices: the sample the `search` mode draws with this seed from
        the whole benchmark (which must lie in the pool), and the rest of the pool."""

        sample_pos, _ = evaluation.sample_split(self.benchmark_size, sample_archs, seed)
        where = {int(p): i for i, p in enumerate(self.positions)}
        missing = [int(p) for p in sample_pos if int(p) not in where]
        if missing:
            raise ConfigError(f"the {self.family} pool lacks {len(missing)} of the {sample_archs} "
                              f"architectures the search with seed {seed} samples (first: benchmark "
                              f"index {missing[0]}); run that search first (it extracts them) or "
                              "use study.pool=all")
        sample = np.asarray(sorted(where[int(p)] for p in sample_pos))
        return sample, np.setdiff1d(np.arange(self.size), sample)


class LazyReferences(Mapping):
    """The references, counted on first use: counting GPT-2's 200 shapes takes minutes (one
    model trace each) and most modes over a pool (few_shot) never read them."""

    def __init__(self, count: Callable[[], Dict[str, np.ndarray]]):
        self._count = count
        self._values: Optional[Dict[str, np.ndarray]] = None

    def _get(self) -> Dict[str, np.ndarray]:
        if self._values is None:
            self._values = self._count()
        return self._values

    def __getitem__(self, name: str) -> np.ndarray:
        return self._get()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def reference_values(family, config, archs) -> Dict[str, np.ndarray]:
    """`params` and, where the family has parameter groups, `params_<group>` (the rank-mode proxy
    names of proxies/param_groups.py) of every arch, counted from shapes."""
    out: Dict[str, List[float]] = {"params": []}
    for a in archs:
        mc = family.model_config(a, config)
        out["params"].append(float(count_params(family.param_shapes(mc))))
        counts = family.param_group_counts(mc)
        for name, group in GROUP_PROXIES.items():
            if counts is not None:
                out.setdefault(name, []).append(float(counts[group]))
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def read_arch_ids(path: Path) -> List[str]:
    """Arch ids of a pool file: one per line, blank lines and '#' comments ignored."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(f"study.pool {str(path)!r}: no such file; give 'all', 'cached' or a file "
                          "of arch ids, one per line")
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def choose_archs(archs, store: InputStore, spec: str) -> list:
    """The archs of the pool `spec` ('all', 'cached' or a file of ids), in benchmark order."""
    if spec == "all":
        return list(archs)
    if spec == "cached":
        return [a for a in archs if store.has(a.arch_id)]
    wanted = read_arch_ids(Path(spec))
    known = {str(a.arch_id) for a in archs}
    unknown = [i for i in wanted if i not in known]
    if unknown:
        raise ConfigError(f"study.pool {spec}: {len(unknown)} ids are not in the benchmark "
                          f"(first {unknown[0]!r}); list ids of the benchmark's architectures")
    chosen = set(wanted)
    return [a for a in archs if str(a.arch_id) in chosen]


def load_pool(config, workdir: Path, spec: str, min_size: int = 3) -> Pool:
    """The pool `spec` of config's benchmark with every architecture's inputs (extracted if
    missing from the store, which only happens with 'all' or an id file)."""
    family = get_family(config.family)
    archs = load_archs(family, config)
    store = InputStore(config, workdir)
    chosen = choose_archs(archs, store, spec)
    if len(chosen) < min_size:
        raise ConfigError(f"study.pool {spec!r} of {config.family} holds {len(chosen)} architectures "
                          f"(inputs cache {store.dir}), fewer than the {min_size} needed; extract "
                          "them first (e.g. with the search mode) or set --config.study.pool=all")
    missing = sum(not store.has(a.arch_id) for a in chosen)
    batch = family.make_batch(config) if missing else None
    logging.info("%s pool: %d architectures (%d to extract) from %s", config.family, len(chosen),
                 missing, store.dir)
    inputs, _ = collect_inputs(store, family, chosen, config, batch, f"{config.family} pool inputs")
    position = {str(a.arch_id): i for i, a in enumerate(archs)}
    return Pool(family=config.family, arch_ids=[str(a.arch_id) for a in chosen],
                truth=np.asarray([a.score for a in chosen], np.float64), inputs=inputs,
                references=LazyReferences(lambda: reference_values(family, config, chosen)),
                fingerprint=store.fingerprint,
                positions=np.asarray([position[str(a.arch_id)] for a in chosen]),
                benchmark_size=len(archs))
