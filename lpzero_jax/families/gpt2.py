"""GPT-2 family: LiteTransformerSearch architectures as Flax `GPT2Flex` LMs on GPT-2 BPE text.

- Benchmark: any directory in the LTS layout or its compact file (`config.benchmark_dir`, default
  <data_root>/gpt2_wt103/random_GPT2_wt103, else the copy shipped in the package), read by
  `benchmarks.lts`; or your own JSON-lines file (`config.benchmark_file`, `benchmarks.own`: plain
  tied embeddings by default, per-layer n_head / d_inner).
- Batches: `config.batch_size` x `config.seq_len` (paper: 16 x 192, the configs' tgt_len) windows of
  WikiText tokenised with GPT-2's byte-level BPE (`text.lm_batch`, kind "gpt2"). The proxy loss is
  the mean next-token NLL through the adaptive softmax (targets = input_ids shifted by one).
- W and G (`is_proxy_weight`): the kernels of the transformer blocks, i.e. c_attn, attn c_proj, c_fc
  and mlp c_proj of every `layer_<i>`. These are exactly the HF `Conv1D` weights the LPZero reference
  collects for GPT-2 (it takes every Conv1D/Linear module, and the flex model has no other). Biases,
  LayerNorms, embeddings and the adaptive softmax are left out: they are not layer weight matrices.
- Initialisation: the reference's `_init_weights`: kernels and tables N(0, weight_init_std), both
  c_proj kernels N(0, weight_init_std / sqrt(2 n_layer)) (GPT-2's residual scaling), adaptive
  embedding and untied output projections N(0, proj_init_std), cluster_weight N(0, weight_init_std),
  biases 0, LayerNorm 1/0.
- Parameter groups (`param_group_counts`): LTS's params_summary columns from the parameter shapes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from ml_collections import ConfigDict

from lpzero_jax import text
from lpzero_jax.benchmarks.base import Arch
from lpzero_jax.benchmarks.lts import DEFAULT_DIR, load_lts_path
from lpzero_jax.benchmarks.own import parse_gpt2_config
from lpzero_jax.families import gpt2_stages
from lpzero_jax.families.base import FAMILIES, Family
from lpzero_jax.models import init as model_init
from lpzero_jax.models.gpt2_config import GPT2FlexConfig
from lpzero_jax.models.gpt2_flex import GPT2Flex
from lpzero_jax.paths import resolve_data_file

# LTS params_summary columns, plus the two groups it has no column for.
PARAM_GROUPS = ("AdaEmb", "Attn", "FFN", "LayerNorm", "Softmax", "nonembedding", "total")
_LAYER_NORMS = ("ln_1", "ln_2", "ln_f")
_BLOCK_KERNELS = ("c_attn", "c_proj", "c_fc")


def param_group(path: Tuple[str, ...]) -> str:
    """The LTS group of a parameter path (without the leading 'params'): the module class LTS
    counts it under (AdaptiveEmbedding/wpe, GPT2AttentionFlex, GPT2MLPFlex, LayerNorm, softmax)."""
    top = path[0]
    if top in ("wte", "wpe"):
        return "AdaEmb"
    if top == "lm_head":
        return "Softmax"
    if any(p in _LAYER_NORMS for p in path):
        return "LayerNorm"
    if top.startswith("layer_") and len(path) > 1 and path[1] == "attn":
        return "Attn"
    if top.startswith("layer_") and len(path) > 1 and path[1] == "mlp":
        return "FFN"
    raise ValueError(f"parameter {'/'.join(path)} belongs to no LTS group")


def gpt2_init_rule(mc: GPT2FlexConfig):
    """The reference's initial value of every GPT2Flex leaf (needs n_layer for the c_proj std)."""
    std, proj_std = mc.weight_init_std, mc.proj_init_std
    residual_std = std / math.sqrt(2 * mc.n_layer)

    def normal(rng, shape, s):
        return (s * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)

    def rule(path, shape, rng):
        leaf = path[-1]
        if leaf == "bias" or leaf.startswith("bias_") or leaf == "cluster_bias":
            return np.zeros(shape, np.float32)
        if leaf == "scale":
            return np.ones(shape, np.float32)
        if leaf.startswith("proj_"):  # adaptive embedding / untied output projections
            return normal(rng, shape, proj_std)
        if leaf == "kernel" and "c_proj" in path:
            return normal(rng, shape, residual_std)
        if leaf in ("kernel", "embedding", "cluster_weight", "weight") or leaf.startswith(("emb_", "weight_")):
            return normal(rng, shape, std)
        return None

    return rule


