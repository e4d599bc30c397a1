"""The Gemma stack with two experts in one joint multi-query attention per layer
(openpi_facts.md §3.5-3.6): RMSNorm (1 + scale) or adaRMS (pi0.5's action expert), RoPE
on halves, f32 logits and softmax, GeGLU FFN, layers run by ``lax.scan`` over the stacked
depth axis, an optional KV cache, per-head capture and head-noise ablation.

Axis letters: B batch, T query tokens, S key tokens, D width, N query heads, K kv heads,
G = N / K, H head dim, L layers.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from robosteer_assets.vla.config import Pi0Config
from robosteer_assets.vla.layers import act_dtype as _dt
from robosteer_assets.vla.layers import dense as _dense
from robosteer_assets.vla.lora import _ffn, _kv_proj, _out_proj, _q_proj

Params = dict[str, Any]
BIG_NEG = -2.3819763e38


def _rmsnorm(x, p, cond):
    """RMSNorm (stats in f32). Plain: r * (1 + scale). adaRMS (``cond`` given): [s, sh, g] =
    Dense(cond); r * (1 + s) + sh, returning the gate g. Output cast to the input dtype."""
    dtype = x.dtype
    xf = x.astype(jnp.float32)
    r = xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + 1e-6)
    if cond is None:
        scale = p["scale"].astype(dtype)
        return (r * (1 + scale)).astype(dtype), None
    mod = _dense(cond, p["Dense_0"], dtype)[:, None, :]
    s, sh, g = jnp.split(mod, 3, axis=-1)
    return (r * (1 + s) + sh).astype(dtype), g


def _rope(x, positions, max_wavelength=10_000):
    """RoPE on halves (non-interleaved), in f32. x [B,T,h,H], positions [B,T]."""
    H = x.shape[-1]
    frac = 2 * jnp.arange(H // 2, dtype=jnp.float32) / H
    timescale = max_wavelength ** frac
    theta = positions[..., None].astype(jnp.float32) / timescale  # [B,T,H/2]
    sin, cos = jnp.sin(theta)[:, :, None, :], jnp.cos(theta)[:, :, None, :]
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


def make_attn_mask(input_mask, ar):
    """allowed[b, i, j] = cumsum(ar)[j] <= cumsum(ar)[i] and mask[i] and mask[j] (i query, j key)."""
    ar = jnp.broadcast_to(ar, input_mask.shape)
    c = jnp.cumsum(ar.astype(jnp.int32), axis=1)
    allowed = c[:, None, :] <= c[:, :, None]
    return allowed & input_mask[:, None, :] & input_mask[:, :, None]


def transformer(cfg: Pi0Config, p_llm: Params, embeds, attn_mask, positions, cond=(None, None), kv_cache=None,
                capture_index=None, head_noise=None, noise_rng=None, capture_attention=False, remat=False):
    """The Gemma stack with two experts in one joint attention per layer.

    ``embeds`` = [prefix tokens | None, suffix tokens | None] (a None expert is
    skipped); ``attn_mask`` [B, T, S] (S includes the cache); ``positions`` [B, T];
    ``kv_cache`` ([L,B,S0,K,H], [L,B,S0,K,H]) or None. ``capture_index`` [B] (index
    into the joint query sequence) returns every layer's per-head attention output
    at that token, before ``attn_vec_einsum``: [B, L, N, H] (with ``capture_attention``
    also that token's attention probabilities [B, L, N, S]). ``head_noise`` [L, N]:
    std of Gaussian noise added to each head's output (CMA ablation).
    Returns (outputs per expert after the final norms, (k, v) per layer, captured).
    """
    dtype = _dt(cfg)
    loras = (cfg.llm.lora, cfg.expert.lora)
    layers = p_llm["layers"]
    L, N, H = cfg.num_layers, cfg.num_heads, cfg.head_dim
    K = cfg.llm.num_kv_heads
    present = [i for i, x in enumerate(embeds) if x is not None]
    lengths = [embeds[i].shape[1] for i in present]
    B = embeds[present[0]].shape[0]
    keys = jax.random.split(noise_rng if noise_rng is not None else jax.random.key(0), L)
    noise_std = head_noise if head_noise is not None else jnp.zeros((L, N), jnp.float32)

    def block(xs, layer):
        lp, cache_l, std_l, key_l = layer
        qs, ks, vs, gates = [], [], [], {}
        normed = {}
        for e in present:
            sfx = "" if e == 0 else "_1"
            xn, g = _rmsnorm(xs[e], lp[f"pre_attention_norm{sfx}"], cond[e])
            gates[e] = g
            normed[e] = xn
            qs.append(_q_proj(xn, lp["attn"][f"q_einsum{sfx}"], loras[e], dtype))
            k, v = _kv_proj(xn, lp["attn"][f"kv_einsum{sfx}"], loras[e], dtype)
            ks.append(k)
            vs.append(v)
        q, k, v = (jnp.concatenate(a, axis=1) for a in (qs, ks, vs))
        q, k = _rope(q, positions), _rope(k, positions)
        q = q * jnp.asarray(H ** -0.5, dtype)
        if cache_l is not None:
            k = jnp.concatenate([cache_l[0], k], axis=1)
            v = jnp.concatenate([cache_l[1], v], axis=1)
        T, S, G = q.shape[1], k.shape[1], N // K
        # per (b, k) one [T*G, H] x [H, S] matmul (a 5-D "btkgh,bskh->bkgts" is ~2x slower on CPU)
        qg = jnp.moveaxis(q.reshape(B, T, K, G, H), 2, 1).reshape(B, K, T * G, H)
        kt, vt = jnp.moveaxis(k, 2, 1), jnp.moveaxis(v, 2, 1)  # [B, K, S, H]
        logits = jnp.einsum("bkqh,bksh->bkqs", qg, kt, preferred_element_type=jnp.float32)
        logits = jnp.where(attn_mask[:, None, :, None, :], logits.reshape(B, K, T, G, S), BIG_NEG)
        probs = jax.nn.softmax(logits, axis=-1).astype(dtype)  # [B, K, T, G, S]
        enc = jnp.einsum("bkqs,bksh->bkqh", probs.reshape(B, K, T * G, S), vt)
        enc = jnp.moveaxis(enc.reshape(B, K, T, G, H), 1, 2).reshape(B, T, N, H)
        if head_noise is not None:
            enc = enc + (std_l[None, None, :, None] * jax.random.normal(key_l, enc.shape)).astype(dtype)
        captured = None
        if capture_index is not None:
            captured = jnp.take_along_axis(enc, capture_index[:, None, None, None], axis=1)[:, 0]
            if capture_attention:
                pr = jnp.take_along_axis(probs, capture_index[:, None, None, None, None], axis=2)[:, :, 0]
                pr = pr.reshape(B, N, S)  # head n = k * G + g, as in enc
                captured = (captured, pr)
        out_xs = list(xs)
        start = 0
        for e, n in zip(present, lengths):
            sfx = "" if e == 0 else "_1"
            enc_e = enc[:, start:start + n]
            start += n
            out = _out_proj(enc_e, lp["attn"][f"attn_vec_einsum{sfx}"], loras[e], dtype)
            x = xs[e] + (out * gates[e] if gates[e] is not None else out)
            xn, g = _rmsnorm(x, lp[f"pre_ffw_norm{sfx}"], cond[e])
            f = _ffn(xn, lp[f"mlp{sfx}"], loras[e], dtype)
            out_xs[e] = x + (f * g if g is not None else f)
        return tuple(out_xs), ((k, v), captured)

    if remat:
        block = jax.checkpoint(block, policy=jax.checkpoint_policies.nothing_saveable)
    xs0 = tuple(x.astype(dtype) if x is not None else None for x in embeds)
    xs, (kv, captured) = jax.lax.scan(block, xs0, (layers, kv_cache, noise_std, keys))
    outs = []
    for e in range(2):
        if xs[e] is None:
            outs.append(None)
            continue
        sfx = "" if e == 0 else "_1"
        y, _ = _rmsnorm(xs[e], p_llm[f"final_norm{sfx}"], cond[e])
        outs.append(y)
    if captured is not None:
        if isinstance(captured, tuple):
            captured = (jnp.moveaxis(captured[0], 0, 1), jnp.moveaxis(captured[1], 0, 1))
        else:
            captured = jnp.moveaxis(captured, 0, 1)
    return outs, kv, captured
