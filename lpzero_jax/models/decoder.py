"""One configurable decoder-only LM in Flax, described with LitGPT's `Config` fields.

What LitGPT's `GPT` builds (litgpt/model.py), in eval mode, plus the knobs the searched spaces
vary per layer (heads, query groups, MLP width):
- token table (padded_vocab_size x n_embd), times sqrt(n_embd) when `scale_embeddings`; plus a
  learned position table of block_size rows when `learned_positions` (GPT-2; not a LitGPT field);
- blocks: attention input norm `norm_1`; causal self-attention with n_head query heads of head_size
  and n_query_groups key/value heads (grouped-query attention as HF's repeat_kv), rotary positions
  on the first rope_n_elem = int(rotary_percentage * head_size) dims of each query/key head
  (NeoX "rotate half" layout, base rope_base), scores / sqrt(head_size); an MLP: GptNeoxMLP
  (fc -> GELU, exact or tanh per gelu_approximate -> proj) or LLaMAMLP (silu(fc_1) * fc_2 -> proj);
  residual sequential x + attn(norm_1 x), then + mlp(norm_2 x), or parallel
  x + attn(norm_1 x) + mlp(norm_2 x) (norm_2 absent: norm_1's output shared, shared_attention_norm);
- final norm, LM head (own kernel, or the token table when `tie_embeddings`; bias when lm_head_bias).
Biases: qkv when bias or attn_bias; attention projection and MLP when bias. LayerNorm has its bias
always (torch's LayerNorm in LitGPT), RMSNorm a scale only.

Names follow Hugging Face, so weights, W's order and H's layout match the existing families:
a GptNeoxMLP decoder is named like HF GPT-2 / our `gpt2` family (wte/emb_0 as LTS names its table,
wpe, layer_<i>/{ln_1, attn/{c_attn (fused q|k|v), c_proj}, ln_2, mlp/{c_fc, c_proj}}, ln_f,
lm_head), a LLaMAMLP decoder like HF LLaMA / our `llama` family (embed_tokens,
layer_<i>/{input_layernorm, self_attn/{q,k,v,o}_proj, post_attention_layernorm,
mlp/{gate,up,down}_proj}, norm, lm_head). Intermediates, inside each `layer_<i>`:
  A  the MLP activation (gelu(fc) or silu(gate) * up), [B, S, intermediate_size];
  H  query, key, value before rotary: GPT-2 naming [B, S, heads * head_size] each, LLaMA naming
     per head [B, heads, S, head_size] (the layouts of the gpt2 and llama families);
  S  the causal attention probabilities [B, n_head, S, S].
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, Mapping, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from lpzero_jax.models.activations import gelu
from lpzero_jax.models.llama import RMSNorm, apply_rope, rope_angles, split_heads
from lpzero_jax.models.softmax import row_nll

NORM_CLASSES = ("LayerNorm", "RMSNorm")
MLP_CLASSES = ("GptNeoxMLP", "LLaMAMLP")
GELU_APPROXIMATE = ("none", "tanh")


@dataclasses.dataclass(frozen=True)
class DecoderLayer:
    """What one block's shape depends on (the per-layer lists of a decoder config)."""

    n_head: int
    n_query_groups: int
    intermediate_size: int


