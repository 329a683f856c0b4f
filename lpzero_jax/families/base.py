"""The glue between a benchmark and its model: what a mode asks a family for.

A mode never knows which family it runs on. It asks the family (looked up by `config.family` in
`FAMILIES`) for the architectures, a model per architecture, initial parameters, the text batch,
and which parameters count as the proxy inputs W and G.

Model contract (every family's Flax module):
  embed(input_ids) -> word embeddings: the tensor the Jacobian J is taken against;
  proxy_loss(word_embeds, batch) -> scalar: the loss whose gradients are G (and J);
  init_all(input_ids): touches every submodule (used to obtain parameter shapes);
  intermediates A, H, S sown into the `intermediates` collection under modules named `layer_<i>`.
Any Flax model that follows it can be scored without a family of its own: `lpzero_jax.api.score_model`
wraps it in `api.ModelFamily` (W: the kernels inside `layer_<i>`, unless told otherwise).

A family reads its built-in benchmark format and, through `parse_benchmark_config`, the user's own
JSON-lines benchmarks (`benchmarks/own.py`; `load_own_benchmark` picks them by `benchmark_file`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Dict, Hashable, List, NamedTuple, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from lpzero_jax import runtime
from lpzero_jax.benchmarks import own
from lpzero_jax.benchmarks.base import Arch, BenchmarkFormatError
from lpzero_jax.errors import ConfigError, ModelProtocolError
from lpzero_jax.models import init as model_init
from lpzero_jax.models.dropout import TrainDropout
from lpzero_jax.paths import resolve_data_file
from lpzero_jax.registry import Registry


class Supernet(NamedTuple):
    """config: the supernet's model config; params: a function returning its parameters (built on
    first use); source: what identifies its weights besides the run's seed (JSON-able; part of the
    key of stored subnet evaluations)."""

    config: Hashable
    params: Callable[[], Any]
    source: Dict[str, Any]


class Family:
    """Base class; subclasses set `name` and implement the abstract methods."""

    name: str = ""
    init_std: float = 0.02

    # --- reference-code facts, for the proxies' `_reference` variants and EZNAS ------------------
    # Weight roles EZNAS reads (see `weight_role`); None: every linear proxy weight. The FlexiBERT
    # reference takes the token mixer's Linears, the GPT-2 one every Conv1D of the model.
    eznas_roles: Optional[Tuple[str, ...]] = ("attention",)
    # Path of the learned position table whose gradient the reference's Jacobian Cosine reads
    # (None: the model has none, e.g. rotary positions; the proxy is then not applicable).
    position_table_path: Optional[Tuple[str, ...]] = None
    # What the reference's Activation Distance hooks: "ffn_activation" (the FFN activation A, as
    # for ELECTRA's `intermediate_act_fn`) or "linear_outputs" (every Linear/Conv1D output).
    reference_activations: str = "ffn_activation"
    # What Synflow-style proxies differentiate at |params| and all-ones word embeddings
    # (`synflow_value`): "proxy_loss" (for an encoder whose proxy loss is the sum of its outputs,
    # Tanaka et al.'s R = 1^T f(1)) or "output_sum" (the sum of the model's outputs, what LPZero does
    # for GPT-2, whose proxy loss is a cross-entropy). The engine's Synflow pass
    # (`engine/passes.py`) differentiates the outer stage's `head_loss` for "proxy_loss" and its
    # method of the objective's name otherwise (GPT2Flex.output_sum); without one, whole-model.
    synflow_objective: str = "proxy_loss"
    # Shortest `seq_len` the model and its proxy loss accept (a causal LM needs one target).
    min_seq_len: int = 2
    # The reference models' train-mode dropout rates (hidden, attention), which `config.train_mode`
    # switches on (`train_dropout_for`); None: the family's models have no dropout (refused).
    train_dropout: Optional[Tuple[float, float]] = None
    # The model config's field holding the rows of its token table: the batch's ids must lie in
    # [0, that) (`check_token_ids`); None: unknown, not checked.
    vocab_field: Optional[str] = None

    # --- abstract -----------------------------------------------------------------------------
    def load_benchmark(self, config: ConfigDict) -> List[Arch]:
        raise NotImplementedError

    def parse_benchmark_config(self, raw: Any, where: str) -> Dict[str, Any]:
        """One architecture's `config` of an own-format benchmark line (benchmarks/own.py), validated
        and returned as this family's Arch config; BenchmarkFormatError naming `where` otherwise."""

        raise BenchmarkFormatError(f"{where}: family {self.name!r} reads no own-format benchmarks")

    def load_own_benchmark(self, config: ConfigDict) -> Optional[List[Arch]]:
        """The archs of `config.benchmark_file` when it is an own-format (JSON-lines) benchmark,
        else None (the family then reads its built-in format)."""
        from pathlib import Path


        path = config.get("benchmark_file")
        if not path:
            return None
        path = Path(path).expanduser()
        if not own.is_own_benchmark(path):
            return None
        num = config.get("num_archs")
        archs, _ = own.load_own(path, self.name, self.parse_benchmark_config,
                                num if num and num > 0 else None)
        return archs

    def model_config(self, arch: Arch, config: ConfigDict) -> Hashable:
        """The hashable model configuration of an architecture under this run's config."""
        raise NotImplementedError

    def build_model(self, model_config: Hashable) -> nn.Module:
        raise NotImplementedError

    def make_batch(self, config: ConfigDict) -> Dict[str, np.ndarray]:
        """The real-text mini-batch the proxies see: at least `input_ids` [B, S] int32."""
        raise NotImplementedError

    def is_proxy_weight(self, path: Tuple[str, ...]) -> bool:
        """Whether the parameter at `path` is one of the weight matrices W (and its gradient G)."""
        raise NotImplementedError

    def stages(self, model_config: Hashable):
        """The model cut into compile-once stages (lpzero_jax.engine.staging.Stages), or None for one
        whole-model program per architecture. Every engine consumer runs them (the compact six
        inputs and the zoo's full-tensor passes). A family may bucket layer widths
        (`Stages.bucket`: exact zero padding, outputs cut back to the real shapes) so that its
        layers share compiled programs across architectures."""
        return None

    def max_seq_len(self, model_config: Hashable) -> Optional[int]:
        """The longest sequence the architecture accepts (its learned positions), or None when it
        has no limit. Checked against `seq_len` for every architecture before a run starts."""
        return None

    def benchmark_path(self, config: ConfigDict) -> Optional[Path]:
        """The benchmark file or folder `load_benchmark` reads: the one place both the reader and
        `data_files` (the resume check, the input-cache key) take it from. Default: the
        `benchmark_file` / `benchmark_dir` set in the config, or None."""
        bench = config.get("benchmark_file") or config.get("benchmark_dir")
        return resolve_data_file("", None, bench) if bench else None

    def data_files(self, config: ConfigDict) -> Dict[str, Tuple[Path, ...]]:
        """role -> files the run reads: 'benchmark', 'corpus', 'vocab'. Their contents (not their
        paths) enter the resume check and the key of the cached inputs. Default: the corpus
        (`corpus_file` or data_root/`corpus`) and any `benchmark_file`/`benchmark_dir`/`vocab_path`
        set in the config; a family adds what it finds by itself (default benchmark, tokenizer)."""
        out = {"corpus": (resolve_data_file(config.corpus, config.get("data_root"),
                                            config.get("corpus_file")),)}
        bench = self.benchmark_path(config)
        if bench is not None:
            out["benchmark"] = (bench,)
        if config.get("vocab_path"):
            out["vocab"] = (resolve_data_file("", None, config.vocab_path),)
        return out

    # --- proxy hooks (family facts some hand-crafted proxies need; defaults documented) ----------
    def weight_role(self, path: Tuple[str, ...]) -> Optional[str]:
        """The part of a layer a proxy weight belongs to, or None when it is neither.

        Roles: "attention" (the token mixer's own projections: query/key/value, or an LT input
        projection, ...), "attention_output" (the projection after the mixer), "ffn" (every
        feed-forward matrix). Used by proxies defined on a sub-block (Synaptic Saliency: FFN;
        Synaptic Diversity: mixer + its output; Head Importance, EZNAS: mixer; ZeroLM: attention
        vs FFN). The default recognises the usual names (GPT-2 `attn/c_attn`, `attn/c_proj`,
        `mlp/*`; LLaMA `self_attn/{q,k,v,o}_proj`, `mlp/*`; BERT `attention`, `intermediate`);
        a family with other names overrides it.
        """
        if not self.is_proxy_weight(path):
            return None
        names = [p.lower() for p in path]
        if any(any(k in n for k in _FFN_NAMES) for n in names):
            return "ffn"
        for i, n in enumerate(names):
            if any(k in n for k in _ATTENTION_NAMES):
                after = names[i + 1:-1]  # module names between the attention block and the leaf
                return "attention_output" if any(a in _OUTPUT_PROJECTIONS for a in after) \
                    else "attention"
        return None

    def is_head_projection(self, path: Tuple[str, ...]) -> bool:
        """Whether a proxy weight produces attention-head outputs (Head Importance's weights).

        Default: every "attention" weight (the mixer's projections, not its output projection).
        """
        return self.weight_role(path) == "attention"

    def reference_weight_layout(self, path: Tuple[str, ...]) -> str:
        """How the reference PyTorch code stores this weight: "out_in" (nn.Linear, the default) or
        "in_out" (HF Conv1D, GPT-2). Flax kernels are [in, out]; only proxies that are not
        invariant to transposition care (EZNAS's sign Gram matrix `g @ g.t()`)."""
        return "out_in"

    def synflow_value(self, model: nn.Module, params, word_embeds: jax.Array,
                      batch: Dict[str, jax.Array]) -> jax.Array:
        """The scalar R whose gradient Synflow-style proxies use, at |params| and all-ones embeds,
        as `synflow_objective` names it: the model's `proxy_loss` at the given word embeddings, or
        the sum of the model's outputs (`model.apply(params, word_embeds)`)."""
        if self.synflow_objective == "proxy_loss":
            return model.apply(params, word_embeds, batch, method=model.proxy_loss)
        if self.synflow_objective == "output_sum":
            return jnp.sum(model.apply(params, word_embeds))
        raise ValueError(f"family {self.name}: unknown synflow_objective {self.synflow_objective!r}; "
                         "expected 'proxy_loss' or 'output_sum'")

    def param_group_counts(self, model_config: Hashable) -> Optional[Dict[str, int]]:
        """#Params per named parameter group (e.g. LTS's "Attn", "FFN", "nonembedding"), counted
        from shapes; None when the family has no such groups (the group proxies are then NaN)."""
        return None

    def supernet(self, config: ConfigDict) -> "Supernet":
        """The supernet `subnet_search` slices its subnets from (`search/subnets.py`); its params
        are only built when a fitness asks for them. Default: the family has no supernet (a
        ConfigError naming the fix)."""

        raise ConfigError(f"family {self.name!r} has no supernet for subnet_search; use "
                          "--config.family=llama (or smollm)")

    # --- shared -------------------------------------------------------------------------------
    def train_dropout_for(self, config: ConfigDict):
        """`models.dropout.TrainDropout` at `train_dropout` with masks from `config.seed` when
        `config.train_mode` is set, else None (eval mode). ConfigError when the family has none."""
        if config is None or not config.get("train_mode", False):  # None: no run config
            return None
        if self.train_dropout is None:

            raise ConfigError(f"train_mode: family {self.name!r} has no dropout to switch on (only "
                              "gpt2 and flexibert do); remove --config.train_mode")

        hidden, attention = self.train_dropout
        return TrainDropout(hidden=hidden, attention=attention, seed=int(config.seed))

    def init_rule(self, model_config: Hashable, path: Tuple[str, ...], shape: Tuple[int, ...],
                  rng: np.random.Generator) -> Optional[np.ndarray]:
        """Family-specific initial value of a leaf of the architecture `model_config` (drawn from
        `rng`, the leaf's own generator: `models.init.leaf_rng`), or None for the default
        N(0, init_std)/0/1 of `init_params`."""
        return None

    def param_shapes(self, model_config: Hashable):
        """Parameter shapes (ShapeDtypeStruct pytree) without running or compiling the model."""
        return _param_shapes(self, model_config)

    def init_params(self, model_config: Hashable, seed: int):
        """Deterministic initial parameters: same seed, same values, whatever the order of archs."""
        shapes = self.param_shapes(model_config)
        return model_init.init_from_shapes(shapes, seed, functools.partial(self.init_rule, model_config),
                                           model_init.default_rule(self.init_std))

    def arch_params(self, model_config: Hashable, config: ConfigDict):
        """The parameters the proxies see for an architecture. Default: `init_params` with
        `config.seed` (zero-cost proxies at initialisation); a family over a pretrained supernet
        returns the architecture's inherited weights instead (`families/smollm.py`)."""
        return self.init_params(model_config, int(config.seed))

    def count_params(self, model_config: Hashable) -> int:
        return model_init.count_params(self.param_shapes(model_config))

    def vocab_size(self, model_config: Hashable) -> Optional[int]:
        """Rows of the architecture's token table (`vocab_field`), None when unknown."""
        return int(getattr(model_config, self.vocab_field)) if self.vocab_field else None


