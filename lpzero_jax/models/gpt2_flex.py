"""GPT-2 flex in Flax: LiteTransformerSearch's `HfGPT2Flex` (per-layer heads and FFN widths).

Faithful to the PyTorch reference (archai `neurips-lts`, as vendored by LPZero:
`hf_gpt2/gpt2_lm_head_model_flex.py`, `model_utils/adaptive_embedding.py`,
`model_utils/proj_adaptive_softmax.py`):
- Input: adaptive embedding `wte` (clusters split at `cutoffs`; cluster i has a table of width
  d_embed // div_val**i and a projection to d_model; with div_val 1 one table and a projection only
  when d_embed != d_model), scaled by sqrt(d_model); plus learned positions `wpe` (n_positions =
  the config's tgt_len, 192).
- Blocks `layer_<i>`, HF GPT-2 order (pre-LN; the config's `pre_lnorm` is a MemTransformer field the
  reference GPT-2 ignores): x += attn(ln_1(x)); x += mlp(ln_2(x)). Attention: one fused `c_attn`
  (d_model -> 3 d_model), n_head[i] heads of d_model / n_head[i], scores / sqrt(head dim), causal
  mask, softmax, `c_proj`. MLP: `c_fc` (d_model -> d_inner[i]), gelu_new (tanh approximation),
  `c_proj`. LayerNorm eps 1e-5. Then `ln_f`.
- Output: projected adaptive log-softmax `lm_head`: a head over the first cluster's tokens plus one
  logit per tail cluster (`cluster_weight`, `cluster_bias`), and per tail cluster a softmax over its
  tokens; output tables tied to the input tables (tie_weight), output projections tied to the input
  projections where tie_projs[i] (the head cluster's projection is its own with the LTS setting
  [False, True, True, True]); an output bias per token.
The reference's `cutoffs` [19997, 39997, 199997, 50264] are cleaned as it does (entries past n_token
dropped, n_token appended): clusters [0, 19997), [19997, 39997), [39997, 50264).

Eval mode by default (no dropout). `dropout` (a `models.dropout.TrainDropout`, set by the family
under `config.train_mode`) adds the reference's train-mode dropout: resid_pdrop on the attention and
MLP outputs before each residual add (the LTS configs' dropout 0.1; dropatt and embd_pdrop are 0),
with masks fixed by its seed. Intermediates sown into `intermediates`, inside each `layer_<i>`:
  A  the MLP activation gelu_new(c_fc(x)), [B, S, d_inner[i]];
  H  the query, key and value projections (split from c_attn), [B, S, d_model] each;
  S  the causal attention probabilities, [B, n_head[i], S, S].
"""

from __future__ import annotations

import math
from typing import List, Mapping, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lpzero_jax.models.activations import gelu
from lpzero_jax.models.dropout import TrainDropout
from lpzero_jax.models.gpt2_config import GPT2FlexConfig
from lpzero_jax.models.softmax import row_nll

# ------------------------------------------------------------------------------------------------
# modules


def _normal(std: float):
    return nn.initializers.normal(std)


class AdaptiveEmbedding(nn.Module):
    """Adaptive input embedding; params `emb_<i>` [tokens_i, width_i] and `proj_<i>` [width_i, d_model]."""

    config: GPT2FlexConfig

    def setup(self):
        c = self.config
        n_tables = 1 if c.div_val == 1 else len(c.cutoffs)
        bounds = [(0, c.n_token)] if c.div_val == 1 else c.cluster_bounds()
        widths = c.cluster_widths()
        self.tables = [self.param(f"emb_{i}", _normal(c.weight_init_std), (r - l, widths[i]))
                       for i, (l, r) in enumerate(bounds[:n_tables])]
        if c.has_input_projections():
            self.projs = [self.param(f"proj_{i}", _normal(c.proj_init_std), (widths[i], c.d_model))
                          for i in range(n_tables)]
        else:
            self.projs = []

    def __call__(self, input_ids: jax.Array) -> jax.Array:
        """[B, S] ids -> [B, S, d_model] embeddings, times sqrt(d_model) as the reference."""
        c = self.config
        if c.div_val == 1:
            out = jnp.take(self.tables[0], input_ids, axis=0)
            if self.projs:
                out = out @ self.projs[0]
        else:
            out = jnp.zeros(input_ids.shape + (c.d_model,), self.tables[0].dtype)
            for (l, r), table, proj in zip(c.cluster_bounds(), self.tables, self.projs):
                in_cluster = (input_ids >= l) & (input_ids < r)
                local = jnp.clip(input_ids - l, 0, r - l - 1)
                out = out + jnp.where(in_cluster[..., None], jnp.take(table, local, axis=0) @ proj, 0.0)
        return out * math.sqrt(c.d_model)