@dataclasses.dataclass(frozen=True)
class BlockStyle:
    """The fields every block of a decoder shares (hashable; part of each block's module key)."""

    n_embd: int
    bias: bool = True
    attn_bias: bool = False
    rotary_percentage: float = 0.25
    rope_base: float = 10000.0
    norm_class_name: str = "LayerNorm"
    norm_eps: float = 1e-5
    mlp_class_name: str = "GptNeoxMLP"
    gelu_approximate: str = "none"
    parallel_residual: bool = True
    shared_attention_norm: bool = False

    @property
    def gpt2_names(self) -> bool:
        """GPT-2 module names (GptNeoxMLP decoders), else LLaMA's."""
        return self.mlp_class_name == "GptNeoxMLP"


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    """A whole decoder (hashable: it keys compilation caches). `head_size` None: n_embd // n_head
    of each layer (LitGPT's default, per layer)."""

    style: BlockStyle
    layers: Tuple[DecoderLayer, ...]
    padded_vocab_size: int
    block_size: int
    head_size: Optional[int] = None
    lm_head_bias: bool = False
    learned_positions: bool = False
    scale_embeddings: bool = False
    tie_embeddings: bool = False
    init_std: float = 0.02
    # a sliding attention window: no effect on sequences up to its width, which bound seq_len
    sliding_window_size: Optional[int] = None

    def __post_init__(self):
        s = self.style
        if s.norm_class_name not in NORM_CLASSES:
            raise ValueError(f"norm_class_name {s.norm_class_name!r}: expected one of {NORM_CLASSES}")
        if s.mlp_class_name not in MLP_CLASSES:
            raise ValueError(f"mlp_class_name {s.mlp_class_name!r}: expected one of {MLP_CLASSES}")
        if s.gelu_approximate not in GELU_APPROXIMATE:
            raise ValueError(f"gelu_approximate {s.gelu_approximate!r}: expected one of "
                             f"{GELU_APPROXIMATE}")
        if not 0.0 <= s.rotary_percentage <= 1.0:
            raise ValueError(f"rotary_percentage {s.rotary_percentage} is not in [0, 1]")
        if s.shared_attention_norm and not s.parallel_residual:
            raise ValueError("shared_attention_norm needs parallel_residual (as in LitGPT)")
        if min(s.n_embd, self.padded_vocab_size, self.block_size) < 1:
            raise ValueError("n_embd, padded_vocab_size and block_size must be positive")
        for i, layer in enumerate(self.layers):
            if min(layer.n_head, layer.n_query_groups, layer.intermediate_size) < 1:
                raise ValueError(f"layer {i}: sizes must be positive: {layer}")
            if layer.n_head % layer.n_query_groups:
                raise ValueError(f"layer {i}: n_head {layer.n_head} is not a multiple of "
                                 f"n_query_groups {layer.n_query_groups}")
            if self.head_size is None and s.n_embd % layer.n_head:
                raise ValueError(f"layer {i}: n_embd {s.n_embd} is not a multiple of n_head "
                                 f"{layer.n_head} (or give head_size)")
            if rope_n_elem(s, self.layer_head_size(layer)) % 2:
                raise ValueError(f"layer {i}: rotary dims int({s.rotary_percentage} * "
                                 f"{self.layer_head_size(layer)}) must be even")

    @property
    def n_embd(self) -> int:
        return self.style.n_embd

    @property
    def n_layer(self) -> int:
        return len(self.layers)

    def layer_head_size(self, layer: DecoderLayer) -> int:
        return self.head_size if self.head_size is not None else self.n_embd // layer.n_head


def rope_n_elem(style: BlockStyle, head_size: int) -> int:
    """LitGPT's rope_n_elem: the rotated dims of each head."""
    return int(style.rotary_percentage * head_size)


def norm_params(style: BlockStyle) -> int:
    """Parameters of one norm: LayerNorm scale and bias, RMSNorm scale."""
    return (2 if style.norm_class_name == "LayerNorm" else 1) * style.n_embd


