"""LLaMA decoder in Flax, with optional LoRA adapters and per-layer widths (for LoNAS subnets).

Architecture as HF `LlamaForCausalLM` (transformers' modeling_llama), eval mode, no KV cache:
- token embedding -> N x decoder layer -> RMSNorm -> LM head (own kernel, or tied to the embedding);
- decoder layer: x + o_proj(attn(RMSNorm(x))), then h + down_proj(silu(gate_proj(.)) * up_proj(.))
  on RMSNorm(h); no biases;
- RMSNorm: x / sqrt(mean(x^2) + eps) * scale, computed in float32;
- causal multi-head attention with rotary embeddings in HF's "rotate half" layout (the layout HF
  checkpoints are stored in): inv_freq = rope_theta^(-2i/d), angles t * inv_freq duplicated over
  both halves of the head dim; grouped-query attention when num_kv_heads < num_heads (query head h
  reads key/value head h // (num_heads / num_kv_heads), as HF's `repeat_kv`).
- LoRA (peft layout, as LoNAS uses it): q/k/v take an adapter of rank `attn_lora_rank`, gate/up one
  of rank `ffn_lora_rank`: y = x W + scaling * (x A) B, A [in, r], B [r, out]. `lora_scaling` is
  fixed (peft's alpha / r of the supernet: 64 / 32 = 2 in LoNAS), so cutting a rank does not
  rescale the adapter. Rank 0 means no adapter (plain LLaMA).

Every layer has its own FFN width, head count and adapter ranks (`LlamaLayerConfig`), so a LoNAS
subnet is just another `LlamaConfig`; a uniform HF config is `LlamaConfig.uniform(...)` or
`LlamaConfig.from_hf(config.json dict)`.

Intermediates sown into `intermediates`, per layer module `layer_<i>`:
  A  the SwiGLU hidden activation silu(gate) * up, [B, S, intermediate_size];
  H  the query, key and value projections (adapters included, before RoPE), split per head:
     [B, heads, S, head_dim] (key/value: kv heads);
  S  the attention probabilities [B, heads, S, S] (causally masked entries are exactly 0).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Mapping, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

INIT_STD = 0.02  # HF LlamaConfig.initializer_range


@dataclasses.dataclass(frozen=True)
class LlamaLayerConfig:
    """One decoder layer: FFN width, attention heads, and LoRA adapter ranks (0 = none)."""

    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    attn_lora_rank: int = 0
    ffn_lora_rank: int = 0


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
    """A whole LLaMA (hashable: it keys compilation caches)."""

    vocab_size: int
    hidden_size: int
    layers: Tuple[LlamaLayerConfig, ...]
    head_dim: Optional[int] = None  # None: hidden_size // num_heads of each layer (HF default)
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = False
    lora_scaling: float = 2.0  # peft lora_alpha / r of the supernet (LoNAS: 64 / 32)

    def __post_init__(self):
        for i, l in enumerate(self.layers):
            if l.num_heads % l.num_kv_heads:
                raise ValueError(f"layer {i}: num_heads {l.num_heads} is not a multiple of "
                                 f"num_kv_heads {l.num_kv_heads}")
            if self.head_dim is None and self.hidden_size % l.num_heads:
                raise ValueError(f"layer {i}: hidden_size {self.hidden_size} is not a multiple of "
                                 f"num_heads {l.num_heads} (or give head_dim)")
            if self.layer_head_dim(l) % 2:
                raise ValueError(f"layer {i}: rotary embeddings need an even head_dim")
            if min(l.intermediate_size, l.num_heads, l.num_kv_heads) < 1:
                raise ValueError(f"layer {i}: sizes must be positive: {l}")
            if min(l.attn_lora_rank, l.ffn_lora_rank) < 0:
                raise ValueError(f"layer {i}: LoRA ranks must be >= 0: {l}")

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def layer_head_dim(self, layer: LlamaLayerConfig) -> int:
        return self.head_dim if self.head_dim is not None else self.hidden_size // layer.num_heads

    @classmethod
    def uniform(cls, vocab_size: int, hidden_size: int, intermediate_size: int,
                num_hidden_layers: int, num_attention_heads: int,
                num_key_value_heads: Optional[int] = None, attn_lora_rank: int = 0,
                ffn_lora_rank: int = 0, **kwargs) -> "LlamaConfig":
        """The usual LLaMA config (every layer alike); kwargs: head_dim, rope_theta, ..."""
        layer = LlamaLayerConfig(intermediate_size, num_attention_heads,
                                 num_key_value_heads or num_attention_heads, attn_lora_rank,
                                 ffn_lora_rank)
        return cls(vocab_size=vocab_size, hidden_size=hidden_size,
                   layers=(layer,) * num_hidden_layers, **kwargs)

    @classmethod
    def from_hf(cls, hf: Mapping[str, Any], attn_lora_rank: int = 0, ffn_lora_rank: int = 0,
                lora_scaling: float = 2.0) -> "LlamaConfig":
        """From a HF LLaMA `config.json` dict (rope_scaling other than none is refused)."""
        rope_scaling = hf.get("rope_scaling")
        if rope_scaling and rope_scaling.get("rope_type", rope_scaling.get("type")) != "default":
            raise NotImplementedError(f"rope_scaling {rope_scaling} is not supported")
        if hf.get("attention_bias") or hf.get("mlp_bias"):
            raise NotImplementedError("LLaMA variants with attention/MLP biases are not supported")
        rope_theta = hf.get("rope_theta", (hf.get("rope_parameters") or {}).get("rope_theta", 10000.0))
        return cls.uniform(
            vocab_size=int(hf["vocab_size"]), hidden_size=int(hf["hidden_size"]),
            intermediate_size=int(hf["intermediate_size"]),
            num_hidden_layers=int(hf["num_hidden_layers"]),
            num_attention_heads=int(hf["num_attention_heads"]),
            num_key_value_heads=int(hf.get("num_key_value_heads") or hf["num_attention_heads"]),
            attn_lora_rank=attn_lora_rank, ffn_lora_rank=ffn_lora_rank,
            head_dim=hf.get("head_dim"), rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            rope_theta=float(rope_theta),
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
            lora_scaling=lora_scaling)

    def to_dict(self) -> dict:
        """Plain JSON-able form (inverse: `llama_config_from_dict`)."""
        d = dataclasses.asdict(self)
        d["layers"] = [dataclasses.asdict(l) for l in self.layers]
        return d


def llama_config_from_dict(d: Mapping[str, Any]) -> LlamaConfig:
    """Inverse of `LlamaConfig.to_dict` (unknown fields are refused, missing optional ones default)."""
    d = dict(d)
    known = {f.name for f in dataclasses.fields(LlamaConfig)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown LlamaConfig fields {sorted(unknown)}")
    layers = tuple(LlamaLayerConfig(**l) for l in d.pop("layers"))
    if not layers:  # nothing to score: no W, no A/H/S (GPT-2 and FlexiBERT refuse it too)
        raise ValueError("layers is empty: a model needs at least one layer")
    return LlamaConfig(layers=layers, **d)


def count_llama_params(c: LlamaConfig) -> int:
    """Closed-form parameter count (what `jax.eval_shape` of the model gives; tests check it).

    embeddings V*E (+ an untied head E*V) + final norm E, and per layer with head dim d, heads n,
    kv heads m, FFN width I, ranks r_a, r_f:
      attention  E*n*d (q) + 2*E*m*d (k, v) + n*d*E (o)
      FFN        3*E*I (gate, up, down)
      norms      2*E
      adapters   r_a*(E + n*d) + 2*r_a*(E + m*d)  +  2*r_f*(E + I)
    """
    e = c.hidden_size
    total = c.vocab_size * e * (1 if c.tie_word_embeddings else 2) + e
    for l in c.layers:
        d = c.layer_head_dim(l)
        q, kv = l.num_heads * d, l.num_kv_heads * d
        total += e * q + 2 * e * kv + q * e + 3 * e * l.intermediate_size + 2 * e
        total += l.attn_lora_rank * ((e + q) + 2 * (e + kv)) + 2 * l.ffn_lora_rank * (e + l.intermediate_size)
    return int(total)


# ------------------------------------------------------------------------------------------------
# building blocks


def rms_norm(x: jax.Array, scale: jax.Array, eps: float) -> jax.Array:
    """x / sqrt(mean(x^2) + eps) * scale, in float32, cast back to x's dtype (HF LlamaRMSNorm)."""
    xf = x.astype(jnp.float32)
    normed = xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + eps)
    return scale * normed.astype(x.dtype)


