#!/usr/bin/python3
"""End-to-end greedy check of the tandem engine against the independent numpy reference.

  /usr/bin/python3 tests/reference/check_greedy.py --tandem build/cli/tandem [--workdir DIR]
        [--variants llama_mha rope500k ...] [--seed N] [--max-tokens 24] [--engine-arg=--flag ...]
  /usr/bin/python3 tests/reference/check_greedy.py --self-test

For each variant: write a random checkpoint (make_checkpoint.py), pick a long prompt (37 ids: crosses
two 16-token KV blocks, and the generated tokens a third) and a short one (1-3 ids), run

  TANDEM run --model DIR --tokens ID,ID,... --max-tokens N --print-ids

which must print the generated token ids (only the new ones, not the prompt), one per line, on stdout,
and nothing else there (logs go to stderr), then exit 0. The prompt ids are fed as they are (no BOS added).
The engine may stop early only right after emitting an eos_token_id.

The engine's ids are checked with teacher forcing: the reference logits of prompt + engine tokens are
computed in one causal pass, and at every step the engine's token must be the reference argmax, or be
within rounding of it: logit[engine] >= max_logit - tol, tol = tol_rel * (1 + |max_logit|) (the margin is
printed when that happens). The plain greedy reference sequence's agreement is reported for
information only (after a near-tie the two legitimately diverge).

Exit status: 0 when every variant passes, 1 otherwise (also when the binary fails or prints no ids).
"""

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref as ref  # noqa: E402
import make_checkpoint as mk  # noqa: E402

DEFAULT_TOL_REL = 1e-3


# ----------------------------------------------------------------------------------------------
# teacher-forcing check
# ----------------------------------------------------------------------------------------------


class StepResult:
    def __init__(self):
        self.ok = True
        self.compared = 0
        self.mismatches = 0  # steps whose token is neither the argmax nor within tolerance
        self.max_margin = 0.0  # largest (max_logit - logit[engine]) accepted
        self.messages = []

    def fail(self, msg):
        self.ok = False
        self.messages.append(msg)


def check_tokens(model, prompt, engine_tokens, max_tokens, tol_rel=DEFAULT_TOL_REL, eos_ids=None):
    """Teacher-forced check of engine_tokens (the ids generated after prompt). Returns a StepResult."""
    r = StepResult()
    eos_ids = set(eos_ids or ())
    toks = list(engine_tokens)
    if not toks:
        r.fail("engine printed no token ids")
        return r
    if len(toks) > max_tokens:
        r.fail("engine printed %d ids, more than --max-tokens %d" % (len(toks), max_tokens))
        return r
    bad = [t for t in toks if not 0 <= t < model.vocab]
    if bad:
        r.fail("ids out of range [0, %d): %s" % (model.vocab, bad[:5]))
        return r
    if len(toks) < max_tokens and toks[-1] not in eos_ids:
        r.fail("engine stopped after %d of %d tokens without an eos id (last %d, eos %s)"
               % (len(toks), max_tokens, toks[-1], sorted(eos_ids)))
    seq = list(prompt) + toks
    logits = model.logits(seq[:-1])[len(prompt) - 1:]  # row i predicts toks[i]
    for i, t in enumerate(toks):
        row = logits[i]
        best = int(np.argmax(row))
        r.compared += 1
        if t == best:
            continue
        margin = float(row[best] - row[t])
        tol = tol_rel * (1.0 + abs(float(row[best])))
        if margin <= tol:
            r.max_margin = max(r.max_margin, margin)
            r.messages.append("step %d: engine %d, reference argmax %d, margin %.3g <= tol %.3g: accepted"
                              % (i, t, best, margin, tol))
        else:
            r.mismatches += 1
            top = np.argsort(row)[::-1][:3]
            r.fail("step %d: engine %d (logit %.5f), reference argmax %d (logit %.5f), margin %.4g > tol %.3g;"
                   " reference top-3 %s" % (i, t, row[t], best, row[best], margin, tol,
                                            ", ".join("%d:%.4f" % (j, row[j]) for j in top)))
    return r