def memory_estimate(family: Family, model_config: Hashable,
                    batch_shape: Tuple[int, ...]) -> Dict[str, int]:
    """Bytes one architecture's extraction needs at least, from its parameter shapes
    (`jax.eval_shape`: nothing allocated): 'parameters' = 3 x their bytes (the values, their
    gradients, the host copy they are initialised in), 'activations' = 2 x 4 bytes x B x S x
    the output width of every parameter matrix (its forward output and that output's gradient,
    for the [B, S] batch). A lower bound (attention scores and the loss's logits are left out), so
    an architecture it refuses surely cannot run."""
    leaves = jax.tree_util.tree_leaves(family.param_shapes(model_config))
    tokens = int(np.prod(batch_shape)) if batch_shape else 1
    params = sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in leaves)
    widths = sum(int(x.shape[-1]) for x in leaves if len(x.shape) >= 2)
    return {"parameters": 3 * params, "activations": 2 * 4 * tokens * widths}


def check_fits(family: Family, model_config: Hashable, config, batch, whose: str) -> None:
    """ConfigError naming the architecture, its `memory_estimate` and the limit when the estimate
    exceeds `config.memory_limit_gb` (0 or unset: the memory free now, `runtime.available_memory`):
    checked before the architecture's parameters are allocated (`ArchContext.params`,
    `input_store.ArchInputs.params`), so an architecture that cannot fit is refused by name
    instead of crashing the run after allocating gigabytes."""
    ids = (batch or {}).get("input_ids")
    need = memory_estimate(family, model_config, np.shape(ids) if ids is not None else ())
    total = sum(need.values())
    limit_gb = float((config.get("memory_limit_gb") if config is not None else 0) or 0)
    limit, where = (limit_gb * 2**30, "memory_limit_gb") if limit_gb > 0 else \
        runtime.available_memory()
    if total > limit:
        gb = 2.0**30
        raise ConfigError(
            f"family {family.name}: {whose} needs at least {total / gb:.1f} GB (parameters "
            f"{need['parameters'] / gb:.1f} GB, activations {need['activations'] / gb:.1f} GB) "
            f"but the limit is {limit / gb:.1f} GB ({where}); leave it out (rank.arch_ids, "
            f"num_archs, your benchmark file) or set --config.memory_limit_gb=N to override")


