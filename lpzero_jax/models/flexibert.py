"""FlexiBERT in Flax: ELECTRA-small style encoder with a different token mixer in every layer.

Faithful to the PyTorch reference of Serianni & Kalita (training-free-nas, `modeling_electra.py`):
- Embeddings: word (30522 x 128, padding row 0 zeroed), position (512 x 128), token type (2 x 128),
  LayerNorm(eps 1e-12); projected to `hidden_size` by a Dense when 128 != hidden_size.
- Layer operations (`operation_type` / `operation_parameter`):
  SA/SDP  scaled dot-product self-attention (query, key, value), then Dense + residual LayerNorm;
  SA/WMA  the same with the query passed through an extra bias-free Dense `weight`;
  LT/DFT  Dense `input`, real part of the 2-D FFT over (sequence, head dim) per head; no output
          projection and no residual: the FFN's residual adds the transform output;
  LT/DCT  the same with the 2-D DCT-II (unnormalised, scipy's norm=None);
  DSC/k   ConvBERT span-based dynamic convolution with kernel k: half the heads (at least one) do
          self-attention, the other half a softmax-weighted convolution whose kernel is predicted from
          a separable convolution of the input times the query; then Dense + residual LayerNorm.
- FFN: `num_feed_forward` GELU Dense layers of `feed_forward_dimension`, Dense back to hidden_size,
  residual LayerNorm.
Initialisation as HF `post_init`: every Dense/Embedding/Conv kernel N(0, 0.02), biases 0, LayerNorm 1/0.
Eval mode by default (no dropout: zero-cost proxies must be deterministic). `dropout` (a
`models.dropout.TrainDropout`, set by the family under `config.train_mode`) adds the reference's
train-mode dropout (ELECTRA's hidden_dropout_prob and attention_probs_dropout_prob, 0.1 each): on the
embeddings after their LayerNorm, on the attention probabilities (SA, DSC's attention half), and on
the dense output before each residual LayerNorm; masks fixed by its seed, keyed by layer and site.

Intermediates sown into the `intermediates` collection, per layer module `layer_<i>`:
  A  every GELU output of the FFN stack (num_feed_forward tensors, [B, S, d_ff]);
  H  outputs of the operation's projections: query/key/value (+ weighted query for WMA) for SA,
     query/key/value for DSC, `input` for LT ([B, S, width] each);
  S  softmax outputs: attention probabilities [B, heads, S, S] for SA and DSC; for LT the softmax over
     the head dim of the transform output [B, heads, S, head_dim] (computed but unused by the
     original forward, where the reference code hooks it).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from lpzero_jax.models.dropout import TrainDropout
from lpzero_jax.models.activations import gelu
from lpzero_jax.models.softmax import row_nll

INIT_STD = 0.02


@dataclasses.dataclass(frozen=True)
class LayerConfig:
    """One encoder layer: operation type/parameter, heads, FFN width and depth."""

    operation_type: str  # "SA", "LT" or "DSC"
    operation_parameter: Union[str, int]  # SDP/WMA, DFT/DCT, or the conv kernel size
    num_operation_heads: int
    feed_forward_dimension: int
    num_feed_forward: int


@dataclasses.dataclass(frozen=True)
class FlexiBertConfig:
    """A whole FlexiBERT architecture (hashable, so it can key compilation caches)."""

    hidden_size: int
    layers: Tuple[LayerConfig, ...]
    vocab_size: int = 30522
    embedding_size: int = 128
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    conv_head_ratio: int = 2
    pad_token_id: int = 0
    proxy_loss: str = "tied_lm"  # or "sum_output" (the reference's backward(ones_like(output)))
    dropout: Optional[TrainDropout] = None  # train-mode dropout (None: eval mode, the default)


def _dense(features: int, name: str, use_bias: bool = True) -> nn.Dense:
    return nn.Dense(features, use_bias=use_bias, name=name,
                    kernel_init=nn.initializers.normal(INIT_STD), bias_init=nn.initializers.zeros)


def _split_heads(x: jax.Array, heads: int) -> jax.Array:
    """[B, S, heads*d] -> [B, heads, S, d]."""
    b, s, w = x.shape
    return x.reshape(b, s, heads, w // heads).transpose(0, 2, 1, 3)


def _merge_heads(x: jax.Array) -> jax.Array:
    """[B, heads, S, d] -> [B, S, heads*d]."""
    b, h, s, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, s, h * d)


def _attention(q: jax.Array, k: jax.Array, v: jax.Array, head_size: int,
               module: nn.Module, drop=None) -> jax.Array:
    """Softmax(q k^T / sqrt(d)) v over [B, heads, S, d] inputs; sows the probabilities as S
    (before `drop`, the train-mode dropout of the probabilities, if given)."""
    scores = jnp.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(head_size)
    probs = jax.nn.softmax(scores, axis=-1)
    module.sow("intermediates", "S", probs)
    if drop is not None:
        probs = drop(probs)
    return jnp.einsum("bhqk,bhkd->bhqd", probs, v)


class SelfAttention(nn.Module):
    """SA layer operation: scaled dot-product (SDP) or weighted multiplicative (WMA) attention."""

    hidden_size: int
    heads: int
    weighted: bool

    @nn.compact
    def __call__(self, x: jax.Array, drop=None) -> jax.Array:
        width = self.hidden_size  # heads * (hidden_size // heads)
        q = _dense(width, "query")(x)
        k = _dense(width, "key")(x)
        v = _dense(width, "value")(x)
        for t in (q, k, v):
            self.sow("intermediates", "H", t)
        if self.weighted:
            q = _dense(width, "weight", use_bias=False)(q)
            self.sow("intermediates", "H", q)
        head_size = self.hidden_size // self.heads
        ctx = _attention(_split_heads(q, self.heads), _split_heads(k, self.heads),
                         _split_heads(v, self.heads), head_size, self, drop)
        return _merge_heads(ctx)


def dct2_unnormalised(x: jax.Array, axis: int) -> jax.Array:
    """DCT-II without normalisation, y_k = 2 sum_n x_n cos(pi k (2n+1) / 2N) (scipy norm=None)."""
    n = x.shape[axis]
    k = jnp.arange(n)[:, None]
    m = jnp.arange(n)[None, :]
    basis = 2.0 * jnp.cos(jnp.pi * k * (2 * m + 1) / (2 * n)).astype(x.dtype)
    x = jnp.moveaxis(x, axis, -1)
    return jnp.moveaxis(x @ basis.T, -1, axis)


class LinearTransform(nn.Module):
    """LT layer operation: per-head 2-D DFT (real part) or DCT-II over (sequence, head dim)."""

    hidden_size: int
    heads: int
    transform: str  # "DFT" or "DCT"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = _dense(self.hidden_size, "input")(x)
        self.sow("intermediates", "H", h)
        h = _split_heads(h, self.heads)  # [B, heads, S, d]
        if self.transform == "DFT":
            ctx = jnp.fft.fft2(h, axes=(-2, -1)).real
        else:  # torch-dct's dct_2d: DCT over the last axis, then over the sequence axis
            ctx = dct2_unnormalised(dct2_unnormalised(h, -1), -2)
        self.sow("intermediates", "S", jax.nn.softmax(ctx, axis=-1))
        return _merge_heads(ctx)


class DynamicConvolution(nn.Module):
    """DSC layer operation: ConvBERT mixed attention / span-based dynamic convolution."""

    hidden_size: int
    heads: int
    kernel_size: int
    conv_head_ratio: int = 2

    @nn.compact
    def __call__(self, x: jax.Array, drop=None) -> jax.Array:
        b, s, hidden = x.shape
        n = max(self.heads // self.conv_head_ratio, 1)  # attention heads; as many conv heads
        head_size = self.hidden_size // self.heads
        width = n * head_size
        k = self.kernel_size
        init = nn.initializers.normal(INIT_STD)

        q = _dense(width, "query")(x)
        key = _dense(width, "key")(x)
        v = _dense(width, "value")(x)
        for t in (q, key, v):
            self.sow("intermediates", "H", t)

        # separable convolution of the input: depthwise (no bias), pointwise (no bias), own bias
        depthwise = nn.Conv(hidden, (k,), padding=[(k // 2, k // 2)], feature_group_count=hidden,
                            use_bias=False, kernel_init=init, name="key_conv_depthwise")(x)
        pointwise = nn.Conv(width, (1,), use_bias=False, kernel_init=init,
                            name="key_conv_pointwise")(depthwise)
        key_conv = pointwise + self.param("key_conv_bias", nn.initializers.zeros, (width,))

        conv_kernel = _dense(n * k, "conv_kernel")(key_conv * q).reshape(b, s, n, k)
        conv_kernel = jax.nn.softmax(conv_kernel, axis=-1)
        conv_in = _dense(width, "conv_out")(x)
        padded = jnp.pad(conv_in, ((0, 0), ((k - 1) // 2, (k - 1) // 2), (0, 0)))
        windows = jnp.stack([padded[:, j:j + s, :] for j in range(k)], axis=-1)  # [B, S, width, k]
        windows = windows.reshape(b, s, n, head_size, k)
        conv_out = jnp.einsum("bsndk,bsnk->bsnd", windows, conv_kernel)

        ctx = _attention(_split_heads(q, n), _split_heads(key, n), _split_heads(v, n), head_size,
                         self, drop)
        ctx = ctx.transpose(0, 2, 1, 3)  # [B, S, n, d]
        mixed = jnp.concatenate([ctx, conv_out], axis=2)  # [B, S, 2n, d]
        return mixed.reshape(b, s, self.conv_head_ratio * width)


class ResidualOutput(nn.Module):
    """Dense to hidden_size, then LayerNorm(h + residual)."""

    hidden_size: int
    eps: float

    @nn.compact
    def __call__(self, h: jax.Array, residual: jax.Array, drop=None) -> jax.Array:
        h = _dense(self.hidden_size, "dense")(h)
        if drop is not None:  # train mode: dropout before the residual add
            h = drop(h)
        return nn.LayerNorm(epsilon=self.eps, name="LayerNorm")(h + residual)


class FeedForward(nn.Module):
    """`num` GELU Dense layers of width `dim`; each activation is sown as A."""

    dim: int
    num: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i in range(self.num):
            x = gelu(_dense(self.dim, "dense_in" if i == 0 else f"dense_{i}")(x), False)
            self.sow("intermediates", "A", x)
        return x


class EncoderLayer(nn.Module):
    """One FlexiBERT layer: token-mixing operation, (output projection), FFN, residual norms.

    Its fields are only what the layer depends on, so equal layers of different architectures are
    equal modules (and share compiled code in staged extraction).
    """

    hidden_size: int
    layer: LayerConfig
    layer_norm_eps: float = 1e-12
    conv_head_ratio: int = 2
    # train mode only (see `FlexiBertConfig.dropout`): the dropout and this layer's index, which
    # keys its masks; both stay at their defaults in eval mode, so equal layers stay equal modules
    dropout: Optional[TrainDropout] = None
    index: int = 0

    def _dropper(self, site: int, attention: bool = False):
        """x -> x with this layer's dropout at `site` (None in eval mode)."""
        d = self.dropout
        if d is None:
            return None
        rate = d.attention if attention else d.hidden
        return lambda x: d.apply(x, rate, self.index + 1, site)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        hidden, eps, lc = self.hidden_size, self.layer_norm_eps, self.layer
        if lc.operation_type == "SA":
            mixed = SelfAttention(hidden, lc.num_operation_heads,
                                  weighted=lc.operation_parameter == "WMA", name="operation")(
                x, self._dropper(1, attention=True))
            mixed = ResidualOutput(hidden, eps, name="operation_output")(mixed, x, self._dropper(2))
        elif lc.operation_type == "DSC":
            mixed = DynamicConvolution(hidden, lc.num_operation_heads, int(lc.operation_parameter),
                                       self.conv_head_ratio, name="operation")(
                x, self._dropper(1, attention=True))
            mixed = ResidualOutput(hidden, eps, name="operation_output")(mixed, x, self._dropper(2))
        elif lc.operation_type == "LT":
            mixed = LinearTransform(hidden, lc.num_operation_heads, str(lc.operation_parameter),
                                    name="operation")(x)
        else:
            raise ValueError(f"unknown operation_type {lc.operation_type!r}")
        h = FeedForward(lc.feed_forward_dimension, lc.num_feed_forward, name="intermediate")(mixed)
        return ResidualOutput(hidden, eps, name="output")(h, mixed, self._dropper(3))