class GPT2Family(Family):
    name = "gpt2"
    vocab_field = "n_token"
    # LPZero's GPT-2 baselines iterate over every Conv1D (all four block kernels) and hook their
    # outputs; the position table is `wpe`.
    eznas_roles = None
    position_table_path = ("params", "wpe", "embedding")
    reference_activations = "linear_outputs"
    # R = sum of the final hidden states at |params| and all-ones word embeddings (data-free;
    # LPZero sums the model outputs instead of a loss for GPT-2 too)
    synflow_objective = "output_sum"
    # FFN widths of the compact extraction's layer stages are rounded up to this multiple (exact
    # zero padding): the 200 benchmark architectures' 1,870 layers have 1,777 distinct shapes, 70
    # with multiples of 256 for +9.4% FFN FLOPs (+5.6% of the layers' FLOPs); see docs/inputs.md.
    ffn_bucket = 256
    # Layers whose n_head divides this run as that many "fine" heads mixed by a head_mix parameter
    # (exact; gpt2_flex.Attention), so n_head leaves the layer stage's key: 24 layer stages for the
    # 200 instead of 70 (docs/inputs.md, "distinct programs").
    run_heads = 8
    # train mode (`config.train_mode`): LTS's resid_pdrop (the configs' dropout 0.1) on the
    # attention and MLP outputs; dropatt and embd_pdrop are 0
    train_dropout = (0.1, 0.0)

    def load_benchmark(self, config: ConfigDict) -> List[Arch]:
        """An own-format `benchmark_file`, else an LTS directory or compact LTS file
        (`benchmark_file` / `benchmark_dir`, default: the data root's, else the packaged copy)."""
        own = self.load_own_benchmark(config)
        if own is not None:
            return own
        num = config.get("num_archs")
        return load_lts_path(self.benchmark_path(config), num if num and num > 0 else None)

    def benchmark_path(self, config: ConfigDict) -> Path:
        """`benchmark_file` (own format or compact LTS), else `benchmark_dir`, else the default."""
        return Path(resolve_data_file(DEFAULT_DIR, config.get("data_root"),
                                      config.get("benchmark_file") or config.get("benchmark_dir")))

    def parse_benchmark_config(self, raw, where: str) -> dict:
        return parse_gpt2_config(raw, where)

    def model_config(self, arch: Arch, config: ConfigDict) -> GPT2FlexConfig:
        c = GPT2FlexConfig.from_lts(arch.config)
        dropout = self.train_dropout_for(config)
        return c if dropout is None else dataclasses.replace(c, dropout=dropout)

    def build_model(self, model_config: GPT2FlexConfig) -> GPT2Flex:
        return GPT2Flex(model_config)

    def stages(self, model_config: GPT2FlexConfig):
        """Adaptive embedding + positions on the host / blocks with FFN widths bucketed to
        `ffn_bucket` and `run_heads` fine heads / ln_f + adaptive softmax loss
        (`gpt2_stages.stages`). The zoo's full-tensor passes run them too (`engine.passes`: the
        bucketed layer programs, outputs cut back to the real shapes). In train mode None (the
        dropout masks are keyed by the real layer index: one whole-model program)."""
        if model_config.dropout is not None:
            return None
        return gpt2_stages.stages(model_config, self.ffn_bucket, self.run_heads)

    def make_batch(self, config: ConfigDict) -> Dict[str, np.ndarray]:
        corpus = resolve_data_file(config.corpus, config.get("data_root"), config.get("corpus_file"))
        ids = text.lm_batch(corpus, config.batch_size, config.seq_len, config.seed, "gpt2",
                            config.get("vocab_path"))
        return {"input_ids": ids}

    def max_seq_len(self, model_config: GPT2FlexConfig) -> int:
        return model_config.n_positions  # the benchmark config's tgt_len

    def data_files(self, config: ConfigDict) -> Dict[str, Tuple[Path, ...]]:
        return dict(super().data_files(config), vocab=text.resolve_gpt2_vocab(config.get("vocab_path")))

    def is_proxy_weight(self, path: Tuple[str, ...]) -> bool:
        return (path[-1] == "kernel" and any(p in _BLOCK_KERNELS for p in path)
                and any(p.startswith("layer_") for p in path))

    def reference_weight_layout(self, path: Tuple[str, ...]) -> str:
        """LTS's HfGPT2Flex stores its block weights as HF Conv1D, [in, out] like Flax kernels."""
        return "in_out"

    def init_rule(self, model_config: GPT2FlexConfig, path, shape, rng):
        """The reference's value of the leaf (`gpt2_init_rule`: the c_proj std depends on n_layer)."""
        return gpt2_init_rule(model_config)(path, shape, rng)

    def init_params(self, model_config: GPT2FlexConfig, seed: int):
        shapes = self.param_shapes(model_config)
        return model_init.init_from_shapes(shapes, seed, gpt2_init_rule(model_config),
                                           model_init.default_rule(model_config.weight_init_std))

    def param_group_counts(self, model_config: GPT2FlexConfig) -> Dict[str, int]:
        """{AdaEmb, Attn, FFN, LayerNorm, Softmax, nonembedding, total}, counted from parameter shapes.

        Same definitions as LTS's params_summary.yaml (see `analytical_param_counts`); LayerNorm and
        Softmax have no column there. total counts every distinct (tied = one) parameter.
        """
        return dict(_group_counts(self, model_config))