def parse_ids(stdout):
    """Ids printed one per line (commas/spaces tolerated). Raises ValueError on anything else."""
    ids = []
    for line in stdout.splitlines():
        for field in line.replace(",", " ").split():
            try:
                ids.append(int(field))
            except ValueError:
                raise ValueError("non-integer output on stdout: %r" % line[:200])
    return ids


def run_engine(tandem, model_dir, prompt, max_tokens, extra_args, timeout):
    cmd = [tandem, "run", "--model", model_dir, "--tokens", ",".join(str(t) for t in prompt),
           "--max-tokens", str(max_tokens), "--print-ids"] + list(extra_args)
    t0 = time.time()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return None, "timed out after %ds: %s\nstderr tail:\n%s" % (
            timeout, " ".join(cmd), _tail((e.stderr or b"").decode("utf-8", "replace")))
    except OSError as e:
        return None, "could not run %s: %s" % (tandem, e)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode != 0:
        return None, "exit status %d: %s\nstderr tail:\n%s" % (p.returncode, " ".join(cmd), _tail(err))
    try:
        ids = parse_ids(out)
    except ValueError as e:
        return None, "%s\ncommand: %s\nstderr tail:\n%s" % (e, " ".join(cmd), _tail(err))
    if not ids:
        return None, "printed no ids: %s\nstderr tail:\n%s" % (" ".join(cmd), _tail(err))
    return (ids, time.time() - t0), None


def _tail(text, n=40):
    lines = text.rstrip().splitlines()
    return "\n".join("    " + l for l in lines[-n:]) if lines else "    (empty)"


def prompts_for(variant, seed, vocab):
    """A 37-id prompt and a 1-3-id prompt, deterministic in (variant, seed)."""
    rng = np.random.default_rng([seed, sum(ord(c) * 131 ** i for i, c in enumerate(variant)) % (2 ** 32)])
    long_p = [int(x) for x in rng.integers(3, vocab, 37)]
    short_p = [int(x) for x in rng.integers(3, vocab, int(rng.integers(1, 4)))]
    return [("long", long_p), ("short", short_p)]


def check_variant(variant, args, workdir):
    model_dir = os.path.join(workdir, variant)
    config = mk.make_checkpoint(variant, model_dir, args.seed)
    model = ref.load_model(model_dir)
    eos = ref.eos_ids_of(config)
    ok = True
    parts, details = [], []
    max_margin = 0.0
    total = 0
    for label, prompt in prompts_for(variant, args.seed, model.vocab):
        if len(prompt) + args.max_tokens > model.config["max_position_embeddings"]:
            raise ValueError("prompt + max tokens past max_position_embeddings")
        res, err = run_engine(args.tandem, model_dir, prompt, args.max_tokens, args.engine_arg, args.timeout)
        if err:
            ok = False
            parts.append("%s: engine error" % label)
            details.append("  [%s prompt, %d ids] %s" % (label, len(prompt), err))
            continue
        ids, secs = res
        r = check_tokens(model, prompt, ids, args.max_tokens, args.tol_rel, eos)
        g = ref.greedy(model, prompt, args.max_tokens, eos)
        agree = 0
        for a, b in zip(ids, g):
            if a != b:
                break
            agree += 1
        total += r.compared
        max_margin = max(max_margin, r.max_margin)
        ok &= r.ok
        parts.append("%s prompt %d ids: %d/%d tokens ok, plain greedy ref agrees on first %d/%d" % (
            label, len(prompt), r.compared - r.mismatches, len(ids), agree, len(g)))
        for m in r.messages:
            details.append("  [%s prompt] %s" % (label, m))
        if not r.ok or args.verbose:
            details.append("  [%s prompt] prompt   %s" % (label, prompt))
            details.append("  [%s prompt] engine   %s  (%.2fs)" % (label, ids, secs))
            details.append("  [%s prompt] greedy   %s" % (label, g))
    line = "%s %-18s tokens compared %3d, max accepted margin %.3g; %s" % (
        "PASS" if ok else "FAIL", variant, total, max_margin, "; ".join(parts))
    return ok, line, details


# ----------------------------------------------------------------------------------------------
# self-test: the reference against invariants and hand calculations
# ----------------------------------------------------------------------------------------------


