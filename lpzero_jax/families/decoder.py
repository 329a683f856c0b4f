"""Decoder family: any decoder-only LM described with LitGPT `Config` fields or a Hugging Face
`config.json` (models/decoder.py, benchmarks/decoder_configs.py), from your own benchmark file.

- Benchmark: only your own JSON-lines file (`config.benchmark_file`, benchmarks/own.py, header
  "family": "decoder"); each line's config is LitGPT-style or a HF config.json dict.
- Batches: `batch_size` x `seq_len` windows of WikiText in GPT-2's byte-level BPE (as the gpt2
  family), or, with `vocab_size` below GPT-2's 50,257, ids through the reduced vocabulary of
  `lm_vocab` (as the llama family). Every architecture's token table must hold the run's ids.
- W and G: the kernels of every `layer_<i>` (attention and MLP matrices); embeddings, norms, biases
  and the LM head are not W.
- Initialisation (HF's for the model the names follow): kernels and tables N(0, 0.02), biases 0,
  norm scales 1; GPT-2-named decoders (GptNeoxMLP) also scale both c_proj kernels by
  1 / sqrt(2 n_layer) as HF GPT-2 and our gpt2 family do.
- Parameter groups (`param_group_counts`): Embedding (token + position tables), Attn, FFN,
  LayerNorm, Softmax (the LM head's own kernel / bias), nonembedding, total (`models.decoder.count_params`).
- Compiled per layer shape: one program per distinct (style, head_size, n_head, n_query_groups,
  MLP width rounded up to `ffn_bucket`), shared by every architecture of the benchmark.
Proxy facts follow LPZero's GPT-2 reference (a decoder LM): EZNAS and Activation Distance read every
linear layer, Synflow's R is the sum of the logits (not of the final normed hidden states, whose
sum at unit norm scales does not depend on the layers: zero gradient; with rotary positions and
LayerNorm the all-ones input normalises to zero and Synflow is 0), Jacobian Cosine's reference
variant reads `wpe` (NaN for a decoder without learned positions).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from ml_collections import ConfigDict

from lpzero_jax import text
from lpzero_jax.benchmarks.base import Arch, BenchmarkFormatError
from lpzero_jax.benchmarks.decoder_configs import decoder_config, decoder_fields
from lpzero_jax.engine.staging import Stages
from lpzero_jax.families.base import FAMILIES, Family
from lpzero_jax.families.gpt2_stages import bucket_width
from lpzero_jax.models import decoder as decoder_model
from lpzero_jax.models.decoder import Block, Decoder, DecoderConfig
from lpzero_jax.paths import resolve_data_file

GPT2_VOCAB = text.EXPECTED_VOCAB["gpt2"]


class DecoderFamily(Family):
    name = "decoder"
    vocab_field = "padded_vocab_size"
    eznas_roles = None
    position_table_path = ("params", "wpe", "embedding")
    reference_activations = "linear_outputs"
    synflow_objective = "output_sum"
    # MLP widths of the compact extraction's layer stages rounded up to this multiple (exact zero
    # padding, models.decoder.stages)
    ffn_bucket = 64

    def load_benchmark(self, config: ConfigDict) -> List[Arch]:
        from lpzero_jax.errors import ConfigError

        archs = self.load_own_benchmark(config)
        if archs is None:
            raise ConfigError("family decoder reads your own benchmark only: set "
                              "--config.benchmark_file=<file.jsonl> (docs/decoder.md)")
        vocab = run_vocab(config)
        for a in archs:
            if a.config["padded_vocab_size"] < vocab:
                raise BenchmarkFormatError(
                    f"{config.benchmark_file} arch {a.arch_id!r}: its token table has "
                    f"{a.config['padded_vocab_size']} rows, the run's text has ids up to {vocab - 1}; "
                    f"set --config.vocab_size={a.config['padded_vocab_size']} (a reduced GPT-2 "
                    "vocabulary, needs vocab_corpus) or use a larger vocabulary")
        return archs

    def parse_benchmark_config(self, raw, where: str) -> dict:
        return decoder_fields(raw, where)

    def model_config(self, arch: Arch, config: ConfigDict) -> DecoderConfig:
        return decoder_config(arch.config)

    def build_model(self, model_config: DecoderConfig) -> Decoder:
        return Decoder(model_config)

    def stages(self, model_config: DecoderConfig):
        return decoder_stages(model_config, self.ffn_bucket)

    def max_seq_len(self, model_config: DecoderConfig) -> int:
        return min(model_config.block_size, model_config.sliding_window_size or model_config.block_size)

    def make_batch(self, config: ConfigDict) -> Dict[str, np.ndarray]:
        if run_vocab(config) < GPT2_VOCAB:
            from lpzero_jax.families.llama import lm_corpus_ids

            ids = lm_corpus_ids(config, config.corpus)
            return {"input_ids": text.sample_windows(ids, int(config.batch_size),
                                                     int(config.seq_len), int(config.seed))}
        corpus = resolve_data_file(config.corpus, config.get("data_root"), config.get("corpus_file"))
        return {"input_ids": text.lm_batch(corpus, config.batch_size, config.seq_len, config.seed,
                                           "gpt2", config.get("vocab_path"))}

    def data_files(self, config: ConfigDict) -> Dict[str, Tuple[Path, ...]]:
        out = dict(super().data_files(config), vocab=text.resolve_gpt2_vocab(config.get("vocab_path")))
        if run_vocab(config) < GPT2_VOCAB and config.get("vocab_corpus"):
            out["vocab"] += (resolve_data_file(config.vocab_corpus, config.get("data_root")),)
        return out

    def is_proxy_weight(self, path: Tuple[str, ...]) -> bool:
        return path[-1] == "kernel" and any(p.startswith("layer_") for p in path)

    def reference_weight_layout(self, path: Tuple[str, ...]) -> str:
        """GPT-2-named weights as HF GPT-2's Conv1D ([in, out]), the others as nn.Linear."""
        return "in_out" if any(p in ("c_attn", "c_proj", "c_fc") for p in path) else "out_in"

    def init_rule(self, model_config: DecoderConfig, path, shape, rng) -> Optional[np.ndarray]:
        """HF GPT-2's residual scaling of the c_proj kernels; None (the default rule) otherwise."""
        if path[-1] == "kernel" and "c_proj" in path:
            std = model_config.init_std / math.sqrt(2 * max(model_config.n_layer, 1))
            return (std * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
        return None

    def synflow_value(self, model: Decoder, params, word_embeds, batch):
        """R = the sum of the logits (`Decoder.output_sum`, what the staged pass differentiates)."""
        return model.apply(params, word_embeds, batch, method=model.logit_sum)

    def param_group_counts(self, model_config: DecoderConfig) -> Dict[str, int]:
        """{Embedding, Attn, FFN, LayerNorm, Softmax, nonembedding, total} (count_params)."""
        return decoder_model.count_params(model_config)


def decoder_stages(config: DecoderConfig, ffn_multiple: int = 1) -> Stages:
    """The decoder cut into compile-once stages (engine/staging.py): the layer-less Decoder
    (embedding, positions, final norm and head; shared by every architecture with the same outer
    fields) and one `Block` per layer, keyed by (style, head_size, n_head, n_query_groups,
    intermediate_size). ffn_multiple > 1: a layer runs as the Block whose MLP width is rounded up to
    that multiple (`Stages.bucket`); the extra units have zero weights in and out (and zero bias),
    so they are exact zeros in every output, activation and gradient (gelu(0) = 0; silu(0) * 0 = 0)."""
    outer = Decoder(dataclasses.replace(config, layers=()))  # embeddings, positions, norm, head
    layers = [(Block(config.style, config.layer_head_size(layer), layer.n_head, layer.n_query_groups,
                     layer.intermediate_size), f"layer_{i}") for i, layer in enumerate(config.layers)]

    def bucket(block: Block) -> Block:
        return block.clone(intermediate_size=bucket_width(block.intermediate_size, ffn_multiple))

    return Stages(outer=outer, layers=layers, bucket=bucket if ffn_multiple > 1 else None)


def run_vocab(config: ConfigDict) -> int:
    """The number of token ids the run's text uses: `vocab_size` when set, else GPT-2's."""
    return int(config.get("vocab_size") or GPT2_VOCAB)


FAMILIES.register(DecoderFamily.name)(DecoderFamily())