def layer_buckets(model_configs, multiple: int, batch_tokens: int = 16 * 192) -> Dict[str, float]:
    """What bucketing FFN widths to `multiple` does to a benchmark's layers: distinct layer stages
    (d_model, n_head, padded d_inner) before and after, and the extra FFN / layer matmul FLOPs of
    the padding (forward, batch_tokens positions; attention scores counted at seq 192)."""
    layers = [(c.d_model, h, f) for c in model_configs for h, f in zip(c.n_head, c.d_inner)]

    def flops(d, f, ffn_only=False):
        ffn = 4 * batch_tokens * d * f
        return ffn if ffn_only else ffn + 8 * batch_tokens * d * d + 4 * batch_tokens * 192 * d

    pad = [(d, h, gpt2_stages.bucket_width(f, multiple)) for d, h, f in layers]
    return {"layers": len(layers), "distinct": len(set(layers)), "distinct_bucketed": len(set(pad)),
            "extra_ffn_flops": sum(flops(d, f, True) for d, _, f in pad)
            / sum(flops(d, f, True) for d, _, f in layers) - 1,
            "extra_layer_flops": sum(flops(d, f) for d, _, f in pad)
            / sum(flops(d, f) for d, _, f in layers) - 1}


@functools.lru_cache(maxsize=256)
def _group_counts(family: GPT2Family, model_config: GPT2FlexConfig) -> Dict[str, int]:
    import jax

    counts = dict.fromkeys(PARAM_GROUPS, 0)
    shapes = family.param_shapes(model_config)
    for path, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]:
        names = model_init.path_names(path)
        names = names[1:] if names[0] == "params" else names
        n = int(np.prod(leaf.shape, dtype=np.int64))
        counts[param_group(names)] += n
        counts["total"] += n
    counts["nonembedding"] = counts["Attn"] + counts["FFN"] + counts["LayerNorm"]
    return counts


FAMILIES.register(GPT2Family.name)(GPT2Family())
