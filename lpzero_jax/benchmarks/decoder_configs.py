"""Decoder architectures as LitGPT and Hugging Face describe them -> the `decoder` family's fields.

An own-benchmark line of the `decoder` family (benchmarks/own.py) holds one of:
- a LitGPT-style config: the fields of LitGPT's `Config` (litgpt/config.py) with LitGPT's defaults
  and semantics (padded_vocab_size = vocab_size rounded up to padding_multiple, head_size =
  n_embd // n_head, n_query_groups = n_head, intermediate_size = 4 n_embd for GptNeoxMLP);
  n_head, n_query_groups and intermediate_size may be per-layer lists; three fields LitGPT lacks:
  learned_positions (a GPT-2 position table), tie_embeddings (LM head = token table) and
  sliding_window_size (LitGPT's name; here it bounds the sequence length, see below);
- a Hugging Face `config.json` dict (it has "model_type"): gpt2, gpt_neox, llama, mistral, qwen2,
  phi3, mapped field by field (`HF_READERS`); fields that change no parameter and no eval-mode
  output (dropouts, token ids, initializer_range, ...) are accepted and ignored (`HF_IGNORED`).
Every other field is refused by name, and so is a value the decoder cannot build (e.g. rope
scaling, MoE, QK norms, logit soft-capping): the error says which field and what is supported.
A sliding window (mistral / qwen2 / phi3, LitGPT sliding_window_size) changes nothing on sequences
up to its width, so it is kept as a limit on `seq_len` rather than refused.

`decoder_fields` returns the family's Arch config: a plain JSON-able dict of CANONICAL fields with
per-layer lists; `decoder_config` builds the model's `DecoderConfig` from it.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional

from lpzero_jax.benchmarks.base import BenchmarkFormatError
from lpzero_jax.models.decoder import (GELU_APPROXIMATE, MLP_CLASSES, NORM_CLASSES, BlockStyle,
                                       DecoderConfig, DecoderLayer)

PER_LAYER = ("n_head", "n_query_groups", "intermediate_size")

# LitGPT Config fields read, with LitGPT's defaults (n_embd and n_head have no default here: a line
# must say how wide its model is)
LITGPT_DEFAULTS: Dict[str, Any] = {
    "block_size": 4096, "n_layer": None, "vocab_size": 50254, "padding_multiple": 512,
    "padded_vocab_size": None, "norm_class_name": "LayerNorm", "norm_eps": 1e-5,
    "parallel_residual": True, "shared_attention_norm": False, "head_size": None,
    "n_query_groups": None, "attn_bias": False, "rope_base": 10000, "rotary_percentage": 0.25,
    "intermediate_size": None, "bias": True, "mlp_class_name": "GptNeoxMLP",
    "gelu_approximate": "none", "scale_embeddings": False, "lm_head_bias": False,
    "sliding_window_size": None,
    # not LitGPT fields (see the module docstring)
    "learned_positions": False, "tie_embeddings": False,
}
LITGPT_REQUIRED = ("n_embd", "n_head")
# LitGPT fields accepted only at the value that builds no extra module (their LitGPT defaults)
LITGPT_FIXED: Dict[str, Any] = {
    "norm_qk": False, "norm_qk_type": "default", "post_attention_norm": False,
    "post_mlp_norm": False, "attention_scores_scalar": None, "sliding_window_indices": None,
    "attention_logit_softcapping": None, "rope_condense_ratio": 1, "rope_adjustments": None,
    "moe_intermediate_size": None, "n_expert": 0, "n_expert_per_token": 0,
    "final_logit_softcapping": None, "norm_1": True, "norm_2": True, "latent_attention": None,
    "rope_local_base_freq": None, "rope_indices": None, "first_k_dense_replace": None,
}
LITGPT_IGNORED = ("name", "hf_config")  # labels only

CANONICAL = ("n_embd", "n_layer", "n_head", "n_query_groups", "intermediate_size", "head_size",
             "vocab_size", "padded_vocab_size", "block_size", "bias", "attn_bias", "lm_head_bias",
             "rotary_percentage", "rope_base", "learned_positions", "scale_embeddings",
             "norm_class_name", "norm_eps", "mlp_class_name", "gelu_approximate",
             "parallel_residual", "shared_attention_norm", "tie_embeddings", "sliding_window_size")


def find_multiple(n: int, k: int) -> int:
    """n rounded up to a multiple of k (LitGPT's padded vocabulary)."""
    return n if n % k == 0 else n + k - n % k


def decoder_fields(raw: Any, where: str) -> Dict[str, Any]:
    """An own-benchmark line's config (LitGPT-style, or a HF config.json dict with model_type) ->
    the canonical fields; BenchmarkFormatError naming `where` and the field otherwise."""
    if not isinstance(raw, Mapping):
        raise BenchmarkFormatError(f"{where}: config must be a JSON object, got {type(raw).__name__}")
    if "model_type" in raw:
        reader = HF_READERS.get(raw["model_type"])
        if reader is None:
            raise BenchmarkFormatError(f"{where}: model_type {raw['model_type']!r} is not read; "
                                       f"supported: {sorted(HF_READERS)} (or a LitGPT-style config)")
        raw = reader(_Fields(raw, where + f" ({raw['model_type']} config.json)"))
    return _litgpt(raw, where)


def _litgpt(raw: Mapping[str, Any], where: str) -> Dict[str, Any]:
    known = set(LITGPT_DEFAULTS) | set(LITGPT_REQUIRED) | set(LITGPT_FIXED) | set(LITGPT_IGNORED)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise BenchmarkFormatError(f"{where}: unknown config field(s) {unknown}; known (LitGPT "
                                   f"Config names): {sorted(known)}")
    missing = [k for k in LITGPT_REQUIRED if k not in raw]
    if missing:
        raise BenchmarkFormatError(f"{where}: config misses {missing}")
    for key, value in LITGPT_FIXED.items():
        if key in raw and raw[key] != value:
            raise BenchmarkFormatError(f"{where}: {key}={raw[key]!r} is not supported by the "
                                       f"decoder family (only {value!r})")
    d = dict(LITGPT_DEFAULTS, **{k: v for k, v in raw.items() if k not in LITGPT_IGNORED
                                 and k not in LITGPT_FIXED})
    n_layer = _n_layer(d, where)
    e = _int(d["n_embd"], "n_embd", where)
    heads = _per_layer(d["n_head"], n_layer, "n_head", where)
    groups = heads if d["n_query_groups"] is None else \
        _per_layer(d["n_query_groups"], n_layer, "n_query_groups", where)
    if d["mlp_class_name"] not in MLP_CLASSES:
        raise BenchmarkFormatError(f"{where}: mlp_class_name {d['mlp_class_name']!r} is not "
                                   f"supported; expected one of {list(MLP_CLASSES)}")
    if d["intermediate_size"] is None:
        if d["mlp_class_name"] == "LLaMAMLP":
            raise BenchmarkFormatError(f"{where}: a LLaMAMLP config must give intermediate_size")
        widths = [4 * e] * n_layer
    else:
        widths = _per_layer(d["intermediate_size"], n_layer, "intermediate_size", where)
    vocab = _int(d["vocab_size"], "vocab_size", where)
    padded = (find_multiple(vocab, _int(d["padding_multiple"], "padding_multiple", where))
              if d["padded_vocab_size"] is None else _int(d["padded_vocab_size"], "padded_vocab_size", where))
    out = {
        "n_embd": e, "n_layer": n_layer, "n_head": heads, "n_query_groups": groups,
        "intermediate_size": widths,
        "head_size": None if d["head_size"] is None else _int(d["head_size"], "head_size", where),
        "vocab_size": min(vocab, padded), "padded_vocab_size": padded,
        "block_size": _int(d["block_size"], "block_size", where),
        "rotary_percentage": _number(d["rotary_percentage"], "rotary_percentage", where),
        "rope_base": _number(d["rope_base"], "rope_base", where),
        "norm_eps": _number(d["norm_eps"], "norm_eps", where),
        "norm_class_name": _choice(d["norm_class_name"], NORM_CLASSES, "norm_class_name", where),
        "mlp_class_name": d["mlp_class_name"],
        "gelu_approximate": _choice(d["gelu_approximate"], GELU_APPROXIMATE, "gelu_approximate", where),
        "sliding_window_size": None if d["sliding_window_size"] is None else
        _int(d["sliding_window_size"], "sliding_window_size", where),
    }
    for key in ("bias", "attn_bias", "lm_head_bias", "learned_positions", "scale_embeddings",
                "parallel_residual", "shared_attention_norm", "tie_embeddings"):
        if not isinstance(d[key], bool):
            raise BenchmarkFormatError(f"{where}: {key} must be true or false, got {d[key]!r}")
        out[key] = d[key]
    try:
        decoder_config(out)
    except ValueError as err:
        raise BenchmarkFormatError(f"{where}: {err}") from None
    return {k: out[k] for k in CANONICAL}


def lts_gpt2_fields(gpt2: Mapping[str, Any], where: str = "gpt2") -> Dict[str, Any]:
    """The decoder fields of a plain-embedding GPT-2 of the gpt2 family (an own-format gpt2 line's
    config as `benchmarks.own.parse_gpt2_config` returns it: div_val 1, d_embed = d_model): LTS's
    model is a decoder with a tied table scaled by sqrt(d_model) (scale_embeddings), learned
    positions, a per-token output bias (lm_head_bias), tanh GELU and GPT-2's block order."""
    if gpt2["div_val"] != 1 or gpt2["d_embed"] != gpt2["d_model"] or len(gpt2["cutoffs"]) != 1 \
            or not gpt2["tie_weight"]:
        raise BenchmarkFormatError(f"{where}: an adaptive embedding / softmax (div_val, d_embed, "
                                   "cutoffs) or an untied output table (LTS names it lm_head/weight) "
                                   "is not a decoder setting; only plain tied GPT-2s are")
    return decoder_fields({
        "n_embd": gpt2["d_model"], "n_head": list(gpt2["n_head"]),
        "intermediate_size": list(gpt2["d_inner"]), "vocab_size": gpt2["n_token"],
        "padded_vocab_size": gpt2["n_token"], "block_size": gpt2["tgt_len"], "bias": True,
        "lm_head_bias": True, "rotary_percentage": 0.0, "learned_positions": True,
        "scale_embeddings": True, "norm_class_name": "LayerNorm", "norm_eps": 1e-5,
        "mlp_class_name": "GptNeoxMLP", "gelu_approximate": "tanh", "parallel_residual": False,
        "tie_embeddings": True}, where)


def llama_fields(llama: Mapping[str, Any], where: str = "llama",
                 block_size: int = 4096) -> Dict[str, Any]:
    """The decoder fields of a llama-family architecture (a `LlamaConfig.to_dict()`, e.g. a LoNAS
    subnet with per-layer widths and heads) without LoRA adapters (the decoder has none); the llama
    family has no position limit, so block_size is set here."""
    layers = llama["layers"]
    if any(layer.get("attn_lora_rank", 0) or layer.get("ffn_lora_rank", 0) for layer in layers):
        raise BenchmarkFormatError(f"{where}: LoRA adapters (attn/ffn_lora_rank > 0) are not decoder "
                                   "fields; the decoder's count is the llama family's minus 'Adapters'")
    return decoder_fields({
        "n_embd": llama["hidden_size"], "n_head": [layer["num_heads"] for layer in layers],
        "n_query_groups": [layer["num_kv_heads"] for layer in layers],
        "intermediate_size": [layer["intermediate_size"] for layer in layers],
        "head_size": llama.get("head_dim"), "vocab_size": llama["vocab_size"],
        "padded_vocab_size": llama["vocab_size"], "block_size": block_size, "bias": False,
        "rotary_percentage": 1.0, "rope_base": llama.get("rope_theta", 10000.0),
        "norm_class_name": "RMSNorm", "norm_eps": llama.get("rms_norm_eps", 1e-6),
        "mlp_class_name": "LLaMAMLP", "parallel_residual": False,
        "tie_embeddings": bool(llama.get("tie_word_embeddings", False))}, where)


def decoder_config(fields: Mapping[str, Any], init_std: float = 0.02) -> DecoderConfig:
    """The model config of canonical fields (`decoder_fields`)."""
    style = BlockStyle(
        n_embd=fields["n_embd"], bias=fields["bias"], attn_bias=fields["attn_bias"],
        rotary_percentage=float(fields["rotary_percentage"]), rope_base=float(fields["rope_base"]),
        norm_class_name=fields["norm_class_name"], norm_eps=float(fields["norm_eps"]),
        mlp_class_name=fields["mlp_class_name"], gelu_approximate=fields["gelu_approximate"],
        parallel_residual=fields["parallel_residual"],
        shared_attention_norm=fields["shared_attention_norm"])
    layers = tuple(DecoderLayer(h, g, i) for h, g, i in zip(
        fields["n_head"], fields["n_query_groups"], fields["intermediate_size"]))
    return DecoderConfig(style=style, layers=layers, padded_vocab_size=fields["padded_vocab_size"],
                         block_size=fields["block_size"], head_size=fields["head_size"],
                         lm_head_bias=fields["lm_head_bias"],
                         learned_positions=fields["learned_positions"],
                         scale_embeddings=fields["scale_embeddings"],
                         tie_embeddings=fields["tie_embeddings"], init_std=init_std,
                         sliding_window_size=fields.get("sliding_window_size"))


def _n_layer(d: Mapping[str, Any], where: str) -> int:
    lists = [len(d[k]) for k in PER_LAYER if isinstance(d.get(k), list)]
    if d.get("n_layer") is None:
        if not lists:
            raise BenchmarkFormatError(f"{where}: give n_layer, or n_head / n_query_groups / "
                                       "intermediate_size as per-layer lists")
        return lists[0]
    return _int(d["n_layer"], "n_layer", where)


def _per_layer(value: Any, n_layer: int, key: str, where: str) -> List[int]:
    if isinstance(value, list):
        if len(value) != n_layer:
            raise BenchmarkFormatError(f"{where}: {key} has {len(value)} entries for {n_layer} layers")
        return [_int(v, f"{key}[{i}]", where) for i, v in enumerate(value)]
    return [_int(value, key, where)] * n_layer


def _int(value: Any, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BenchmarkFormatError(f"{where}: {key} must be an integer >= 1, got {value!r}")
    return value


def _number(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BenchmarkFormatError(f"{where}: {key} must be a number, got {value!r}")
    return float(value)


def _choice(value: Any, allowed, key: str, where: str) -> str:
    if value not in allowed:
        raise BenchmarkFormatError(f"{where}: {key} {value!r} is not supported; expected one of "
                                   f"{list(allowed)}")
    return value


# ------------------------------------------------------------------------------------------------
# Hugging Face config.json dicts

# present in every PretrainedConfig dict, or training / generation / numerics-only settings:
# no parameter and no eval-mode output depends on them
HF_IGNORED = frozenset((
    "_name_or_path", "architectures", "model_type", "transformers_version", "torch_dtype", "dtype",
    "use_cache", "bos_token_id", "eos_token_id", "pad_token_id", "id2label", "label2id",
    "problem_type", "output_attentions", "output_hidden_states", "return_dict",
    "chunk_size_feed_forward", "is_encoder_decoder", "is_decoder", "tokenizer_class",
    "initializer_range", "attention_dropout", "hidden_dropout", "classifier_dropout",
    "embd_pdrop", "resid_pdrop", "attn_pdrop", "summary_type", "summary_use_proj",
    "summary_activation", "summary_proj_to_labels", "summary_first_dropout",
    "task_specific_params", "n_ctx", "reorder_and_upcast_attn", "pretraining_tp",
    "original_max_position_embeddings", "max_window_layers", "use_sliding_window", "layer_types",
    "is_llama_config",
))


class _Fields:
    """A config.json dict read field by field: `get` marks a field as read; `done` refuses the
    fields neither read nor ignored."""

    def __init__(self, raw: Mapping[str, Any], where: str):
        self.raw, self.where, self.read = dict(raw), where, set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        value = self.raw.get(key, default)
        return default if value is None else value

    def require(self, key: str) -> Any:
        if self.raw.get(key) is None:
            raise BenchmarkFormatError(f"{self.where}: missing field {key!r}")
        return self.get(key)

    def only(self, key: str, allowed, default: Any) -> Any:
        value = self.get(key, default)
        if value not in allowed:
            raise BenchmarkFormatError(f"{self.where}: {key}={value!r} is not supported; the "
                                       f"decoder builds {list(allowed)}")
        return value

    def fail(self, message: str):
        raise BenchmarkFormatError(f"{self.where}: {message}")

    def done(self, fields: Dict[str, Any]) -> Dict[str, Any]:
        unknown = sorted(set(self.raw) - self.read - HF_IGNORED)
        if unknown:
            self.fail(f"unknown config field(s) {unknown}: not mapped to the decoder (fields it "
                      f"reads: {sorted(self.read)})")
        return fields

    def rope(self, theta_key: Optional[str], default_theta: float, fraction_key: Optional[str],
             default_fraction: float) -> Dict[str, float]:
        """rotary_percentage and rope_base from the type's own keys, or transformers 5's
        `rope_parameters`; rope scaling other than none/default is refused."""
        params = dict(self.get("rope_parameters", {}) or {})
        scaling = self.get("rope_scaling")
        for spec in (params, scaling or {}):
            kind = spec.get("rope_type", spec.get("type", "default"))
            if kind != "default":
                self.fail(f"rope scaling {kind!r} is not supported (only the default rotary)")
        theta = params.get("rope_theta", self.get(theta_key, default_theta) if theta_key else default_theta)
        fraction = params.get("partial_rotary_factor",
                              self.get(fraction_key, default_fraction) if fraction_key else default_fraction)
        return {"rope_base": theta, "rotary_percentage": fraction}

    def window(self, used: bool = True) -> Dict[str, Any]:
        """sliding_window as a sequence-length bound (None: no window); used: the type's default
        of use_sliding_window (Qwen2: false)."""
        use = self.get("use_sliding_window", used)
        width = self.get("sliding_window")
        types = self.get("layer_types") or []
        if any(t not in ("full_attention", "sliding_attention") for t in types):
            self.fail(f"layer_types {sorted(set(types))}: only full and sliding attention are read")
        return {"sliding_window_size": width if use and width else None}


_GELU = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu_fast": "tanh"}


def _gelu(f: _Fields, key: str, default: str) -> str:
    act = f.get(key, default)
    if act not in _GELU:
        f.fail(f"{key}={act!r} is not supported; GELU variants read: {sorted(_GELU)}")
    return _GELU[act]


def _hf_gpt2(f: _Fields) -> Dict[str, Any]:
    e = f.require("n_embd")
    f.only("scale_attn_weights", (True,), True)
    f.only("scale_attn_by_inverse_layer_idx", (False,), False)
    f.only("add_cross_attention", (False,), False)
    vocab = f.require("vocab_size")
    return f.done({
        "n_embd": e, "n_layer": f.require("n_layer"), "n_head": f.require("n_head"),
        "intermediate_size": f.get("n_inner", 4 * e), "vocab_size": vocab,
        "padded_vocab_size": vocab, "block_size": f.get("n_positions", 1024),
        "learned_positions": True, "rotary_percentage": 0.0,
        "gelu_approximate": _gelu(f, "activation_function", "gelu_new"),
        "norm_eps": f.get("layer_norm_epsilon", 1e-5), "norm_class_name": "LayerNorm",
        "mlp_class_name": "GptNeoxMLP", "parallel_residual": False, "bias": True,
        "tie_embeddings": f.get("tie_word_embeddings", True)})


def _hf_gpt_neox(f: _Fields) -> Dict[str, Any]:
    # GPT-NeoX's attention_bias covers qkv and dense only, its MLP always has biases: only the
    # default (true) is LitGPT's bias=True
    f.only("attention_bias", (True,), True)
    vocab = f.require("vocab_size")
    return f.done(dict(
        n_embd=f.require("hidden_size"), n_layer=f.require("num_hidden_layers"),
        n_head=f.require("num_attention_heads"), intermediate_size=f.require("intermediate_size"),
        vocab_size=vocab, padded_vocab_size=vocab,
        block_size=f.get("max_position_embeddings", 2048),
        gelu_approximate=_gelu(f, "hidden_act", "gelu"), norm_eps=f.get("layer_norm_eps", 1e-5),
        norm_class_name="LayerNorm", mlp_class_name="GptNeoxMLP",
        parallel_residual=f.get("use_parallel_residual", True), bias=True,
        tie_embeddings=f.get("tie_word_embeddings", False),
        **f.rope("rotary_emb_base", 10000.0, "rotary_pct", 0.25)))


def _hf_llama_like(f: _Fields, bias: bool, attn_bias: bool, eps: float,
                   fraction_key: Optional[str] = None) -> Dict[str, Any]:
    f.only("hidden_act", ("silu",), "silu")
    vocab = f.require("vocab_size")
    heads = f.require("num_attention_heads")
    return dict(
        n_embd=f.require("hidden_size"), n_layer=f.require("num_hidden_layers"), n_head=heads,
        n_query_groups=f.get("num_key_value_heads", heads),
        intermediate_size=f.require("intermediate_size"), head_size=f.get("head_dim"),
        vocab_size=vocab, padded_vocab_size=vocab,
        block_size=f.get("max_position_embeddings", 2048), norm_eps=f.get("rms_norm_eps", eps),
        norm_class_name="RMSNorm", mlp_class_name="LLaMAMLP", parallel_residual=False,
        bias=bias, attn_bias=attn_bias, tie_embeddings=f.get("tie_word_embeddings", False),
        **f.rope("rope_theta", 10000.0, fraction_key, 1.0))


def _hf_llama(f: _Fields) -> Dict[str, Any]:
    # HF LLaMA's attention_bias puts biases on q, k, v AND o; mlp_bias on the three MLP matrices:
    # LitGPT's bias covers both, so they must agree
    f.only("rope_interleaved", (False,), False)  # SmolLM2's flag: HF's rotate-half layout
    attention, mlp = f.get("attention_bias", False), f.get("mlp_bias", False)
    if attention != mlp:
        f.fail(f"attention_bias={attention} with mlp_bias={mlp} is not a LitGPT layout (its "
               "`bias` covers both); set them equal")
    return f.done(_hf_llama_like(f, bias=bool(attention), attn_bias=False, eps=1e-6))


def _hf_mistral(f: _Fields) -> Dict[str, Any]:
    return f.done(dict(_hf_llama_like(f, bias=False, attn_bias=False, eps=1e-6), **f.window()))


def _hf_qwen2(f: _Fields) -> Dict[str, Any]:
    # Qwen2: biases on q, k, v only (LitGPT attn_bias)
    return f.done(dict(_hf_llama_like(f, bias=False, attn_bias=True, eps=1e-6),
                       **f.window(used=False)))


def _hf_phi3(f: _Fields) -> Dict[str, Any]:
    # Phi-3 fuses qkv_proj and gate_up_proj: the same parameters as separate matrices
    return f.done(dict(_hf_llama_like(f, bias=False, attn_bias=False, eps=1e-5,
                                      fraction_key="partial_rotary_factor"), **f.window()))


HF_READERS: Dict[str, Callable[[_Fields], Dict[str, Any]]] = {
    "gpt2": _hf_gpt2, "gpt_neox": _hf_gpt_neox, "llama": _hf_llama, "mistral": _hf_mistral,
    "qwen2": _hf_qwen2, "phi3": _hf_phi3,
}