def count_params(c: DecoderConfig) -> Dict[str, int]:
    """Parameter counts per group, term by term (what LitGPT's GPT / HF's model holds; tests check
    it against the parameter shapes and published totals).

    Embedding: token table V*E + the learned position table block_size*E.
    Attn per layer (head size d, heads n, groups g): qkv E*(n+2g)*d (+ (n+2g)*d bias when bias or
      attn_bias), proj n*d*E (+ E when bias).
    FFN per layer (width I): GptNeoxMLP 2*E*I (+ I + E), LLaMAMLP 3*E*I (+ 2*I + E) with bias.
    LayerNorm: two norms per layer (one when shared_attention_norm) + the final one.
    Softmax: the LM head's own parameters: E*V unless tied, + V when lm_head_bias.
    """
    s, e, v = c.style, c.n_embd, c.padded_vocab_size
    attn = ffn = 0
    for layer in c.layers:
        d = c.layer_head_size(layer)
        qkv = (layer.n_head + 2 * layer.n_query_groups) * d
        attn += e * qkv + (qkv if s.bias or s.attn_bias else 0) + layer.n_head * d * e + (e if s.bias else 0)
        i = layer.intermediate_size
        if s.mlp_class_name == "GptNeoxMLP":
            ffn += 2 * e * i + ((i + e) if s.bias else 0)
        else:
            ffn += 3 * e * i + ((2 * i + e) if s.bias else 0)
    norms = c.n_layer * (1 if s.shared_attention_norm else 2) + 1
    layer_norm = norms * norm_params(s)
    embedding = v * e + (c.block_size * e if c.learned_positions else 0)
    softmax = (0 if c.tie_embeddings else e * v) + (v if c.lm_head_bias else 0)
    nonembedding = attn + ffn + layer_norm
    return {"Embedding": embedding, "Attn": attn, "FFN": ffn, "LayerNorm": layer_norm,
            "Softmax": softmax, "nonembedding": nonembedding,
            "total": embedding + nonembedding + softmax}


# ------------------------------------------------------------------------------------------------
# modules


def _norm(style: BlockStyle, name: str) -> nn.Module:
    if style.norm_class_name == "RMSNorm":
        return RMSNorm(style.norm_eps, name=name)
    return nn.LayerNorm(epsilon=style.norm_eps, name=name)


def _dense(features: int, bias: bool, name: str) -> nn.Dense:
    return nn.Dense(features, use_bias=bias, kernel_init=nn.initializers.normal(0.02), name=name)