class ProjectedAdaptiveLogSoftmax(nn.Module):
    """Adaptive softmax output: per-token negative log-likelihood of the targets.

    Params: `cluster_weight` [n_clusters, d_embed], `cluster_bias` [n_clusters] (when n_clusters > 0);
    output bias `bias` [n_token] (div_val 1) or `bias_<i>` [tokens_i]; own (untied) output projections
    `proj_<i>` [width_i, d_model]; own output tables `weight`/`weight_<i>` only when tie_weight is false.
    """

    config: GPT2FlexConfig

    def _tables_and_biases(self, tied_tables):
        c = self.config
        widths = c.cluster_widths()
        if c.div_val == 1:
            table = (tied_tables[0] if c.tie_weight else
                     self.param("weight", _normal(c.weight_init_std), (c.n_token, c.d_embed)))
            bias = self.param("bias", nn.initializers.zeros, (c.n_token,))
            return ([table[l:r] for l, r in c.cluster_bounds()],
                    [bias[l:r] for l, r in c.cluster_bounds()])
        tables, biases = [], []
        for i, (l, r) in enumerate(c.cluster_bounds()):
            tables.append(tied_tables[i] if c.tie_weight else
                          self.param(f"weight_{i}", _normal(c.weight_init_std), (r - l, widths[i])))
            biases.append(self.param(f"bias_{i}", nn.initializers.zeros, (r - l,)))
        return tables, biases

    def _projections(self, tied_projs) -> List[Optional[jax.Array]]:
        """The output projection of each cluster (None: hidden states used as they are)."""
        c = self.config
        if not c.has_input_projections():
            return [None] * len(c.cutoffs)
        widths = c.cluster_widths()
        projs = []
        for i, tied in enumerate(c.tie_projs):
            if tied:  # shares the input projection (the only one when div_val is 1)
                projs.append(tied_projs[0] if c.div_val == 1 else tied_projs[i])
            else:
                projs.append(self.param(f"proj_{i}", _normal(c.proj_init_std), (widths[i], c.d_model)))
        return projs

    @staticmethod
    def _nll(hidden, table, bias, proj, target):
        """-log softmax(logits)[target] per row, logits = (hidden @ proj.T) @ table.T + bias."""
        if proj is not None:
            hidden = hidden @ proj.T  # [N, width]
        return row_nll(hidden, table, bias, target)

    @nn.compact
    def __call__(self, hidden: jax.Array, target: jax.Array, tied_tables: Sequence[jax.Array],
                 tied_projs: Sequence[jax.Array],
                 cluster_rows: Optional[Sequence[Tuple[jax.Array, jax.Array]]] = None) -> jax.Array:
        """hidden [N, d_model], target [N] int -> nll [N] (natural log).

        cluster_rows: per tail cluster, (rows [C] int32, valid [C] bool): the positions whose target
        lies in that cluster (`tail_cluster_rows`, computed on the host from the batch), so that a
        tail's softmax runs on those C rows only; None: dense over all N rows (same values)."""
        c = self.config
        tables, biases = self._tables_and_biases(tied_tables)
        projs = self._projections(tied_projs)
        if c.n_clusters == 0:
            return self._nll(hidden, tables[0], biases[0], projs[0], target)

        cluster_weight = self.param("cluster_weight", _normal(c.weight_init_std),
                                    (c.n_clusters, c.d_embed))
        cluster_bias = self.param("cluster_bias", nn.initializers.zeros, (c.n_clusters,))
        head_table = jnp.concatenate([tables[0], cluster_weight], axis=0)
        head_bias = jnp.concatenate([biases[0], cluster_bias], axis=0)
        shortlist = c.cutoffs[0]
        cluster = sum((target >= end).astype(jnp.int32) for end in c.cutoffs[:-1])  # 0 = head
        head_index = jnp.where(cluster == 0, target, shortlist + cluster - 1)
        nll = self._nll(hidden, head_table, head_bias, projs[0], head_index)
        for i, (l, r) in enumerate(c.cluster_bounds()[1:], start=1):
            if cluster_rows is None:
                # Dense over all N tokens (static shapes); only cluster i's tokens use the result.
                tail = self._nll(hidden, tables[i], biases[i], projs[i],
                                 jnp.clip(target - l, 0, r - l - 1))
                nll = nll + jnp.where(cluster == i, tail, 0.0)
            else:  # the reference's form: only the tokens of cluster i (about 5% of them)
                rows, valid = cluster_rows[i - 1]
                tail = self._nll(hidden[rows], tables[i], biases[i], projs[i],
                                 jnp.clip(target[rows] - l, 0, r - l - 1))
                nll = nll.at[rows].add(jnp.where(valid, tail, 0.0))
        return nll


