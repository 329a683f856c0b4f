"""FlexiBERT family: NAS-Bench-BERT architectures as Flax `FlexiBert` encoders on BERT WordPiece text.

Two readings of a benchmark entry (`config.arch_reading`):
- "benchmark" (default): every field of the entry is honoured: the entry's `hidden_size` and each
  layer's `feed_forward_dimension` (the architecture that was trained).
- "pytorch_reference": the model as the reference PyTorch scripts actually instantiate it
  (`ElectraConfig(nas_config=..., num_hidden_layers=...)`): hidden_size left at the config default
  256 and every FFN at `intermediate_size` 1024, whatever the entry says. This reproduces the
  parameter counts of the reference (id 0 -> 13,330,176) and the paper's No.Params row (tau 0.454).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from ml_collections import ConfigDict

from lpzero_jax import text
from lpzero_jax.benchmarks.base import Arch
from lpzero_jax.benchmarks.flexibert import DEFAULT_FILE, load_flexibert
from lpzero_jax.benchmarks.own import parse_flexibert_config
from lpzero_jax.families.base import FAMILIES, Family
from lpzero_jax.engine.staging import Stages
from lpzero_jax.models.flexibert import EncoderLayer, FlexiBert, FlexiBertConfig, LayerConfig
from lpzero_jax.paths import resolve_data_file

ARCH_READINGS = ("benchmark", "pytorch_reference")
REFERENCE_HIDDEN_SIZE = 256
REFERENCE_INTERMEDIATE_SIZE = 1024


LM_FRACTION = 0.15  # share of positions carrying the tied-LM loss (BERT's masking rate)


def lm_positions(batch_size: int, seq_len: int, seed: int) -> np.ndarray:
    """[B, M] sorted positions (never [CLS]/[SEP]) where the tied-LM proxy loss is taken."""
    m = max(1, int(round(LM_FRACTION * (seq_len - 2))))
    rng = np.random.default_rng([seed, 1])
    rows = [np.sort(rng.choice(np.arange(1, seq_len - 1), size=m, replace=False))
            for _ in range(batch_size)]
    return np.stack(rows).astype(np.int32)


def flexibert_config(arch_config: dict, reading: str = "benchmark",
                     proxy_loss: str = "tied_lm") -> FlexiBertConfig:
    """Benchmark entry config -> FlexiBertConfig under the given reading (see module doc)."""
    if reading not in ARCH_READINGS:
        raise ValueError(f"unknown arch_reading {reading!r}; expected one of {ARCH_READINGS}")
    faithful = reading == "benchmark"
    layers = tuple(
        LayerConfig(operation_type=l["operation_type"],
                    operation_parameter=l["operation_parameter"],
                    num_operation_heads=l["num_operation_heads"],
                    feed_forward_dimension=(l["feed_forward_dimension"] if faithful
                                            else REFERENCE_INTERMEDIATE_SIZE),
                    num_feed_forward=l["num_feed_forward"])
        for l in arch_config["encoder_layers"])
    hidden = arch_config["hidden_size"] if faithful else REFERENCE_HIDDEN_SIZE
    return FlexiBertConfig(hidden_size=hidden, layers=layers, proxy_loss=proxy_loss)


class FlexiBertFamily(Family):
    name = "flexibert"
    vocab_field = "vocab_size"
    position_table_path = ("params", "position_embeddings", "embedding")
    min_seq_len = 3  # [CLS] + at least one token + [SEP]
    # train mode (`config.train_mode`): ElectraConfig's hidden_dropout_prob and
    # attention_probs_dropout_prob, the reference's defaults
    train_dropout = (0.1, 0.1)

    def load_benchmark(self, config: ConfigDict) -> List[Arch]:
        own = self.load_own_benchmark(config)
        if own is not None:
            return own
        num = config.get("num_archs")
        return load_flexibert(self.benchmark_path(config), num if num and num > 0 else None)

    def benchmark_path(self, config: ConfigDict) -> Path:
        return Path(resolve_data_file(DEFAULT_FILE, config.get("data_root"), config.get("benchmark_file")))

    def parse_benchmark_config(self, raw, where: str) -> dict:
        return parse_flexibert_config(raw, where)

    def model_config(self, arch: Arch, config: ConfigDict) -> FlexiBertConfig:
        c = flexibert_config(arch.config, config.get("arch_reading", "benchmark"),
                             config.get("proxy_loss", "tied_lm"))
        dropout = self.train_dropout_for(config)
        return c if dropout is None else dataclasses.replace(c, dropout=dropout)

    def build_model(self, model_config: FlexiBertConfig) -> FlexiBert:
        return FlexiBert(model_config)

    def make_batch(self, config: ConfigDict) -> Dict[str, np.ndarray]:
        corpus = resolve_data_file(config.corpus, config.get("data_root"), config.get("corpus_file"))
        ids = text.bert_batch(corpus, config.batch_size, config.seq_len, config.seed,
                              config.get("vocab_path"))
        return {"input_ids": ids, "token_type_ids": np.zeros_like(ids),
                "lm_positions": lm_positions(config.batch_size, config.seq_len, config.seed)}

    def stages(self, model_config: FlexiBertConfig):
        """Per-layer stages; None in train mode (dropout masks keyed by the real layer index run
        in the whole-model programs)."""
        if model_config.dropout is not None:
            return None
        return flexibert_stages(model_config)

    def max_seq_len(self, model_config: FlexiBertConfig) -> int:
        return model_config.max_position_embeddings

    def data_files(self, config: ConfigDict) -> Dict[str, Tuple[Path, ...]]:
        return dict(super().data_files(config),
                    vocab=(text.resolve_bert_vocab(config.get("vocab_path")),))

    def is_proxy_weight(self, path: Tuple[str, ...]) -> bool:
        # every kernel inside an encoder layer: operation projections, output projections, FFN
        return path[-1] == "kernel" and any(p.startswith("layer_") for p in path)

    def weight_role(self, path: Tuple[str, ...]) -> Optional[str]:
        """layer_i/operation/* -> "attention" (the token mixer: SA query/key/value/weight, LT input,
        DSC query/key/value/conv kernels/conv_kernel/conv_out), layer_i/operation_output ->
        "attention_output", layer_i/intermediate/* and layer_i/output -> "ffn". This is the
        reference's `layer.operation.operation` / `layer.operation.output` / `layer.intermediate`
        + `layer.output` split."""
        if not self.is_proxy_weight(path):
            return None
        modules = set(path[:-1])
        if "operation" in modules:
            return "attention"
        if "operation_output" in modules:
            return "attention_output"
        if "intermediate" in modules or "output" in modules:
            return "ffn"
        return None

    def is_head_projection(self, path: Tuple[str, ...]) -> bool:
        """Mixer projections except DSC's `conv_kernel` generator (heads x kernel outputs).

        The reference keeps `layer.operation.operation` Linears with at least 128 outputs, which at
        its hidden size 256 drops exactly `conv_kernel`; naming it keeps the intent when the
        benchmark reading builds hidden-128 models (whose DSC query/key/value have 64 outputs).
        """
        return self.weight_role(path) == "attention" and "conv_kernel" not in path

    def init_rule(self, model_config, path, shape, rng):
        if path[-1] == "embedding" and path[-2] == "word_embeddings":
            table = (self.init_std * rng.standard_normal(shape, dtype=np.float32))
            table[0] = 0.0  # padding_idx row, as nn.Embedding(padding_idx=0) after _init_weights
            return table
        return None


FAMILIES.register(FlexiBertFamily.name)(FlexiBertFamily())


def flexibert_stages(config: FlexiBertConfig) -> Stages:
    """The model cut into separately compiled stages (see lpzero_jax/engine/staging.py): the embedding side
    and head as a layer-less FlexiBert (shared by every architecture of the same hidden size and
    loss), and one EncoderLayer per layer (shared by every equal layer of any architecture)."""
    if config.dropout is not None:
        raise ValueError("train-mode dropout runs in the whole-model programs only; the staged "
                         "passes need an eval-mode config (dropout None)")
    outer = FlexiBert(dataclasses.replace(config, layers=()))
    layers = [(EncoderLayer(config.hidden_size, lc, config.layer_norm_eps, config.conv_head_ratio),
               f"layer_{i}") for i, lc in enumerate(config.layers)]
    return Stages(outer=outer, layers=layers, prelude_args=("token_type_ids",))