class RMSNorm(nn.Module):
    eps: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
        return rms_norm(x, scale, self.eps)


def rope_angles(positions: jax.Array, head_dim: int, theta: float) -> Tuple[jax.Array, jax.Array]:
    """cos, sin [S, head_dim] of HF's rotary embedding (frequencies repeated over both halves)."""
    inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
    freqs = positions.astype(jnp.float32)[:, None] * inv_freq[None, :]
    emb = jnp.concatenate([freqs, freqs], axis=-1)
    return jnp.cos(emb), jnp.sin(emb)


def apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """x * cos + rotate_half(x) * sin over [B, heads, S, d]; rotate_half(x) = [-x2, x1]."""
    half = x.shape[-1] // 2
    rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos.astype(x.dtype) + rotated * sin.astype(x.dtype)


def _lora_a_init(key, shape, dtype=jnp.float32):
    """peft's default for A: kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(shape[0])
    return jax.random.uniform(key, shape, dtype, -bound, bound)


class LoraLinear(nn.Module):
    """y = x W (+ scaling * (x A) B when rank > 0). Params: kernel [in, out], lora_a, lora_b."""

    is_linear_layer: ClassVar[bool] = True  # a linear layer to the proxies (Fisher hooks its output)
    features: int
    rank: int = 0
    scaling: float = 2.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.normal(INIT_STD), (x.shape[-1], self.features))
        y = x @ kernel
        if self.rank > 0:
            a = self.param("lora_a", _lora_a_init, (x.shape[-1], self.rank))
            b = self.param("lora_b", nn.initializers.zeros, (self.rank, self.features))
            y = y + self.scaling * ((x @ a) @ b)
        return y


def split_heads(x: jax.Array, heads: int, head_dim: int) -> jax.Array:
    """[B, S, heads*d] -> [B, heads, S, d]."""
    b, s, _ = x.shape
    return x.reshape(b, s, heads, head_dim).transpose(0, 2, 1, 3)


class Attention(nn.Module):
    """Causal (grouped-query) self-attention with rotary embeddings and optional q/k/v adapters."""

    config: LlamaConfig
    layer: LlamaLayerConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c, l = self.config, self.layer
        d = c.layer_head_dim(l)
        b, s, _ = x.shape
        q = LoraLinear(l.num_heads * d, l.attn_lora_rank, c.lora_scaling, name="q_proj")(x)
        k = LoraLinear(l.num_kv_heads * d, l.attn_lora_rank, c.lora_scaling, name="k_proj")(x)
        v = LoraLinear(l.num_kv_heads * d, l.attn_lora_rank, c.lora_scaling, name="v_proj")(x)
        q = split_heads(q, l.num_heads, d)
        k = split_heads(k, l.num_kv_heads, d)
        v = split_heads(v, l.num_kv_heads, d)
        for t in (q, k, v):
            self.sow("intermediates", "H", t)

        cos, sin = rope_angles(jnp.arange(s), d, c.rope_theta)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        group = l.num_heads // l.num_kv_heads
        if group > 1:  # HF repeat_kv: kv head j serves query heads j*group .. (j+1)*group - 1
            k = jnp.repeat(k, group, axis=1)
            v = jnp.repeat(v, group, axis=1)

        scores = jnp.einsum("bhqd,bhkd->bhqk", q, k).astype(jnp.float32) / math.sqrt(d)
        causal = jnp.tril(jnp.ones((s, s), dtype=bool))
        scores = jnp.where(causal, scores, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(scores, axis=-1)
        self.sow("intermediates", "S", probs)
        ctx = jnp.einsum("bhqk,bhkd->bhqd", probs.astype(v.dtype), v)
        ctx = ctx.transpose(0, 2, 1, 3).reshape(b, s, l.num_heads * d)
        return LoraLinear(c.hidden_size, 0, name="o_proj")(ctx)


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)); the hidden activation is sown as A."""

    config: LlamaConfig
    layer: LlamaLayerConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c, l = self.config, self.layer
        gate = LoraLinear(l.intermediate_size, l.ffn_lora_rank, c.lora_scaling, name="gate_proj")(x)
        up = LoraLinear(l.intermediate_size, l.ffn_lora_rank, c.lora_scaling, name="up_proj")(x)
        hidden = jax.nn.silu(gate) * up
        self.sow("intermediates", "A", hidden)
        return LoraLinear(c.hidden_size, 0, name="down_proj")(hidden)