def _embedding_init(pad_row: Optional[int]):
    def init(key, shape, dtype=jnp.float32):
        table = INIT_STD * jax.random.normal(key, shape, dtype)
        return table if pad_row is None else table.at[pad_row].set(0.0)

    return init


class FlexiBert(nn.Module):
    """The encoder (HF `ElectraModel` equivalent, no head). Methods:

    embed(input_ids) -> word embeddings [B, S, 128]: the input the Jacobian J is taken against.
    __call__(word_embeds, token_type_ids=None) -> last hidden states [B, S, hidden_size].
    proxy_loss(word_embeds, batch) -> the scalar loss behind G and J:
      "tied_lm" (default): token cross-entropy at the positions `batch["lm_positions"]` [B, M]
        through a parameter-free decoder tied to the input side (transposed embeddings_project,
        then the transposed word embedding table), as BERT/ELECTRA tie their MLM decoder.
      "sum_output": sum of the last hidden states, the reference's
        `output.backward(ones_like(output))`. Beware: the final LayerNorm makes this sum
        independent of its input (sum_i of a normalised vector is 0), so every weight gradient is
        floating-point noise (~1e-9, measured against the PyTorch reference); kept only to
        reproduce the reference.
    """

    config: FlexiBertConfig

    def setup(self):
        c = self.config
        self.word_embeddings = nn.Embed(c.vocab_size, c.embedding_size,
                                        embedding_init=_embedding_init(c.pad_token_id))
        self.position_embeddings = nn.Embed(c.max_position_embeddings, c.embedding_size,
                                            embedding_init=_embedding_init(None))
        self.token_type_embeddings = nn.Embed(c.type_vocab_size, c.embedding_size,
                                              embedding_init=_embedding_init(None))
        self.embeddings_norm = nn.LayerNorm(epsilon=c.layer_norm_eps)
        self.embeddings_project = (_dense(c.hidden_size, "embeddings_project")
                                   if c.embedding_size != c.hidden_size else None)
        self.layers = [EncoderLayer(c.hidden_size, lc, c.layer_norm_eps, c.conv_head_ratio,
                                    dropout=c.dropout, index=i if c.dropout is not None else 0,
                                    name=f"layer_{i}") for i, lc in enumerate(c.layers)]

    def embed(self, input_ids: jax.Array) -> jax.Array:
        return self.word_embeddings(input_ids)

    def prelude(self, word_embeds: jax.Array, token_type_ids: Optional[jax.Array] = None) -> jax.Array:
        """Word embeddings -> input of layer 0 (+ position and type embeddings, norm, projection)."""
        b, s, _ = word_embeds.shape
        if token_type_ids is None:
            token_type_ids = jnp.zeros((b, s), jnp.int32)
        x = (word_embeds + self.token_type_embeddings(token_type_ids)
             + self.position_embeddings(jnp.arange(s))[None])
        x = self.embeddings_norm(x)
        c = self.config
        if c.dropout is not None:  # train mode: ElectraEmbeddings' dropout after the LayerNorm
            x = c.dropout.apply(x, c.dropout.hidden, 0, 0)
        if self.embeddings_project is not None:
            x = self.embeddings_project(x)
        return x

    def __call__(self, word_embeds: jax.Array, token_type_ids: Optional[jax.Array] = None) -> jax.Array:
        x = self.prelude(word_embeds, token_type_ids)
        for layer in self.layers:
            x = layer(x)
        return x

    def proxy_loss(self, word_embeds: jax.Array, batch: dict) -> jax.Array:
        return self.head_loss(self(word_embeds, batch.get("token_type_ids")), batch)

    def head_loss(self, hidden: jax.Array, batch: dict) -> jax.Array:
        """The proxy loss from the last hidden states (see the class docstring)."""
        if self.config.proxy_loss == "sum_output":
            return jnp.sum(hidden)
        if self.config.proxy_loss != "tied_lm":
            raise ValueError(f"unknown proxy_loss {self.config.proxy_loss!r}")
        positions = batch["lm_positions"]
        h = jnp.take_along_axis(hidden, positions[..., None], axis=1)  # [B, M, hidden]
        if self.embeddings_project is not None:
            h = h @ self.embeddings_project.variables["params"]["kernel"].T  # back to 128
        labels = jnp.take_along_axis(batch["input_ids"], positions, axis=1)
        # logits = h @ word embeddings.T, [B, M, vocab]: never materialised whole (`row_nll`)
        return jnp.mean(row_nll(h.reshape(-1, h.shape[-1]), self.word_embeddings.embedding, None,
                                labels.reshape(-1)))

    def init_all(self, input_ids: jax.Array):
        """Touches every submodule (for `init`): embed + forward."""
        return self(self.embed(input_ids))