def tail_cluster_rows(config: GPT2FlexConfig, targets: np.ndarray,
                      multiple: int = 256) -> Tuple[Tuple[np.ndarray, np.ndarray], ...]:
    """Host-side (NumPy) rows of the flattened targets in each tail cluster, padded to a multiple
    of `multiple` (padding: row 0, valid False) so equal batches give equal shapes."""
    t = np.asarray(targets).reshape(-1)
    out = []
    for l, r in config.cluster_bounds()[1:]:
        rows = np.flatnonzero((t >= l) & (t < r)).astype(np.int32)
        size = max(-(-len(rows) // multiple) * multiple, multiple)
        valid = np.arange(size) < len(rows)
        out.append((np.pad(rows, (0, size - len(rows))), valid))
    return tuple(out)


class Attention(nn.Module):
    """Causal multi-head self-attention with a fused q/k/v projection (HF GPT2AttentionFlex).

    mixed_heads: the form the compact extraction runs bucketed layers in, so that one compiled
    program serves every head count h dividing n_head: n_head "fine" heads whose scores are mixed
    by a parameter `head_mix` [n_head, n_head] (`head_mix`: 1 / sqrt(d / h) within each group of
    n_head / h consecutive fine heads, else 0). Each fine head then holds its group's real score
    (the dot product over the real head's width, as a sum of partial ones), so its probabilities
    are the real head's and its context columns are the real head's: the outputs equal the
    h-head attention within float rounding. S is [B, n_head, S, S], real head g at fine head
    g * n_head / h (`head_strides`)."""

    d_model: int
    n_head: int
    init_std: float
    proj_std: float
    mixed_heads: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b, s, d = x.shape
        qkv = nn.Dense(3 * d, kernel_init=_normal(self.init_std), name="c_attn")(x)
        q, k, v = jnp.split(qkv, 3, axis=-1)
        for t in (q, k, v):
            self.sow("intermediates", "H", t)
        head_dim = d // self.n_head

        def heads(t):
            return t.reshape(b, s, self.n_head, head_dim).transpose(0, 2, 1, 3)

        scores = jnp.einsum("bhqd,bhkd->bhqk", heads(q), heads(k))
        if self.mixed_heads:
            # a constant, not a weight: no gradient is computed for it
            mix = jax.lax.stop_gradient(self.param(
                "head_mix", lambda _, n: jnp.eye(n) / math.sqrt(head_dim), self.n_head))
            scores = jnp.einsum("bhqk,hg->bgqk", scores, mix)
        else:
            scores = scores / math.sqrt(head_dim)
        causal = jnp.tril(jnp.ones((s, s), bool))
        scores = jnp.where(causal, scores, jnp.finfo(scores.dtype).min)
        probs = jax.nn.softmax(scores, axis=-1)
        self.sow("intermediates", "S", probs)
        ctx = jnp.einsum("bhqk,bhkd->bhqd", probs, heads(v)).transpose(0, 2, 1, 3).reshape(b, s, d)
        return nn.Dense(d, kernel_init=_normal(self.proj_std), name="c_proj")(ctx)


def head_mix(d_model: int, n_head: int, run_heads: int) -> np.ndarray:
    """The `head_mix` [run_heads, run_heads] that makes a mixed-heads Attention of run_heads fine
    heads compute the n_head-head attention (n_head must divide run_heads)."""
    if run_heads % n_head or d_model % run_heads:
        raise ValueError(f"{run_heads} fine heads cannot carry {n_head} heads of d_model {d_model}")
    group = np.arange(run_heads) // (run_heads // n_head)
    scale = 1.0 / math.sqrt(d_model // n_head)
    return ((group[:, None] == group[None, :]) * scale).astype(np.float32)


class MLP(nn.Module):
    """c_fc -> gelu_new -> c_proj (HF GPT2MLPFlex); the activation is sown as A."""

    d_model: int
    d_inner: int
    init_std: float
    proj_std: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = gelu(nn.Dense(self.d_inner, kernel_init=_normal(self.init_std), name="c_fc")(x), True)
        self.sow("intermediates", "A", h)
        return nn.Dense(self.d_model, kernel_init=_normal(self.proj_std), name="c_proj")(h)


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln_1(x)), then + mlp(ln_2(x)).

    Only its own shape is a field (init stds matter to `init` only), so equal layers of different
    architectures are one module configuration and share a compiled stage (`stages`).
    mixed_heads: see `Attention` (the bucketed form of `stages`)."""

    d_model: int
    n_head: int
    d_inner: int
    eps: float = 1e-5
    init_std: float = 0.02
    proj_std: float = 0.02
    mixed_heads: bool = False
    # train mode only (see `GPT2FlexConfig.dropout`): the dropout and this layer's index, which
    # keys its masks; both stay at their defaults in eval mode, so equal layers stay equal modules
    dropout: Optional[TrainDropout] = None
    index: int = 0

    def _drop(self, y: jax.Array, site: int) -> jax.Array:
        return y if self.dropout is None else self.dropout.apply(y, self.dropout.hidden,
                                                                 self.index, site)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x + self._drop(Attention(self.d_model, self.n_head, self.init_std, self.proj_std,
                                     self.mixed_heads, name="attn")(
            nn.LayerNorm(epsilon=self.eps, name="ln_1")(x)), 0)
        return x + self._drop(MLP(self.d_model, self.d_inner, self.init_std, self.proj_std,
                                  name="mlp")(nn.LayerNorm(epsilon=self.eps, name="ln_2")(x)), 1)


class GPT2Flex(nn.Module):
    """The LM (HF `GPT2LMHeadModelFlex` equivalent). Methods:

    embed(input_ids) -> adaptive input embeddings [B, S, d_model] (what J is taken against).
    __call__(word_embeds) -> final hidden states after ln_f [B, S, d_model].
    nll(hidden, targets) -> per-token negative log-likelihood through the adaptive softmax.
    proxy_loss(word_embeds, batch) -> mean next-token NLL: positions 0..S-2 predict input_ids[:, 1:].
    """

    config: GPT2FlexConfig

    def setup(self):
        c = self.config
        self.wte = AdaptiveEmbedding(c)
        self.wpe = nn.Embed(c.n_positions, c.d_model, embedding_init=_normal(c.weight_init_std))
        proj_std = c.weight_init_std / math.sqrt(2 * max(c.n_layer, 1))
        self.layers = [Block(c.d_model, h, f, c.layer_norm_eps, c.weight_init_std, proj_std,
                             dropout=c.dropout, index=i if c.dropout is not None else 0,
                             name=f"layer_{i}") for i, (h, f) in enumerate(zip(c.n_head, c.d_inner))]
        self.ln_f = nn.LayerNorm(epsilon=c.layer_norm_eps)
        self.lm_head = ProjectedAdaptiveLogSoftmax(c)

    def embed(self, input_ids: jax.Array) -> jax.Array:
        return self.wte(input_ids)

    def prelude(self, word_embeds: jax.Array) -> jax.Array:
        """Word embeddings + learned positions: the input of the first layer."""
        s = word_embeds.shape[1]
        if s > self.config.n_positions:
            raise ValueError(f"sequence length {s} exceeds the {self.config.n_positions} positions")
        return word_embeds + self.wpe(jnp.arange(s))[None]

    def __call__(self, word_embeds: jax.Array) -> jax.Array:
        x = self.prelude(word_embeds)
        for layer in self.layers:
            x = layer(x)
        return self.ln_f(x)

    def nll(self, hidden: jax.Array, targets: jax.Array, cluster_rows=None) -> jax.Array:
        """hidden [..., d_model], targets [...] -> nll [...] (cluster_rows: see lm_head)."""
        flat = hidden.reshape(-1, hidden.shape[-1])
        out = self.lm_head(flat, targets.reshape(-1), self.wte.tables, self.wte.projs, cluster_rows)
        return out.reshape(targets.shape)

    def head_loss(self, hidden: jax.Array, batch: Mapping[str, jax.Array]) -> jax.Array:
        """ln_f, then the mean next-token NLL: last layer's output [B, S, d] -> scalar. Tail
        clusters run on batch["cluster_rows"] only when the batch has it (`head_inputs`)."""
        return jnp.mean(self.nll(self.ln_f(hidden[:, :-1]), batch["input_ids"][:, 1:],
                                 batch.get("cluster_rows")))

    def output_sum(self, hidden: jax.Array, batch: Mapping[str, jax.Array]) -> jax.Array:
        """ln_f, then the sum of the outputs: last layer's output [B, S, d] -> scalar (the staged
        form of the family's Synflow objective, `Family.synflow_value` "output_sum")."""
        return jnp.sum(self.ln_f(hidden))

    def proxy_loss(self, word_embeds: jax.Array, batch: Mapping[str, jax.Array]) -> jax.Array:
        hidden = self(word_embeds)[:, :-1]
        return jnp.mean(self.nll(hidden, batch["input_ids"][:, 1:]))

    def init_all(self, input_ids: jax.Array):
        """Touches every submodule (for `init`): embed, forward, adaptive softmax."""
        return self.proxy_loss(self.embed(input_ids), {"input_ids": input_ids})
