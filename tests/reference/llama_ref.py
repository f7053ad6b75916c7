#!/usr/bin/python3
"""Independent numpy reference for the LLaMA-family forward pass (Hugging Face `transformers` semantics).

This file must never call or share code with the tandem engine: it is the yardstick the engine is
measured against. It depends on numpy only (run it with /usr/bin/python3).

Covers LlamaForCausalLM, MistralForCausalLM and Qwen2ForCausalLM checkpoints in the HF layout:
config.json plus model.safetensors, or shards listed in model.safetensors.index.json. Weights may be
F32, F16, BF16 (or F64); they are converted exactly to float64 and every activation is float64.

Semantics, as in transformers' modeling_llama.py / modeling_mistral.py / modeling_qwen2.py:
  h = embed_tokens[ids]
  per layer:
    x = RMSNorm(h) * w_in                      RMSNorm(x) = x / sqrt(mean(x^2) + eps)
    q, k, v = x Wq^T (+bq), x Wk^T (+bk), x Wv^T (+bv)      biases used when present in the checkpoint
    q, k = RoPE(q), RoPE(k)                    rotate_half convention, cos/sin of pos * inv_freq, twice
    kv heads repeated to the q heads (q head h reads kv head h // (heads / kv_heads))
    attn = softmax(q k^T / sqrt(head_dim) + causal mask) v     (+ Mistral sliding window if set)
    h = h + attn Wo^T (+bo)
    x = RMSNorm(h) * w_post
    h = h + Wdown (silu(Wgate x) * Wup x)
  logits = RMSNorm(h) * w_norm  @ lm_head^T    (embed_tokens when tie_word_embeddings)
"""

import json
import math
import os
import struct

import numpy as np

# ----------------------------------------------------------------------------------------------
# safetensors reading
# ----------------------------------------------------------------------------------------------

_DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}


def _decode(dtype, raw, shape):
    if dtype == "F64":
        arr = np.frombuffer(raw, dtype="<f8").astype(np.float64)
    elif dtype == "F32":
        arr = np.frombuffer(raw, dtype="<f4").astype(np.float64)
    elif dtype == "F16":
        arr = np.frombuffer(raw, dtype="<f2").astype(np.float64)
    elif dtype == "BF16":
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << np.uint32(16)
        arr = bits.view(np.float32).astype(np.float64)
    else:
        raise ValueError("unsupported safetensors dtype %r" % dtype)
    return arr.reshape(shape)