def _close(a, b, tol, what):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError("%s: shape %s vs %s" % (what, a.shape, b.shape))
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    if not err <= tol:
        raise AssertionError("%s: max abs diff %.3g > %.3g\n got %s\nwant %s" % (what, err, tol, a, b))
    return err


def st_hand_numerics():
    """(a) RMSNorm, softmax, SiLU and RoPE against values worked out by hand."""
    # RMSNorm: x = [1, 2, 3, 4]: mean(x^2) = 30/4 = 7.5; 1/sqrt(7.5) = 0.36514837167011072.
    r = 0.36514837167011072
    _close(ref.rms_norm(np.array([1.0, 2, 3, 4]), np.array([1.0, 1, 1, 2]), 0.0), [r, 2 * r, 3 * r, 8 * r],
           1e-15, "rms_norm eps=0")
    # with eps = 0.5: 1/sqrt(8) = 0.35355339059327373
    _close(ref.rms_norm(np.array([1.0, 2, 3, 4]), np.ones(4), 0.5), np.array([1, 2, 3, 4]) * 0.35355339059327373,
           1e-15, "rms_norm eps=0.5")
    # softmax of [0, ln2, ln3] = [1, 2, 3] / 6; shift invariance.
    _close(ref.softmax(np.array([0.0, math.log(2), math.log(3)])), [1 / 6, 1 / 3, 1 / 2], 1e-15, "softmax")
    _close(ref.softmax(np.array([1000.0, 1000 + math.log(2), 1000 + math.log(3)])), [1 / 6, 1 / 3, 1 / 2],
           1e-12, "softmax shifted")
    # silu(1) = 1 / (1 + e^-1) = 0.7310585786300049; silu(0) = 0; silu(-1) = -0.2689414213699951
    _close(ref.silu(np.array([1.0, 0.0, -1.0])), [0.7310585786300049, 0.0, -0.2689414213699951], 1e-15, "silu")
    # rotate_half([a, b, c, d]) = [-c, -d, a, b]
    _close(ref.rotate_half(np.array([1.0, 2, 3, 4])), [-3, -4, 1, 2], 0, "rotate_half")
    # RoPE, head_dim 4, theta 100: inv_freq = [1, 1/10]. Pairs are (0, 2) and (1, 3) (rotate_half layout,
    # not interleaved). q = [1, 0, 0, 0] at position 3 -> [cos 3, 0, sin 3, 0];
    # q = [0, 1, 0, 0] at position 5 -> [0, cos 0.5, 0, sin 0.5].
    inv = ref.default_inv_freq(4, 100.0)
    _close(inv, [1.0, 0.1], 1e-16, "default inv_freq")
    _close(ref.apply_rope(np.array([[1.0, 0, 0, 0]]), [3], inv),
           [[-0.9899924966004454, 0, 0.1411200080598672, 0]], 1e-15, "rope pair (0,2)")
    _close(ref.apply_rope(np.array([[0.0, 1, 0, 0]]), [5], inv),
           [[0, 0.8775825618903728, 0, 0.479425538604203]], 1e-15, "rope pair (1,3)")
    # Two-position causal attention by hand: scores at position 1 are [s0, s1]; with s = [0, ln 3] the
    # weights are [1/4, 3/4], so the output is v0/4 + 3 v1/4; position 0 only sees v0.
    sc = np.array([[0.0, -np.inf], [0.0, math.log(3)]])
    v = np.array([[4.0, 8.0], [8.0, 0.0]])
    _close(ref.softmax(sc) @ v, [[4, 8], [7, 2]], 1e-14, "causal attention by hand")


