"""On-disk store of compact proxy inputs: computed once per architecture, reused by every run.

Files live in `<cache_dir>/<fingerprint>/<name>.npz` (all six inputs; `cache_root`: by default
the user's cache folder, shared by every workdir), where the fingerprint
hashes everything the inputs depend on (family, arch reading, loss, batch, seeds, sample size, and
the CONTENT of the data files: benchmark, corpus, vocabulary) and <name> is the arch id made safe
for a file name (`files.safe_name`). When only some inputs are asked for (a genome scored on
held-out architectures, say), the cheapest extraction level is run and saved as
`<name>.<level>.npz` ('weights': W only, no forward pass; 'forward': A, H, S, W, no backward pass).
Every file carries its arch id, fingerprint, level and a checksum of its arrays; a file that does
not match (damaged, or another architecture's) is recomputed with a warning. A run that is
interrupted keeps every architecture already extracted; the next run (search, rank, bench) loads them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Dict, Optional

from absl import logging
from flax import traverse_util

from lpzero_jax import files, parallel, runtime
from lpzero_jax import inputs as proxy_inputs
from lpzero_jax.families import get_family
from lpzero_jax.families.base import check_fits, check_token_ids
from lpzero_jax.paths import resolve_data_file


# Every config field that names a data file or folder a run may read. Whatever a family's
# `data_files` says, a file named by one of these is digested (under the field's name when the
# family did not list it), so a reader that takes a path the family forgot cannot serve stale
# results. tests/test_input_store.py checks that every path-like field of the shipped configs is
# either here or an output (OUTPUT_PATH_FIELDS).
DATA_FILE_FIELDS = ("benchmark_file", "benchmark_dir", "corpus_file", "vocab_path", "tokenizer_path",
                    "gguf_path", "subnet_search.checkpoint", "subnet_search.adapter_path")
OUTPUT_PATH_FIELDS = ("workdir", "compilation_cache_dir", "inputs.cache_dir", "adapter.cache_dir")


def data_paths(config) -> Dict[str, tuple]:
    """role -> the data files and folders the run reads: the family's (`Family.data_files`:
    defaults it finds by itself included), plus every file a DATA_FILE_FIELDS field names that the
    family did not list (keyed by the field). The one list the resume check and the input-cache
    key digest."""
    out = {role: tuple(Path(p) for p in paths)
           for role, paths in get_family(config.family).data_files(config).items()}
    listed = {Path(p).expanduser().resolve() for paths in out.values() for p in paths}
    flat = traverse_util.flatten_dict(config.to_dict(), sep=".")
    for field in DATA_FILE_FIELDS:
        value = flat.get(field)
        if value and Path(str(value)).expanduser().resolve() not in listed:
            out[field] = (resolve_data_file("", None, str(value)),)
    return out


def data_digests(config) -> Dict[str, str]:
    """role -> content digest of every data file the run reads (`data_paths`)."""
    return {role: "+".join(files.file_digest(p) for p in paths)
            for role, paths in sorted(data_paths(config).items())}


def fingerprint_fields(config) -> dict:
    """The config fields and data contents the proxy inputs depend on."""
    fields = {
        "family": config.family,
        "arch_reading": config.get("arch_reading"),
        "proxy_loss": config.get("proxy_loss"),
        "batch_size": config.batch_size,
        "seq_len": config.seq_len,
        "seed": config.seed,
        "data": data_digests(config),
        "sample_size": config.inputs.sample_size,
        "sample_seed": config.inputs.sample_seed,
        "version": 3,
    }
    if config.get("vocab_size"):  # families with a configurable LM vocabulary (llama)
        fields["vocab_size"] = config.vocab_size
    if config.get("train_mode"):  # dropout on: other inputs (eval-mode fingerprints unchanged)
        fields["train_mode"] = True
    return fields


def cache_root(config, workdir: Path) -> Path:
    """The input cache folder: `inputs.cache_dir`, else the user's (`runtime.user_cache_dir`:
    ~/.cache/lpzero_jax/inputs), shared by every workdir and process (the fingerprint keys the
    content; files are written atomically and checksummed). A multi-process job defaults to
    `<workdir>/inputs_cache` instead: its hosts share the workdir, not their home folders."""
    if config.inputs.get("cache_dir"):
        return Path(config.inputs.cache_dir).expanduser()
    if parallel.is_multi_process(config):
        return Path(workdir).expanduser() / "inputs_cache"
    return runtime.user_cache_dir("inputs")


class ArchInputs:
    """What the store reads of one architecture: family, arch, model_config, params (built on
    first use) and batch. The zoo's `ArchContext` has the same attributes and may be passed
    instead; the store itself does not import the zoo."""

    def __init__(self, family, arch, config, batch):
        self.family, self.arch, self.config, self.batch = family, arch, config, batch
        self.model_config = family.model_config(arch, config)
        check_token_ids(family, (batch or {}).get("input_ids"), family.vocab_size(self.model_config),
                        f"architecture {arch.arch_id}")

    @functools.cached_property
    def params(self):
        check_fits(self.family, self.model_config, self.config, self.batch,
                   f"architecture {self.arch.arch_id}")
        return self.family.arch_params(self.model_config, self.config)


class InputStore:
    """Loads or computes (then saves) the CompactInputs of an architecture (`ArchInputs` or the
    zoo's `ArchContext`)."""

    def __init__(self, config, workdir: Path):
        self.fingerprint = proxy_inputs.inputs_fingerprint(fingerprint_fields(config))
        self.dir = cache_root(config, workdir) / self.fingerprint
        self.sample_size = int(config.inputs.sample_size)
        self.sample_seed = int(config.inputs.sample_seed)
        self.hits = 0
        self.misses = 0

    def path(self, arch_id, level: str = "backward") -> Path:
        name = files.safe_name(arch_id)
        return self.dir / (f"{name}.npz" if level == "backward" else f"{name}.{level}.npz")

    def _levels_covering(self, needed) -> list:
        """Extraction levels whose files hold every input in `needed`, cheapest first."""
        need = set(needed)
        return [level for level, names in proxy_inputs.LEVELS.items() if need <= set(names)]

    def has(self, arch_id, needed=proxy_inputs.INPUT_NAMES) -> bool:
        """Whether a file that would cover `needed` exists (not checked: see `load`)."""
        return any(self.path(arch_id, lv).exists() for lv in self._levels_covering(needed))

    def header(self, arch_id, level: str) -> dict:
        """What a cached file of this architecture and level must say about itself."""
        return {"arch_id": str(arch_id), "fingerprint": self.fingerprint, "level": level}

    def load(self, arch_id, needed=proxy_inputs.INPUT_NAMES) -> Optional[proxy_inputs.CompactInputs]:
        """The cached inputs covering `needed`, or None. A file that is damaged or belongs to
        another architecture is removed with a warning (the caller recomputes it)."""
        for level in self._levels_covering(needed):
            p = self.path(arch_id, level)
            if not p.exists():
                continue
            try:
                return proxy_inputs.CompactInputs.load(p, self.header(arch_id, level))
            except OSError:
                raise  # an unreadable disk is the environment's failure, not a cache miss
            except Exception as e:  # noqa: BLE001  (any damage: bad zip, bad header, checksum)
                logging.warning("cached inputs %s are invalid (%s); recomputing them", p, e)
                p.unlink(missing_ok=True)
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
        computed.save(self.path(ctx.arch.arch_id, level), self.header(ctx.arch.arch_id, level))
        return computed


def eta_text(seconds: list, remaining: int) -> str:
    """', ETA Ns' for `remaining` items from the per-item `seconds` so far, leaving out the first
    (it compiles the programs the others reuse: it projected 19x too long a run); '' before two
    items, or when nothing remains."""
    if remaining <= 0 or len(seconds) < 2:
        return ""
    steady = sorted(seconds[1:])[(len(seconds) - 1) // 2]  # median: robust to a recompile
    return f", ETA {steady * remaining:.0f}s"


def collect_inputs(store: InputStore, family, archs, config, batch, label: str = "inputs",
                   needed=proxy_inputs.INPUT_NAMES):
    """CompactInputs of every arch: loaded from the store, or extracted and saved (with progress).

    Architectures without a valid cached file are split over hosts (each process extracts its share
    into the shared store, then all wait for each other) and, within a host, over the local devices
    (`config.parallel.devices`, 0 = all). Returns (list in the order of `archs`, seconds).
    """
    import time

    import jax


    t0 = time.perf_counter()
    out = [store.load(a.arch_id, needed) for a in archs]
    # shares are cut from the full list, not from what is missing: the hosts look at the store at
    # different moments, and must still agree on who extracts which architecture
    share = parallel.host_shard(list(range(len(archs))))
    mine = [archs[i] for i in share if out[i] is None]
    done = [0]
    if jax.process_count() > 1:
        logging.info("%s: process %d of %d: %d architectures in its share, %d to extract",
                     label, jax.process_index(), jax.process_count(), len(share), len(mine))

    took = []

    def extract(arch):
        t = time.perf_counter()
        item = store(ArchInputs(family, arch, config, batch), needed)
        runtime.release_host_memory()
        done[0] += 1
        took.append(time.perf_counter() - t)
        logging.info("%s [%d/%d] arch %s extracted in %.1fs (elapsed %.0fs%s)", label, done[0],
                     len(mine), arch.arch_id, took[-1], time.perf_counter() - t0,
                     eta_text(took, len(mine) - done[0]))
        return item

    # every host waits for the others' shares; a failed share fails the whole job, by name
    tag = f"{label} " + proxy_inputs.inputs_fingerprint(
        {"needed": sorted(needed), "archs": [str(a.arch_id) for a in archs]})
    computed = {}
    with parallel.host_share(tag, parallel.barrier_timeout(config)):
        if mine:
            par = config.get("parallel") or {}
            items = parallel.map_on_devices(extract, mine,
                                            parallel.local_devices(par.get("devices") or None))
            computed = {str(a.arch_id): item for a, item in zip(mine, items)}
    if len(archs) > len(mine):
        logging.info("%s: %d architectures loaded from %s", label, len(archs) - len(mine), store.dir)
    for i, a in enumerate(archs):
        if out[i] is None:
            out[i] = computed.get(str(a.arch_id)) or store.load(a.arch_id, needed)
        if out[i] is None:
            raise FileNotFoundError(f"inputs of arch {a.arch_id} missing from {store.dir}: another "
                                    "host did not write them (with several hosts the cache dir "
                                    "must be shared)")
    return out, time.perf_counter() - t0