def read_safetensors(path):
    """Returns ({name: float64 ndarray}, {name: dtype string}) for one .safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("%s: too short for a safetensors file" % path)
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError("%s: header length %d past end of file" % (path, n))
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    tensors, dtypes = {}, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape = info["dtype"], list(info["shape"])
        b, e = info["data_offsets"]
        count = int(np.prod(shape)) if shape else 1
        if e - b != count * _DTYPE_SIZES[dtype]:
            raise ValueError("%s: %s: offsets [%d,%d] disagree with shape %s" % (path, name, b, e, shape))
        if base + e > len(data):
            raise ValueError("%s: %s: data past end of file" % (path, name))
        tensors[name] = _decode(dtype, data[base + b:base + e], shape)
        dtypes[name] = dtype
    return tensors, dtypes


def read_checkpoint_tensors(model_dir):
    """All tensors of a checkpoint dir (single file or sharded), as float64."""
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(index_path):
        with open(index_path) as f:
            weight_map = json.load(f)["weight_map"]
        tensors = {}
        for shard in sorted(set(weight_map.values())):
            t, _ = read_safetensors(os.path.join(model_dir, shard))
            for name in t:
                if weight_map.get(name) != shard:
                    raise ValueError("%s: tensor %s not mapped to this shard in the index" % (shard, name))
            tensors.update(t)
        missing = [n for n in weight_map if n not in tensors]
        if missing:
            raise ValueError("index lists tensors absent from the shards: %s" % missing[:5])
        return tensors
    if os.path.exists(single):
        return read_safetensors(single)[0]
    raise FileNotFoundError("%s: neither model.safetensors nor model.safetensors.index.json" % model_dir)


# ----------------------------------------------------------------------------------------------
# numerics
# ----------------------------------------------------------------------------------------------


def rms_norm(x, weight, eps):
    """HF LlamaRMSNorm: x * rsqrt(mean(x^2, -1) + eps) * weight."""
    var = np.mean(x * x, axis=-1, keepdims=True)
    return x / np.sqrt(var + eps) * weight


def silu(x):
    return x / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def default_inv_freq(head_dim, theta):
    """HF _compute_default_rope_parameters: 1 / theta^(arange(0, dim, 2) / dim)."""
    return 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))


def llama3_inv_freq(inv_freq, factor, low_freq_factor, high_freq_factor, old_context_len):
    """HF _compute_llama3_parameters: wavelength-based smooth interpolation of inv_freq."""
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2.0 * math.pi / inv_freq
    # wavelen < high_freq_wavelen: unchanged; wavelen > low_freq_wavelen: divided by factor.
    inv_freq_llama = np.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1.0 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium = ~(wavelen < high_freq_wavelen) & ~(wavelen > low_freq_wavelen)
    return np.where(is_medium, smoothed, inv_freq_llama)


def rope_inv_freq(config, head_dim):
    theta = float(config.get("rope_theta", 10000.0))
    inv_freq = default_inv_freq(head_dim, theta)
    scaling = config.get("rope_scaling")
    if not scaling:
        return inv_freq
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return inv_freq
    if kind == "llama3":
        return llama3_inv_freq(inv_freq, float(scaling["factor"]), float(scaling["low_freq_factor"]),
                               float(scaling["high_freq_factor"]),
                               float(scaling["original_max_position_embeddings"]))
    if kind == "linear":
        return inv_freq / float(scaling["factor"])
    raise NotImplementedError("rope_scaling type %r" % kind)


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(x, positions, inv_freq):
    """x: [..., seq, head_dim]; HF apply_rotary_pos_emb with emb = cat(freqs, freqs)."""
    freqs = np.outer(np.asarray(positions, dtype=np.float64), inv_freq)  # [seq, head_dim/2]
    emb = np.concatenate([freqs, freqs], axis=-1)
    return x * np.cos(emb) + rotate_half(x) * np.sin(emb)


# ----------------------------------------------------------------------------------------------
# the model
# ----------------------------------------------------------------------------------------------

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM")


class Model:
    def __init__(self, config, tensors):
        self.config = config
        arch = (config.get("architectures") or ["LlamaForCausalLM"])[0]
        if arch not in SUPPORTED_ARCHITECTURES:
            raise NotImplementedError("architecture %r" % arch)
        self.architecture = arch
        act = config.get("hidden_act", "silu")
        if act != "silu":
            raise NotImplementedError("hidden_act %r" % act)
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.kv_heads = int(config.get("num_key_value_heads") or self.heads)
        self.head_dim = int(config.get("head_dim") or self.hidden // self.heads)
        self.layers = int(config["num_hidden_layers"])
        self.vocab = int(config["vocab_size"])
        self.eps = float(config.get("rms_norm_eps", 1e-6))
        if self.heads % self.kv_heads:
            raise ValueError("num_attention_heads %d not a multiple of num_key_value_heads %d"
                             % (self.heads, self.kv_heads))
        self.inv_freq = rope_inv_freq(config, self.head_dim)
        # Sliding window: Mistral applies `sliding_window` when set; Qwen2 only with use_sliding_window.
        window = config.get("sliding_window")
        if arch == "Qwen2ForCausalLM" and not config.get("use_sliding_window", False):
            window = None
        self.sliding_window = int(window) if window else None

        t = tensors
        self.embed = t["model.embed_tokens.weight"]
        if config.get("tie_word_embeddings", False) or "lm_head.weight" not in t:
            if not config.get("tie_word_embeddings", False):
                raise KeyError("lm_head.weight missing and tie_word_embeddings is false")
            self.lm_head = self.embed
        else:
            self.lm_head = t["lm_head.weight"]
        self.norm = t["model.norm.weight"]
        q_size, kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        expect = {"model.embed_tokens.weight": (self.vocab, self.hidden), "model.norm.weight": (self.hidden,)}
        self.layer_w = []
        for i in range(self.layers):
            p = "model.layers.%d." % i
            lw = {
                "in_norm": t[p + "input_layernorm.weight"],
                "post_norm": t[p + "post_attention_layernorm.weight"],
                "wq": t[p + "self_attn.q_proj.weight"], "wk": t[p + "self_attn.k_proj.weight"],
                "wv": t[p + "self_attn.v_proj.weight"], "wo": t[p + "self_attn.o_proj.weight"],
                "gate": t[p + "mlp.gate_proj.weight"], "up": t[p + "mlp.up_proj.weight"],
                "down": t[p + "mlp.down_proj.weight"],
            }
            for short, name in (("bq", "self_attn.q_proj.bias"), ("bk", "self_attn.k_proj.bias"),
                                ("bv", "self_attn.v_proj.bias"), ("bo", "self_attn.o_proj.bias"),
                                ("bgate", "mlp.gate_proj.bias"), ("bup", "mlp.up_proj.bias"),
                                ("bdown", "mlp.down_proj.bias")):
                lw[short] = t.get(p + name)
            if arch == "Qwen2ForCausalLM" and lw["bq"] is None:
                raise KeyError(p + "self_attn.q_proj.bias missing (Qwen2 always has q/k/v biases)")
            expect[p + "self_attn.q_proj.weight"] = (q_size, self.hidden)
            expect[p + "self_attn.k_proj.weight"] = (kv_size, self.hidden)
            expect[p + "self_attn.v_proj.weight"] = (kv_size, self.hidden)
            expect[p + "self_attn.o_proj.weight"] = (self.hidden, q_size)
            inter = int(config["intermediate_size"])
            expect[p + "mlp.gate_proj.weight"] = (inter, self.hidden)
            expect[p + "mlp.up_proj.weight"] = (inter, self.hidden)
            expect[p + "mlp.down_proj.weight"] = (self.hidden, inter)
            self.layer_w.append(lw)
        for name, shape in expect.items():
            if tuple(t[name].shape) != shape:
                raise ValueError("%s: shape %s, config wants %s" % (name, t[name].shape, shape))
        if self.lm_head.shape != (self.vocab, self.hidden):
            raise ValueError("lm_head shape %s" % (self.lm_head.shape,))

    @staticmethod
    def _linear(x, w, b):
        y = x @ w.T
        return y if b is None else y + b

    def _attention(self, x, lw, positions):
        n = x.shape[0]
        hd, H, KV = self.head_dim, self.heads, self.kv_heads
        q = self._linear(x, lw["wq"], lw["bq"]).reshape(n, H, hd).transpose(1, 0, 2)   # [H, n, hd]
        k = self._linear(x, lw["wk"], lw["bk"]).reshape(n, KV, hd).transpose(1, 0, 2)  # [KV, n, hd]
        v = self._linear(x, lw["wv"], lw["bv"]).reshape(n, KV, hd).transpose(1, 0, 2)
        q = apply_rope(q, positions, self.inv_freq)
        k = apply_rope(k, positions, self.inv_freq)
        rep = H // KV
        k = np.repeat(k, rep, axis=0)  # HF repeat_kv: q head h uses kv head h // rep
        v = np.repeat(v, rep, axis=0)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(hd)  # [H, n, n]
        qi = np.arange(n)[:, None]
        ki = np.arange(n)[None, :]
        allowed = ki <= qi
        if self.sliding_window is not None:
            allowed &= ki > qi - self.sliding_window
        scores = np.where(allowed[None], scores, -np.inf)
        out = softmax(scores) @ v  # [H, n, hd]
        out = out.transpose(1, 0, 2).reshape(n, H * hd)
        return self._linear(out, lw["wo"], lw["bo"])

    def hidden_states(self, token_ids):
        ids = np.asarray(token_ids, dtype=np.int64)
        if ids.ndim != 1 or ids.size == 0:
            raise ValueError("token_ids must be a non-empty 1-D sequence")
        if ids.min() < 0 or ids.max() >= self.vocab:
            raise ValueError("token id out of range [0, %d)" % self.vocab)
        positions = np.arange(ids.size)
        h = self.embed[ids].copy()
        for lw in self.layer_w:
            x = rms_norm(h, lw["in_norm"], self.eps)
            h = h + self._attention(x, lw, positions)
            x = rms_norm(h, lw["post_norm"], self.eps)
            g = self._linear(x, lw["gate"], lw["bgate"])
            u = self._linear(x, lw["up"], lw["bup"])
            h = h + self._linear(silu(g) * u, lw["down"], lw["bdown"])
        return rms_norm(h, self.norm, self.eps)

    def logits(self, token_ids):
        return self.hidden_states(token_ids) @ self.lm_head.T


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    return Model(config, read_checkpoint_tensors(model_dir))


def logits_for_sequence(model, token_ids):
    """Full causal pass; returns [len(token_ids), vocab] float64 logits."""
    if isinstance(model, str):
        model = load_model(model)
    return model.logits(token_ids)


def greedy(model, prompt, n, eos_ids=None):
    """Plain greedy decoding (argmax, lowest id on exact ties) of n tokens; stops after an eos id when
    eos_ids is given."""
    if isinstance(model, str):
        model = load_model(model)
    seq = list(prompt)
    out = []
    for _ in range(n):
        tok = int(np.argmax(model.logits(seq)[-1]))
        out.append(tok)
        seq.append(tok)
        if eos_ids and tok in eos_ids:
            break
    return out


def eos_ids_of(config):
    e = config.get("eos_token_id")
    if e is None:
        return set()
    return set(e) if isinstance(e, list) else {e}


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="numpy reference greedy decode of a HF checkpoint dir")
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True, help="comma-separated prompt ids")
    ap.add_argument("--max-tokens", type=int, default=16)
    a = ap.parse_args()
    m = load_model(a.model)
    for t in greedy(m, [int(x) for x in a.tokens.split(",")], a.max_tokens):
        print(t)
