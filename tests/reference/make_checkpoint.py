#!/usr/bin/python3
"""Writes small random checkpoints in the Hugging Face layout (config.json + safetensors) for tests.

  /usr/bin/python3 tests/reference/make_checkpoint.py VARIANT OUT_DIR [--seed N]
  /usr/bin/python3 tests/reference/make_checkpoint.py --list

numpy only; the safetensors writer is written here (no safetensors / torch packages).
"""

import json
import os
import struct

import numpy as np

# ----------------------------------------------------------------------------------------------
# safetensors writing
# ----------------------------------------------------------------------------------------------

TORCH_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def f32_to_bf16_bits(x):
    """bf16 bit patterns (uint16) of x: x -> float32 -> top 16 bits with round-to-nearest-even.
    NaN stays a (quiet) NaN; overflow rounds to inf as IEEE does."""
    f = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    u = f.view(np.uint32).astype(np.uint64)
    rounded = (u + np.uint64(0x7FFF) + ((u >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16)
    out = rounded.astype(np.uint16)
    nan = np.isnan(f)
    if nan.any():
        out = np.where(nan, ((u >> np.uint64(16)) | np.uint64(0x0040)).astype(np.uint16), out)
    return out.astype(np.uint16)


def bf16_bits_to_f64(bits):
    return (np.asarray(bits, dtype=np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)


def encode(arr, dtype):
    """Raw little-endian bytes of arr stored as dtype ('F32', 'F16', 'BF16', 'F64')."""
    if dtype == "F32":
        return np.ascontiguousarray(arr, dtype="<f4").tobytes()
    if dtype == "F16":
        return np.ascontiguousarray(arr, dtype="<f2").tobytes()
    if dtype == "F64":
        return np.ascontiguousarray(arr, dtype="<f8").tobytes()
    if dtype == "BF16":
        return np.ascontiguousarray(f32_to_bf16_bits(arr), dtype="<u2").tobytes()
    raise ValueError("dtype %r" % dtype)


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, ndarray, dtype). Header padded with spaces to a multiple of 8."""
    header = {}
    blobs = []
    offset = 0
    for name, arr, dtype in tensors:
        raw = encode(arr, dtype)
        header[name] = {"dtype": dtype, "shape": list(np.shape(arr)), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = dict(metadata or {"format": "pt"})
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def write_checkpoint(out_dir, config, weights, dtype, shards=1):
    """weights: ordered dict name -> float ndarray. shards > 1 writes model-0000K-of-0000N.safetensors
    and model.safetensors.index.json, splitting the tensor list into contiguous runs."""
    os.makedirs(out_dir, exist_ok=True)
    for stale in os.listdir(out_dir):
        if stale.endswith(".safetensors") or stale == "model.safetensors.index.json":
            os.remove(os.path.join(out_dir, stale))
    config = dict(config)
    config["torch_dtype"] = TORCH_DTYPE[dtype]
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    items = [(n, w, dtype) for n, w in weights.items()]
    if shards <= 1:
        write_safetensors(os.path.join(out_dir, "model.safetensors"), items)
        return
    parts = np.array_split(np.arange(len(items)), shards)
    weight_map = {}
    total = 0
    for k, idx in enumerate(parts):
        fname = "model-%05d-of-%05d.safetensors" % (k + 1, shards)
        chunk = [items[i] for i in idx]
        write_safetensors(os.path.join(out_dir, fname), chunk)
        for n, w, d in chunk:
            weight_map[n] = fname
            total += len(encode(w, d))
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)


# ----------------------------------------------------------------------------------------------
# variants
# ----------------------------------------------------------------------------------------------

_BASE = dict(arch="LlamaForCausalLM", model_type="llama", vocab=384, hidden=64, inter=176, layers=2,
             heads=4, kv_heads=4, head_dim=None, dtype="F32", tied=False, qkv_bias=False,
             rope_theta=10000.0, rope_scaling=None, max_pos=512, eps=1e-5, shards=1, extra={})


def _v(**kw):
    d = dict(_BASE)
    d.update(kw)
    return d


VARIANTS = {
    # Plain multi-head attention, f32.
    "llama_mha": _v(),
    # Grouped-query attention (8 q heads over 2 kv heads), bf16 weights, 3 layers.
    "llama_gqa": _v(vocab=512, hidden=128, inter=320, layers=3, heads=8, kv_heads=2, dtype="BF16"),
    # head_dim 32 with hidden 64 / 4 heads: q_size 128 != hidden; also GQA (2 kv heads).
    "head_dim_override": _v(vocab=320, hidden=64, inter=160, heads=4, kv_heads=2, head_dim=32),
    # lm_head tied to embed_tokens (no lm_head.weight tensor), f16 weights.
    "tied_f16": _v(vocab=400, hidden=64, inter=192, heads=4, kv_heads=4, dtype="F16", tied=True),
    # Tensors split over 3 shard files with model.safetensors.index.json, bf16, 3 layers, GQA.
    "sharded": _v(vocab=448, hidden=96, inter=256, layers=3, heads=6, kv_heads=3, dtype="BF16", shards=3),
    # Llama 3 style: theta 500000 with llama3 rope_scaling; original context 64 so that with head_dim 32
    # the dims split into high (unchanged), medium (smoothed) and low (divided by 8) frequencies that all
    # rotate noticeably within a 61-token sequence.
    "rope500k": _v(vocab=512, hidden=128, inter=288, layers=2, heads=4, kv_heads=2, rope_theta=500000.0,
                   rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
                   max_pos=1024, eps=1e-5),
    # Qwen2: q/k/v biases (no o bias), tied embeddings, bf16, theta 1e6, eps 1e-6.
    "qwen2_bias": _v(arch="Qwen2ForCausalLM", model_type="qwen2", vocab=480, hidden=64, inter=224,
                     heads=4, kv_heads=2, dtype="BF16", tied=True, qkv_bias=True, rope_theta=1000000.0,
                     eps=1e-6, extra={"use_sliding_window": False, "sliding_window": 4096,
                                      "max_window_layers": 2, "attention_dropout": 0.0}),
    # Mistral, sliding_window null, GQA, f32.
    "mistral": _v(arch="MistralForCausalLM", model_type="mistral", vocab=352, hidden=64, inter=192,
                  heads=4, kv_heads=2, rope_theta=1000000.0, eps=1e-5, extra={"sliding_window": None}),
}


def variant_spec(name):
    if name not in VARIANTS:
        raise KeyError("unknown variant %r (have: %s)" % (name, ", ".join(VARIANTS)))
    return dict(VARIANTS[name])


def make_config(spec):
    c = {
        "architectures": [spec["arch"]],
        "model_type": spec["model_type"],
        "vocab_size": spec["vocab"],
        "hidden_size": spec["hidden"],
        "intermediate_size": spec["inter"],
        "num_hidden_layers": spec["layers"],
        "num_attention_heads": spec["heads"],
        "num_key_value_heads": spec["kv_heads"],
        "max_position_embeddings": spec["max_pos"],
        "rms_norm_eps": spec["eps"],
        "rope_theta": spec["rope_theta"],
        "rope_scaling": spec["rope_scaling"],
        "tie_word_embeddings": spec["tied"],
        "torch_dtype": TORCH_DTYPE[spec["dtype"]],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
    }
    if spec["head_dim"] is not None:
        c["head_dim"] = spec["head_dim"]
    if spec["model_type"] == "llama":
        c["attention_bias"] = False
        c["mlp_bias"] = False
    c.update(spec["extra"])
    return c


def make_weights(spec, seed):
    """Random weights (float64) in HF names and order. Scales keep the residual stream O(1) and spread the
    logits (std ~4 untied, ~1.6 tied) so that greedy choices are rarely near-ties."""
    rng = np.random.default_rng(seed)
    H, I, V = spec["hidden"], spec["inter"], spec["vocab"]
    hd = spec["head_dim"] or H // spec["heads"]
    q, kv = spec["heads"] * hd, spec["kv_heads"] * hd

    def proj(out_dim, in_dim, gain=1.0):
        return rng.standard_normal((out_dim, in_dim)) * (gain / np.sqrt(in_dim))

    def norm_w(n):
        return 1.0 + 0.1 * rng.standard_normal(n)

    # Tied: the embedding doubles as lm_head; at std 1 the current token's own embedding dominates the
    # final hidden state and greedy just repeats it, so tied variants use a smaller embedding.
    w = {"model.embed_tokens.weight": rng.standard_normal((V, H)) * (0.2 if spec["tied"] else 1.0)}
    for i in range(spec["layers"]):
        p = "model.layers.%d." % i
        w[p + "input_layernorm.weight"] = norm_w(H)
        w[p + "self_attn.q_proj.weight"] = proj(q, H, 1.5)  # gain > 1: attention not uniform
        w[p + "self_attn.k_proj.weight"] = proj(kv, H, 1.5)
        w[p + "self_attn.v_proj.weight"] = proj(kv, H)
        if spec["qkv_bias"]:
            w[p + "self_attn.q_proj.bias"] = 0.2 * rng.standard_normal(q)
            w[p + "self_attn.k_proj.bias"] = 0.2 * rng.standard_normal(kv)
            w[p + "self_attn.v_proj.bias"] = 0.2 * rng.standard_normal(kv)
        w[p + "self_attn.o_proj.weight"] = proj(H, q)
        w[p + "post_attention_layernorm.weight"] = norm_w(H)
        w[p + "mlp.gate_proj.weight"] = proj(I, H, 1.5)
        w[p + "mlp.up_proj.weight"] = proj(I, H)
        w[p + "mlp.down_proj.weight"] = proj(H, I)
    w["model.norm.weight"] = norm_w(H)
    if not spec["tied"]:
        w["lm_head.weight"] = proj(V, H, 4.0)
    return w


def make_checkpoint(variant, out_dir, seed=0):
    """Writes the variant into out_dir; returns its config dict."""
    spec = variant_spec(variant)
    config = make_config(spec)
    write_checkpoint(out_dir, config, make_weights(spec, seed), spec["dtype"], spec["shards"])
    return config


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variant", nargs="?")
    ap.add_argument("out_dir", nargs="?")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--list", action="store_true", help="list the variants")
    a = ap.parse_args()
    if a.list or not a.variant:
        for name in VARIANTS:
            print(name)
    else:
        if not a.out_dir:
            ap.error("OUT_DIR required")
        make_checkpoint(a.variant, a.out_dir, a.seed)
        print(a.out_dir)