def check_token_ids(family: Family, ids, vocab: Optional[int], whose: str) -> None:
    """ModelProtocolError naming the family, the first id outside [0, vocab) and the vocabulary
    size: a token table indexed out of range clamps silently (JAX gathers) or scores NaN. The one
    check of every batch against a model (`ArchContext`, `input_store.ArchInputs`, LLaMA's own
    tokenizer); vocab None: not checked."""
    if vocab is None or ids is None or np.size(ids) == 0:
        return
    ids = np.asarray(ids)
    low, high = int(ids.min()), int(ids.max())
    if low >= 0 and high < vocab:
        return
    bad = low if low < 0 else high
    raise ModelProtocolError(
        f"family {family.name}: token id {bad} of the batch is outside the vocabulary of {vocab} "
        f"ids of {whose} (ids must lie in [0, {vocab})): the run's tokenizer does not fit the "
        "model; use an architecture whose vocabulary covers the tokenizer's (its vocab_size / "
        "n_token) or a matching tokenizer (vocab_path, tokenizer_path, vocab_size)")


@functools.lru_cache(maxsize=64)
def _param_shapes(family: Family, model_config: Hashable):
    model = family.build_model(model_config)
    ids = jnp.zeros((1, 8), jnp.int32)
    return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), ids, method=model.init_all))


_FFN_NAMES = ("mlp", "ffn", "feed_forward", "feedforward", "intermediate")
_ATTENTION_NAMES = ("attn", "attention")
_OUTPUT_PROJECTIONS = ("c_proj", "o_proj", "out_proj", "output", "dense_output")

FAMILIES: Registry[Family] = Registry("family")


def get_family(name: str) -> Family:
    """The registered family instance (importing the family modules registers them)."""
    import lpzero_jax.families  # noqa: F401  (registers the built-in families)

    return FAMILIES.get(name)