class DecoderLayer(nn.Module):
    config: LlamaConfig
    layer: LlamaLayerConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        eps = self.config.rms_norm_eps
        x = x + Attention(self.config, self.layer, name="self_attn")(
            RMSNorm(eps, name="input_layernorm")(x))
        return x + SwiGLU(self.config, self.layer, name="mlp")(
            RMSNorm(eps, name="post_attention_layernorm")(x))


class Llama(nn.Module):
    """Causal LM. Methods:

    embed(input_ids) -> token embeddings [B, S, E]: the input the Jacobian J is taken against.
    prelude(word_embeds) -> input of layer 0 (LLaMA adds nothing: positions enter through RoPE).
    logits(hidden) -> final RMSNorm + LM head, [B, S, V].
    __call__(word_embeds) -> logits [B, S, V].
    head_loss(hidden, batch) -> mean next-token cross-entropy of the last layer's output on
        batch['input_ids'] (labels = inputs shifted by one; `batch['loss_mask']` [B, S-1] optional).
    proxy_loss(word_embeds, batch) -> head_loss after every layer: the loss behind G and J.
    A config without layers is the "outer" stage of staged extraction (embeddings, norm, head).
    """

    config: LlamaConfig

    def setup(self):
        c = self.config
        self.embed_tokens = nn.Embed(c.vocab_size, c.hidden_size,
                                     embedding_init=nn.initializers.normal(INIT_STD))
        shared = dataclasses.replace(c, layers=())  # layers depend on their own config only
        self.layers = [DecoderLayer(shared, l, name=f"layer_{i}") for i, l in enumerate(c.layers)]
        self.norm = RMSNorm(c.rms_norm_eps)
        if not c.tie_word_embeddings:
            self.lm_head = LoraLinear(c.vocab_size, 0)

    def embed(self, input_ids: jax.Array) -> jax.Array:
        return self.embed_tokens(input_ids)

    def prelude(self, word_embeds: jax.Array) -> jax.Array:
        return word_embeds

    def logits(self, hidden: jax.Array) -> jax.Array:
        h = self.norm(hidden)
        if self.config.tie_word_embeddings:
            return self.embed_tokens.attend(h)
        return self.lm_head(h)

    def _layers(self, word_embeds: jax.Array) -> jax.Array:
        x = self.prelude(word_embeds)
        for layer in self.layers:
            x = layer(x)
        return x

    def __call__(self, word_embeds: jax.Array) -> jax.Array:
        return self.logits(self._layers(word_embeds))

    def head_loss(self, hidden: jax.Array, batch: dict) -> jax.Array:
        return lm_loss(self.logits(hidden), batch["input_ids"], batch.get("loss_mask"))

    def proxy_loss(self, word_embeds: jax.Array, batch: dict) -> jax.Array:
        return self.head_loss(self._layers(word_embeds), batch)

    def init_all(self, input_ids: jax.Array):
        """Touches every submodule (for `init`): embed + forward."""
        return self(self.embed(input_ids))


def lm_loss(logits: jax.Array, input_ids: jax.Array, loss_mask: Optional[jax.Array] = None) -> jax.Array:
    """Mean cross-entropy of predicting input_ids[:, 1:] from logits[:, :-1] (float32)."""
    logp = jax.nn.log_softmax(logits[:, :-1].astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, input_ids[:, 1:, None], axis=-1)[..., 0]
    if loss_mask is None:
        return jnp.mean(nll)
    w = loss_mask.astype(jnp.float32)
    return jnp.sum(nll * w) / jnp.maximum(jnp.sum(w), 1.0)
