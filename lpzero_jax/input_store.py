"""On-disk store of compact proxy inputs: computed once per architecture, reused by every run.

Files live in `<cache_dir>/<fingerprint>/<arch_id>.npz` (all six inputs), where the fingerprint
hashes everything the inputs depend on (family, arch reading, loss, batch, text, seeds, sample
size). When only some inputs are asked for (a genome scored on held-out architectures, say), the
cheapest extraction level is run and saved as `<arch_id>.<level>.npz` ('weights': W only, no forward
pass; 'forward': A, H, S, W, no backward pass). A run that is interrupted keeps every architecture
already extracted; the next run (search, rank, bench) loads them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

from absl import logging

from lpzero_jax import inputs as proxy_inputs


def fingerprint_fields(config) -> dict:
    """The config fields the proxy inputs depend on."""
    fields = {
        "family": config.family,
        "arch_reading": config.get("arch_reading"),
        "proxy_loss": config.get("proxy_loss"),
        "batch_size": config.batch_size,
        "seq_len": config.seq_len,
        "seed": config.seed,
        "corpus": config.get("corpus_file") or config.corpus,
        "benchmark": config.get("benchmark_file") or config.get("benchmark_dir"),
        "sample_size": config.inputs.sample_size,
        "sample_seed": config.inputs.sample_seed,
        "version": 2,
    }
    if config.get("vocab_size"):  # families with a configurable LM vocabulary (llama)
        fields["vocab_size"] = config.vocab_size
    return fields


class ArchInputs:
    """What the store reads of one architecture: family, arch, model_config, params (built on
    first use) and batch. The zoo's `ArchContext` has the same attributes and may be passed
    instead; the store itself does not import the zoo."""

    def __init__(self, family, arch, config, batch):
        self.family, self.arch, self.batch = family, arch, batch
        self.model_config = family.model_config(arch, config)
        self._seed = int(config.seed)

    @functools.cached_property
    def params(self):
        return self.family.init_params(self.model_config, self._seed)


class InputStore:
    """Loads or computes (then saves) the CompactInputs of an architecture (`ArchInputs` or the
    zoo's `ArchContext`)."""

    def __init__(self, config, workdir: Path):
        root = config.inputs.get("cache_dir") or str(Path(workdir) / "inputs_cache")
        self.dir = Path(root) / proxy_inputs.inputs_fingerprint(fingerprint_fields(config))
        self.sample_size = int(config.inputs.sample_size)
        self.sample_seed = int(config.inputs.sample_seed)
        self.hits = 0
        self.misses = 0

    def path(self, arch_id, level: str = "backward") -> Path:
        return self.dir / (f"{arch_id}.npz" if level == "backward" else f"{arch_id}.{level}.npz")

    def _paths_covering(self, arch_id, needed) -> list:
        """Files that would hold every input in `needed`, cheapest level first."""
        need = set(needed)
        return [self.path(arch_id, level) for level, names in proxy_inputs.LEVELS.items()
                if need <= set(names)]

    def has(self, arch_id, needed=proxy_inputs.INPUT_NAMES) -> bool:
        return any(p.exists() for p in self._paths_covering(arch_id, needed))

    def load(self, arch_id, needed=proxy_inputs.INPUT_NAMES) -> Optional[proxy_inputs.CompactInputs]:
        for p in self._paths_covering(arch_id, needed):
            if not p.exists():
                continue
            try:
                return proxy_inputs.CompactInputs.load(p)
            except Exception as e:  # a corrupt file is recomputed, not fatal
                logging.warning("ignoring unreadable cached inputs %s (%s)", p, e)
        return None

    def __call__(self, ctx, needed=proxy_inputs.INPUT_NAMES) -> proxy_inputs.CompactInputs:
        cached = self.load(ctx.arch.arch_id, needed)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        level = proxy_inputs.level_for(needed)
        computed = proxy_inputs.extract_proxy_inputs(
            ctx.family, ctx.model_config, ctx.params, ctx.batch, self.sample_size, self.sample_seed,
            needed=needed)
        computed.save(self.path(ctx.arch.arch_id, level))
        return computed


def collect_inputs(store: InputStore, family, archs, config, batch, label: str = "inputs",
                   needed=proxy_inputs.INPUT_NAMES):
    """CompactInputs of every arch: loaded from the store, or extracted and saved (with progress).

    Missing architectures are split over hosts (each process extracts its share into the shared
    store, then all wait for each other) and, within a host, over the local devices
    (`config.parallel.devices`, 0 = all). Returns (list in the order of `archs`, seconds).
    """
    import time

    import jax

    from lpzero_jax import parallel, runtime

    t0 = time.perf_counter()
    missing = [a for a in archs if not store.has(a.arch_id, needed)]
    mine = parallel.host_shard(missing)
    done = [0]

    def extract(arch):
        t = time.perf_counter()
        store(ArchInputs(family, arch, config, batch), needed)
        runtime.release_host_memory()
        done[0] += 1
        logging.info("%s [%d/%d] arch %s extracted in %.1fs (elapsed %.0fs)", label, done[0],
                     len(mine), arch.arch_id, time.perf_counter() - t, time.perf_counter() - t0)

    if mine:
        par = config.get("parallel") or {}
        parallel.map_on_devices(extract, mine, parallel.local_devices(par.get("devices") or None))
    if missing and jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"lpzero_inputs_{label}")
    if len(archs) > len(missing):
        logging.info("%s: %d architectures loaded from %s", label, len(archs) - len(missing), store.dir)
    out = []
    for a in archs:
        item = store.load(a.arch_id, needed)
        if item is None:
            raise FileNotFoundError(f"inputs of arch {a.arch_id} missing from {store.dir} "
                                    f"(with several hosts the cache dir must be shared)")
        out.append(item)
    return out, time.perf_counter() - t0