def st_llama3_freqs():
    """(b) llama3 rope scaling against values derived by hand from HF _compute_llama3_parameters with
    theta 500000, head_dim 32, factor 8, low_freq_factor 1, high_freq_factor 4, original context 64:
    low_freq_wavelen = 64, high_freq_wavelen = 16, inv_freq[i] = 500000^(-2i/32), wavelen = 2 pi / inv_freq.
      i=0: inv 1,            wavelen 6.283 < 16       -> unchanged 1
      i=1: inv 0.4403666027, wavelen 14.27 < 16       -> unchanged 0.4403666027
      i=2: inv 0.1939227447, wavelen 32.40 in [16,64] -> s = (64/32.40 - 1)/3 = 0.325094,
           (1-s) inv/8 + s inv = inv (0.084363 + 0.325094) = 0.0794030092
      i=3: inv 0.0853971003, wavelen 73.58 > 64       -> inv/8 = 0.0106746375
      i=8: inv 500000^-0.5 = 1/707.1068,              -> inv/8 = sqrt(2)/8000 = 1.767766953e-4"""
    inv = ref.default_inv_freq(32, 500000.0)
    scaled = ref.llama3_inv_freq(inv, 8.0, 1.0, 4.0, 64.0)
    want = {0: 1.0, 1: 0.44036660267178, 2: 0.079403009179208, 3: 0.010674637535721, 8: math.sqrt(2) / 8000}
    for i, w in want.items():
        _close(scaled[i], w, 1e-12 * max(1.0, w) + 1e-15, "llama3 inv_freq[%d]" % i)
    # Everything with wavelen > 64 is exactly inv/8; the scaling is monotone non-increasing.
    _close(scaled[3:], inv[3:] / 8, 1e-18, "llama3 low band")
    assert np.all(np.diff(scaled) < 0), "llama3 inv_freq not decreasing"
    # Through a config: the variant rope500k uses these very parameters.
    cfg = mk.make_config(mk.variant_spec("rope500k"))
    _close(ref.rope_inv_freq(cfg, 32), scaled, 0, "rope_inv_freq(config)")
    # Llama 3.1 8B parameters (original context 8192, head_dim 128): the band edges in HF give
    # wavelen < 2048 unchanged and wavelen > 8192 divided by 8.
    inv128 = ref.default_inv_freq(128, 500000.0)
    s128 = ref.llama3_inv_freq(inv128, 8.0, 1.0, 4.0, 8192.0)
    wl = 2 * math.pi / inv128
    _close(s128[wl < 2048], inv128[wl < 2048], 0, "llama3.1 high band")
    _close(s128[wl > 8192], inv128[wl > 8192] / 8, 1e-20, "llama3.1 low band")


