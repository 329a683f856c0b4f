"""A plain NumPy LLaMA forward on HF-named weights ([out, in] matrices), written from the HF
modeling_llama equations independently of the Flax model: the reference the tests compare with."""

import numpy as np


def rms_norm(x, w, eps):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def rope(x, theta):
    """x [heads, S, d] -> rotated; HF rotate_half layout."""
    _, s, d = x.shape
    inv = 1.0 / theta ** (np.arange(0, d, 2) / d)
    ang = np.arange(s)[:, None] * inv[None]
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
    rot = np.concatenate([-x[..., d // 2:], x[..., :d // 2]], -1)
    return x * cos + rot * sin


def silu(x):
    return x / (1 + np.exp(-x))


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def linear(w, x, name, scaling):
    y = x @ w[name + ".weight"].T
    if name + ".lora_A.weight" in w:
        y = y + scaling * (x @ w[name + ".lora_A.weight"].T) @ w[name + ".lora_B.weight"].T
    return y


def llama_logits(w, ids, n_layers, heads, kv_heads, eps=1e-6, theta=10000.0, tied=False, scaling=2.0):
    """ids [S] -> logits [S, V] for ONE sequence (float64)."""
    w = {k: np.asarray(v, np.float64) for k, v in w.items()}
    x = w["model.embed_tokens.weight"][ids]
    s = len(ids)
    for i in range(n_layers):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = linear(w, h, p + "self_attn.q_proj", scaling)
        k = linear(w, h, p + "self_attn.k_proj", scaling)
        v = linear(w, h, p + "self_attn.v_proj", scaling)
        d = q.shape[-1] // heads
        q = rope(q.reshape(s, heads, d).transpose(1, 0, 2), theta)
        k = rope(k.reshape(s, kv_heads, d).transpose(1, 0, 2), theta)
        v = v.reshape(s, kv_heads, d).transpose(1, 0, 2)
        out = np.zeros((heads, s, d))
        mask = np.tril(np.ones((s, s), bool))
        for hd in range(heads):
            kv = hd // (heads // kv_heads)
            sc = q[hd] @ k[kv].T / np.sqrt(d)
            sc = np.where(mask, sc, -np.inf)
            out[hd] = softmax(sc) @ v[kv]
        x = x + out.transpose(1, 0, 2).reshape(s, heads * d) @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        act = silu(linear(w, h, p + "mlp.gate_proj", scaling)) * linear(w, h, p + "mlp.up_proj", scaling)
        x = x + act @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if tied else w["lm_head.weight"]
    return x @ head.T


def random_hf_weights(rng, vocab, hidden, inter, n_layers, heads, kv_heads, rank=0, tied=False,
                      std=0.1):
    """Random HF-named float32 weights (norm weights around 1, LoRA B non-zero)."""
    d = hidden // heads
    w = {"model.embed_tokens.weight": rng.normal(0, std, (vocab, hidden)),
         "model.norm.weight": 1 + rng.normal(0, 0.1, hidden)}
    if not tied:
        w["lm_head.weight"] = rng.normal(0, std, (vocab, hidden))
    shapes = {"self_attn.q_proj": (heads * d, hidden), "self_attn.k_proj": (kv_heads * d, hidden),
              "self_attn.v_proj": (kv_heads * d, hidden), "self_attn.o_proj": (hidden, heads * d),
              "mlp.gate_proj": (inter, hidden), "mlp.up_proj": (inter, hidden),
              "mlp.down_proj": (hidden, inter)}
    lora = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj", "mlp.up_proj")
    for i in range(n_layers):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = 1 + rng.normal(0, 0.1, hidden)
        w[p + "post_attention_layernorm.weight"] = 1 + rng.normal(0, 0.1, hidden)
        for name, shape in shapes.items():
            w[p + name + ".weight"] = rng.normal(0, std, shape)
            if rank and name in lora:
                w[p + name + ".lora_A.weight"] = rng.normal(0, std, (rank, shape[1]))
                w[p + name + ".lora_B.weight"] = rng.normal(0, std, (shape[0], rank))
    return {k: np.asarray(v, np.float32) for k, v in w.items()}