class Attention(nn.Module):
    """Causal grouped-query self-attention with partial rotary positions (module docstring)."""

    style: BlockStyle
    head_size: int
    n_head: int
    n_query_groups: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        s, d, n, g = self.style, self.head_size, self.n_head, self.n_query_groups
        b, t, _ = x.shape
        qkv_bias = s.bias or s.attn_bias
        if s.gpt2_names:
            qkv = _dense((n + 2 * g) * d, qkv_bias, "c_attn")(x)
            q, k, v = jnp.split(qkv, [n * d, (n + g) * d], axis=-1)
            for y in (q, k, v):
                self.sow("intermediates", "H", y)
            q, k, v = split_heads(q, n, d), split_heads(k, g, d), split_heads(v, g, d)
        else:
            q = split_heads(_dense(n * d, qkv_bias, "q_proj")(x), n, d)
            k = split_heads(_dense(g * d, qkv_bias, "k_proj")(x), g, d)
            v = split_heads(_dense(g * d, qkv_bias, "v_proj")(x), g, d)
            for y in (q, k, v):
                self.sow("intermediates", "H", y)
        rotary = rope_n_elem(s, d)
        if rotary:
            cos, sin = rope_angles(jnp.arange(t), rotary, s.rope_base)
            q = jnp.concatenate([apply_rope(q[..., :rotary], cos, sin), q[..., rotary:]], axis=-1)
            k = jnp.concatenate([apply_rope(k[..., :rotary], cos, sin), k[..., rotary:]], axis=-1)
        if n > g:  # query head h reads key/value group h // (n / g)
            k, v = jnp.repeat(k, n // g, axis=1), jnp.repeat(v, n // g, axis=1)
        scores = jnp.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(d)
        causal = jnp.tril(jnp.ones((t, t), bool))
        scores = jnp.where(causal, scores, jnp.finfo(scores.dtype).min)
        probs = jax.nn.softmax(scores, axis=-1)
        self.sow("intermediates", "S", probs)
        ctx = jnp.einsum("bhqk,bhkd->bhqd", probs, v).transpose(0, 2, 1, 3).reshape(b, t, n * d)
        return _dense(s.n_embd, s.bias, "c_proj" if s.gpt2_names else "o_proj")(ctx)


class MLP(nn.Module):
    """GptNeoxMLP (c_fc -> GELU -> c_proj) or LLaMAMLP (down(silu(gate) * up)); A is sown."""

    style: BlockStyle
    intermediate_size: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        s, i = self.style, self.intermediate_size
        if s.mlp_class_name == "GptNeoxMLP":
            h = gelu(_dense(i, s.bias, "c_fc")(x), s.gelu_approximate == "tanh")
            self.sow("intermediates", "A", h)
            return _dense(s.n_embd, s.bias, "c_proj")(h)
        h = jax.nn.silu(_dense(i, s.bias, "gate_proj")(x)) * _dense(i, s.bias, "up_proj")(x)
        self.sow("intermediates", "A", h)
        return _dense(s.n_embd, s.bias, "down_proj")(h)


class Block(nn.Module):
    """One decoder block; only its own shape and the shared style are fields, so equal layers of
    different architectures are one module configuration and share a compiled stage."""

    style: BlockStyle
    head_size: int
    n_head: int
    n_query_groups: int
    intermediate_size: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        s = self.style
        names = ("ln_1", "attn", "ln_2") if s.gpt2_names else (
            "input_layernorm", "self_attn", "post_attention_layernorm")
        attn = Attention(s, self.head_size, self.n_head, self.n_query_groups, name=names[1])
        mlp = MLP(s, self.intermediate_size, name="mlp")
        h = _norm(s, names[0])(x)
        if not s.parallel_residual:
            x = x + attn(h)
            return x + mlp(_norm(s, names[2])(x))
        return x + attn(h) + mlp(h if s.shared_attention_norm else _norm(s, names[2])(x))


class TokenTable(nn.Module):
    """The token table, as the family of the names stores it: `wte/emb_0` (LTS's adaptive embedding
    with one cluster) or `embed_tokens/embedding` (nn.Embed)."""

    vocab: int
    features: int

    @nn.compact
    def __call__(self) -> jax.Array:
        return self.param("emb_0", nn.initializers.normal(0.02), (self.vocab, self.features))


class LMHead(nn.Module):
    """The LM head's own parameters: (kernel [E, V] or None when tied, bias [V] or None)."""

    vocab: int
    features: int
    own_kernel: bool
    use_bias: bool

    @nn.compact
    def __call__(self):
        kernel = self.param("kernel", nn.initializers.normal(0.02), (self.features, self.vocab)) \
            if self.own_kernel else None
        bias = self.param("bias", nn.initializers.zeros, (self.vocab,)) if self.use_bias else None
        return kernel, bias


class Decoder(nn.Module):
    """The LM (model contract of families/base.py). Methods:

    embed(input_ids) -> token embeddings [B, S, E] (x sqrt(E) when scale_embeddings): J's input;
    prelude(word_embeds) -> input of layer 0 (+ the learned positions when there are);
    __call__(word_embeds) -> final hidden states after the final norm [B, S, E];
    logits(word_embeds) -> [B, S, V] (for checks; the passes never form them);
    head_loss(hidden, batch) -> mean next-token NLL of the last layer's output;
    output_sum(hidden, batch) -> sum of the logits of the last layer's output (Synflow's R);
    proxy_loss(word_embeds, batch) -> head_loss after every layer.
    A config without layers is the outer stage of `stages`.
    """

    config: DecoderConfig

    def setup(self):
        c, s = self.config, self.config.style
        if s.gpt2_names:
            self.table = TokenTable(c.padded_vocab_size, c.n_embd, name="wte")
        else:
            self.embedding = nn.Embed(c.padded_vocab_size, c.n_embd,
                                      embedding_init=nn.initializers.normal(0.02),
                                      name="embed_tokens")
        if c.learned_positions:
            self.wpe = nn.Embed(c.block_size, c.n_embd, embedding_init=nn.initializers.normal(0.02),
                                name="wpe")
        self.layers = [Block(s, c.layer_head_size(layer), layer.n_head, layer.n_query_groups,
                             layer.intermediate_size, name=f"layer_{i}") for i, layer in enumerate(c.layers)]
        self.final_norm = _norm(s, "ln_f" if s.gpt2_names else "norm")
        if c.lm_head_bias or not c.tie_embeddings:
            self.lm_head = LMHead(c.padded_vocab_size, c.n_embd, not c.tie_embeddings,
                                  c.lm_head_bias, name="lm_head")

    def _table(self) -> jax.Array:
        return self.table() if self.config.style.gpt2_names else self.embedding.embedding

    def embed(self, input_ids: jax.Array) -> jax.Array:
        x = jnp.take(self._table(), input_ids, axis=0)
        return x * math.sqrt(self.config.n_embd) if self.config.scale_embeddings else x

    def prelude(self, word_embeds: jax.Array) -> jax.Array:
        s = word_embeds.shape[1]
        if s > self.config.block_size:
            raise ValueError(f"sequence length {s} exceeds block_size {self.config.block_size}")
        if self.config.learned_positions:
            return word_embeds + self.wpe(jnp.arange(s))[None]
        return word_embeds

    def _layers(self, word_embeds: jax.Array) -> jax.Array:
        x = self.prelude(word_embeds)
        for layer in self.layers:
            x = layer(x)
        return x

    def __call__(self, word_embeds: jax.Array) -> jax.Array:
        return self.final_norm(self._layers(word_embeds))

    def logits(self, word_embeds: jax.Array) -> jax.Array:
        c = self.config
        kernel, bias = self.lm_head() if c.lm_head_bias or not c.tie_embeddings else (None, None)
        out = self(word_embeds) @ (self._table().T if kernel is None else kernel)
        return out if bias is None else out + bias

    def nll(self, hidden: jax.Array, targets: jax.Array) -> jax.Array:
        """Normed hidden states [..., E], targets [...] -> per-token NLL (natural log)."""
        c = self.config
        flat = hidden.reshape(-1, hidden.shape[-1])
        kernel, bias = self.lm_head() if c.lm_head_bias or not c.tie_embeddings else (None, None)
        table = self._table() if kernel is None else kernel.T
        return row_nll(flat, table, bias, targets.reshape(-1)).reshape(targets.shape)

    def head_loss(self, hidden: jax.Array, batch: Mapping[str, jax.Array]) -> jax.Array:
        return jnp.mean(self.nll(self.final_norm(hidden[:, :-1]), batch["input_ids"][:, 1:]))

    def output_sum(self, hidden: jax.Array, batch: Mapping[str, jax.Array]) -> jax.Array:
        """Sum of the logits (Synflow's R, as LPZero takes it for GPT-2), without forming them:
        sum_t norm(h_t) . (sum_v table_v) + tokens * sum(bias). Not the sum of the normed hidden
        states: with unit norm scales (|params| of a fresh model) that sum does not depend on the
        layers at all (sum_i xhat_i = 0 after a LayerNorm), so their gradient would be zero."""
        c = self.config
        kernel, bias = self.lm_head() if c.lm_head_bias or not c.tie_embeddings else (None, None)
        column_sum = jnp.sum(self._table(), axis=0) if kernel is None else jnp.sum(kernel, axis=1)
        normed = self.final_norm(hidden)
        out = jnp.sum(normed @ column_sum)
        return out if bias is None else out + normed.shape[0] * normed.shape[1] * jnp.sum(bias)

    def proxy_loss(self, word_embeds: jax.Array, batch: Mapping[str, jax.Array]) -> jax.Array:
        return self.head_loss(self._layers(word_embeds), batch)

    def logit_sum(self, word_embeds: jax.Array, batch: Mapping[str, jax.Array]) -> jax.Array:
        """output_sum after every layer: the whole-model form of Synflow's R."""
        return self.output_sum(self._layers(word_embeds), batch)

    def init_all(self, input_ids: jax.Array):
        """Touches every submodule (for `init`)."""
        return self.proxy_loss(self.embed(input_ids), {"input_ids": input_ids})