def _naive_logits(config, w, ids):
    """A deliberately plain per-position, per-head loop implementation, sharing nothing with llama_ref
    beyond reading the dict: checks the vectorized forward (GQA mapping, RoPE layout, llama3 scaling,
    biases, causal mask)."""
    H = config["hidden_size"]
    nh, nkv = config["num_attention_heads"], config["num_key_value_heads"]
    hd = config.get("head_dim") or H // nh
    eps = config["rms_norm_eps"]
    theta = config["rope_theta"]
    rs = config.get("rope_scaling")

    def freq(j):  # scalar HF llama3 formula, for rotation pair (j, j + hd/2)
        f = theta ** (-(2.0 * j) / hd)
        if not rs:
            return f
        old, lo, hi, fac = (rs["original_max_position_embeddings"], rs["low_freq_factor"],
                            rs["high_freq_factor"], rs["factor"])
        wl = 2 * math.pi / f
        if wl < old / hi:
            return f
        if wl > old / lo:
            return f / fac
        s = (old / wl - lo) / (hi - lo)
        return (1 - s) * f / fac + s * f

    def rope(vec, pos):
        out = list(vec)
        for j in range(hd // 2):
            c, s = math.cos(pos * freq(j)), math.sin(pos * freq(j))
            a, b = vec[j], vec[j + hd // 2]
            out[j] = a * c - b * s
            out[j + hd // 2] = b * c + a * s
        return out

    def norm(x, g):
        ms = sum(t * t for t in x) / len(x)
        return [t / math.sqrt(ms + eps) * gi for t, gi in zip(x, g)]

    def lin(x, name, bias=None):
        y = list(np.asarray(w[name]).dot(np.asarray(x)))
        if bias in w:
            y = [a + b for a, b in zip(y, w[bias])]
        return y

    hs = [list(w["model.embed_tokens.weight"][t]) for t in ids]
    for L in range(config["num_hidden_layers"]):
        p = "model.layers.%d." % L
        xs = [norm(h, w[p + "input_layernorm.weight"]) for h in hs]
        qs = [lin(x, p + "self_attn.q_proj.weight", p + "self_attn.q_proj.bias") for x in xs]
        ks = [lin(x, p + "self_attn.k_proj.weight", p + "self_attn.k_proj.bias") for x in xs]
        vs = [lin(x, p + "self_attn.v_proj.weight", p + "self_attn.v_proj.bias") for x in xs]
        new = []
        for t in range(len(ids)):
            att = []
            for h in range(nh):
                g = h // (nh // nkv)
                q = rope(qs[t][h * hd:(h + 1) * hd], t)
                sc = []
                for u in range(t + 1):
                    k = rope(ks[u][g * hd:(g + 1) * hd], u)
                    sc.append(sum(a * b for a, b in zip(q, k)) / math.sqrt(hd))
                m = max(sc)
                e = [math.exp(s - m) for s in sc]
                z = sum(e)
                o = [0.0] * hd
                for u in range(t + 1):
                    vv = vs[u][g * hd:(g + 1) * hd]
                    o = [a + e[u] / z * b for a, b in zip(o, vv)]
                att += o
            ao = lin(att, p + "self_attn.o_proj.weight", p + "self_attn.o_proj.bias")
            h1 = [a + b for a, b in zip(hs[t], ao)]
            x = norm(h1, w[p + "post_attention_layernorm.weight"])
            gt = lin(x, p + "mlp.gate_proj.weight")
            up = lin(x, p + "mlp.up_proj.weight")
            act = [a / (1 + math.exp(-a)) * b for a, b in zip(gt, up)]
            new.append([a + b for a, b in zip(h1, lin(act, p + "mlp.down_proj.weight"))])
        hs = new
    head = w["model.embed_tokens.weight"] if config["tie_word_embeddings"] else w["lm_head.weight"]
    return np.array([np.asarray(head).dot(np.asarray(norm(h, w["model.norm.weight"]))) for h in hs])


def _tiny_spec(**kw):
    s = dict(mk._BASE)
    s.update(vocab=50, hidden=16, inter=24, layers=2, heads=4, kv_heads=2, head_dim=8)
    s.update(kw)
    return s


def st_naive_forward():
    """(g) vectorized forward == plain loop implementation, incl. GQA, head_dim override, q/k/v biases and
    llama3 rope scaling (theta 1e4, head_dim 16, original context 64: wavelengths 6.3 | 19.9, 62.8 | 199..
    fall in the high | medium | low bands, so all three formulas are exercised)."""
    for kw in ({},
               dict(qkv_bias=True, tied=True, arch="Qwen2ForCausalLM", model_type="qwen2"),
               dict(heads=2, kv_heads=1, head_dim=16, rope_theta=10000.0,
                    rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 64})):
        spec = _tiny_spec(**kw)
        cfg = mk.make_config(spec)
        w = mk.make_weights(spec, 7)
        ids = [3, 17, 42, 5, 5, 0, 49]
        got = ref.Model(cfg, w).logits(ids)
        want = _naive_logits(cfg, w, ids)
        _close(got, want, 1e-10, "vectorized vs naive forward %s" % kw)


def _write_and_load(d, cfg, w, dtype, shards=1):
    mk.write_checkpoint(d, cfg, w, dtype, shards)
    return ref.load_model(d)


def st_gqa_equals_mha(tmp):
    """(c) GQA checkpoint == the MHA checkpoint whose k/v heads are duplicated (q head h <- kv head h//rep)."""
    spec = mk.variant_spec("llama_gqa")
    spec.update(layers=2, qkv_bias=True)  # biases too, to check they are duplicated the same way
    cfg = mk.make_config(spec)
    w = mk.make_weights(spec, 11)
    nh, nkv, hd, H = spec["heads"], spec["kv_heads"], spec["hidden"] // spec["heads"], spec["hidden"]
    rep = nh // nkv
    w_mha = dict(w)
    for L in range(spec["layers"]):
        for kind in ("k", "v"):
            name = "model.layers.%d.self_attn.%s_proj." % (L, kind)
            w_mha[name + "weight"] = np.repeat(w[name + "weight"].reshape(nkv, hd, H), rep, axis=0).reshape(nh * hd, H)
            w_mha[name + "bias"] = np.repeat(w[name + "bias"].reshape(nkv, hd), rep, axis=0).reshape(nh * hd)
    cfg_mha = dict(cfg, num_key_value_heads=nh)
    ids = [5, 100, 7, 7, 300, 511, 2, 64, 9, 1, 250]
    a = _write_and_load(os.path.join(tmp, "gqa"), cfg, w, "BF16").logits(ids)
    b = _write_and_load(os.path.join(tmp, "mha"), cfg_mha, w_mha, "BF16").logits(ids)
    _close(a, b, 1e-9, "GQA vs duplicated MHA")
    # And a wrong mapping (h % kv_heads) must differ, or this test would prove nothing.
    w_bad = dict(w_mha)
    for L in range(spec["layers"]):
        for kind in ("k", "v"):
            name = "model.layers.%d.self_attn.%s_proj." % (L, kind)
            w_bad[name + "weight"] = np.tile(w[name + "weight"].reshape(nkv, hd, H), (rep, 1, 1)).reshape(nh * hd, H)
    c = ref.Model(cfg_mha, w_bad).logits(ids)
    assert np.max(np.abs(a - c)) > 1e-3, "GQA test cannot tell kv-head mappings apart"


def st_tied_equals_explicit(tmp):
    """(d) tie_word_embeddings == an explicit lm_head.weight equal to embed_tokens."""
    spec = mk.variant_spec("tied_f16")
    cfg = mk.make_config(spec)
    w = mk.make_weights(spec, 12)
    assert "lm_head.weight" not in w
    w_exp = dict(w)
    w_exp["lm_head.weight"] = w["model.embed_tokens.weight"].copy()
    cfg_exp = dict(cfg, tie_word_embeddings=False)
    ids = [3, 9, 399, 0, 200, 17]
    a = _write_and_load(os.path.join(tmp, "tied"), cfg, w, "F16")
    b = _write_and_load(os.path.join(tmp, "explicit"), cfg_exp, w_exp, "F16")
    assert a.lm_head is a.embed and b.lm_head is not b.embed
    _close(a.logits(ids), b.logits(ids), 0, "tied vs explicit lm_head")


def st_sharded_equals_single(tmp):
    """(e) a sharded checkpoint and a single-file copy of the same weights give identical logits."""
    spec = mk.variant_spec("sharded")
    cfg = mk.make_config(spec)
    w = mk.make_weights(spec, 13)
    ids = [1, 2, 3, 400, 447, 0, 31]
    d3 = os.path.join(tmp, "sh3")
    a = _write_and_load(d3, cfg, w, "BF16", shards=3)
    files = sorted(f for f in os.listdir(d3) if f.endswith(".safetensors"))
    assert files == ["model-0000%d-of-00003.safetensors" % k for k in (1, 2, 3)], files
    assert not os.path.exists(os.path.join(d3, "model.safetensors"))
    b = _write_and_load(os.path.join(tmp, "sh1"), cfg, w, "BF16", shards=1)
    _close(a.logits(ids), b.logits(ids), 0, "sharded vs single file")
    # The variant writer really shards.
    mk.make_checkpoint("sharded", os.path.join(tmp, "shv"), 0)
    assert os.path.exists(os.path.join(tmp, "shv", "model.safetensors.index.json"))


def st_bf16_roundtrip(tmp):
    """(f) bf16 rounding (round-to-nearest-even on the top 16 bits of float32) and writer/reader round trips."""
    e = 2.0 ** -8
    cases = [
        (1.0, 1.0), (-2.5, -2.5), (0.0, 0.0),
        (1 + e, 1.0),                       # halfway, LSB even -> down
        (1 + 3 * e, 1 + 4 * e),             # halfway, LSB odd -> up to even
        (1 + e + 2.0 ** -20, 1 + 2 * e),    # just above halfway -> up
        (1 + e - 2.0 ** -20, 1.0),          # just below halfway -> down
        (-(1 + 3 * e), -(1 + 4 * e)),
        (3.140625, 3.140625),               # exactly representable (0x4049)
        (float(np.finfo(np.float32).max), math.inf),  # rounds past the largest bf16
        (math.inf, math.inf), (-math.inf, -math.inf),
    ]
    x = np.array([c[0] for c in cases])
    got = mk.bf16_bits_to_f64(mk.f32_to_bf16_bits(x))
    want = np.array([c[1] for c in cases])
    assert np.array_equal(got, want), "bf16 rounding:\n got %s\nwant %s" % (got, want)
    assert mk.f32_to_bf16_bits(np.array([1.0]))[0] == 0x3F80 and mk.f32_to_bf16_bits(np.array([-2.0]))[0] == 0xC000
    assert math.copysign(1, mk.bf16_bits_to_f64(mk.f32_to_bf16_bits(np.array([-0.0])))[0]) < 0, "-0 lost"
    assert np.isnan(mk.bf16_bits_to_f64(mk.f32_to_bf16_bits(np.array([np.nan])))[0]), "NaN lost"
    # Writer -> reader, every dtype; file layout checks.
    rng = np.random.default_rng(5)
    a = rng.standard_normal((7, 5)) * 3
    v = rng.standard_normal(3)
    for dtype, rel in (("BF16", 2.0 ** -8), ("F16", 2.0 ** -11), ("F32", 2.0 ** -24)):
        path = os.path.join(tmp, "rt_%s.safetensors" % dtype)
        mk.write_safetensors(path, [("a", a, dtype), ("b.bias", v, dtype)])
        raw = open(path, "rb").read()
        n = int.from_bytes(raw[:8], "little")
        assert n % 8 == 0, "header not padded to 8"
        t, dts = ref.read_safetensors(path)
        assert dts == {"a": dtype, "b.bias": dtype}
        assert t["a"].shape == (7, 5) and t["b.bias"].shape == (3,)
        if dtype == "BF16":
            assert np.array_equal(t["a"], mk.bf16_bits_to_f64(mk.f32_to_bf16_bits(a))), "bf16 readback"
        elif dtype == "F16":
            assert np.array_equal(t["a"], a.astype(np.float16).astype(np.float64)), "f16 readback"
        else:
            assert np.array_equal(t["a"], a.astype(np.float32).astype(np.float64)), "f32 readback"
        assert np.all(np.abs(t["a"] - a) <= rel * np.abs(a) + 1e-30), "%s rounding error too large" % dtype
        # Re-writing what was read is bit-exact (values are representable).
        mk.write_safetensors(path + ".2", [("a", t["a"], dtype), ("b.bias", t["b.bias"], dtype)])
        assert open(path + ".2", "rb").read() == raw, "%s rewrite not bit-exact" % dtype


def st_causal_prefix():
    """Causality: logits of a prefix equal the first rows of the full sequence's logits; greedy agrees
    with teacher-forced argmax; check_tokens accepts greedy, flags a wrong token and accepts a near tie."""
    spec = _tiny_spec(vocab=64, hidden=32, heads=4, kv_heads=2, head_dim=None)
    m = ref.Model(mk.make_config(spec), mk.make_weights(spec, 21))
    ids = [4, 8, 15, 16, 23, 42, 9, 9, 1]
    full = m.logits(ids)
    for n in (1, 4, 8):
        _close(m.logits(ids[:n]), full[:n], 1e-12, "prefix %d" % n)
    g = ref.greedy(m, ids, 6)
    tf = m.logits(ids + g)[len(ids) - 1:-1].argmax(-1)
    assert list(tf) == g, "greedy vs teacher-forced argmax"
    r = check_tokens(m, ids, g, 6)
    assert r.ok and r.compared == 6 and r.max_margin == 0, r.messages
    wrong = list(g)
    row = m.logits(ids + g[:2])[-1]
    wrong[2] = int(np.argsort(row)[-5])  # 5th best: far from a tie
    assert not check_tokens(m, ids, wrong, 6).ok, "wrong token accepted"
    assert not check_tokens(m, ids, g[:3], 6).ok, "early stop without eos accepted"
    assert check_tokens(m, ids, g[:3], 6, eos_ids={g[2]}).ok, "early stop at eos rejected"
    assert not check_tokens(m, ids, [], 6).ok and not check_tokens(m, ids, g + [1], 6).ok
    # Near tie: with a huge tolerance the 2nd best is accepted and its margin reported.
    second = list(g)
    second[0] = int(np.argsort(full[-1])[-2])
    r = check_tokens(m, ids, second[:1], 1, tol_rel=10.0)
    assert r.ok and r.max_margin > 0, r.messages
    assert parse_ids("1\n2\n\n3\n") == [1, 2, 3] and parse_ids("4, 5 6") == [4, 5, 6]
    try:
        parse_ids("7\nloading model\n")
        raise AssertionError("non-integer stdout accepted")
    except ValueError:
        pass


def self_test():
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="tandem_ref_selftest_")
    tests = [
        ("(a) RMSNorm/softmax/SiLU/RoPE/attention by hand", st_hand_numerics),
        ("(b) llama3 rope frequencies", st_llama3_freqs),
        ("(c) GQA == duplicated-kv MHA", lambda: st_gqa_equals_mha(tmp)),
        ("(d) tied == explicit lm_head", lambda: st_tied_equals_explicit(tmp)),
        ("(e) sharded == single file", lambda: st_sharded_equals_single(tmp)),
        ("(f) bf16/f16/f32 writer round trip", lambda: st_bf16_roundtrip(tmp)),
        ("(g) vectorized == naive loop forward", st_naive_forward),
        ("(h) causality, greedy, check logic", st_causal_prefix),
    ]
    failed = 0
    try:
        for name, fn in tests:
            t = time.time()
            try:
                fn()
                print("PASS %s (%.2fs)" % (name, time.time() - t))
            except Exception as e:  # report every failing test, not just the first
                failed += 1
                print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
        # Every variant builds and runs through the reference.
        t = time.time()
        for v in mk.VARIANTS:
            try:
                d = os.path.join(tmp, "v_" + v)
                mk.make_checkpoint(v, d, 0)
                m = ref.load_model(d)
                lg = ref.logits_for_sequence(m, [1, 2, 3])
                assert lg.shape == (3, m.vocab) and np.all(np.isfinite(lg))
            except Exception as e:
                failed += 1
                print("FAIL variant %s: %s: %s" % (v, type(e).__name__, e))
        if not failed:
            print("PASS all %d variants load and run (%.2fs)" % (len(mk.VARIANTS), time.time() - t))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%s: self-test %d failed, %.2fs" % ("FAIL" if failed else "PASS", failed, time.time() - t0))
    return 1 if failed else 0


# ----------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tandem", help="path to the tandem binary")
    ap.add_argument("--workdir", help="where checkpoints are written (default: a temp dir, removed after)")
    ap.add_argument("--variants", nargs="+", default=list(mk.VARIANTS), choices=list(mk.VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--tol-rel", type=float, default=DEFAULT_TOL_REL)
    ap.add_argument("--timeout", type=int, default=300, help="seconds per engine run")
    ap.add_argument("--engine-arg", action="append", default=[],
                    help="extra argument appended to `tandem run` (repeat; use --engine-arg=--flag)")
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--self-test", action="store_true", help="check the reference itself, no engine")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    if not args.tandem:
        ap.error("--tandem PATH required (or --self-test)")
    if not os.path.exists(args.tandem):
        print("FAIL: tandem binary %s not found" % args.tandem)
        return 1
    args.tandem = os.path.abspath(args.tandem)
    workdir = args.workdir or tempfile.mkdtemp(prefix="tandem_check_greedy_")
    os.makedirs(workdir, exist_ok=True)
    failures = 0
    try:
        for v in args.variants:
            try:
                ok, line, details = check_variant(v, args, workdir)
            except Exception as e:
                ok, line, details = False, "FAIL %-18s reference error: %s: %s" % (v, type(e).__name__, e), []
            failures += not ok
            print(line)
            for d in details:
                print(d)
            sys.stdout.flush()
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print("%s: %d of %d variants passed" % ("PASS" if not failures else "FAIL",
                                            len(args.variants) - failures, len(args.variants)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
