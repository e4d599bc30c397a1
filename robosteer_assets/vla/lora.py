"""Gemma's einsums with optional LoRA (openpi's ``lora.Einsum`` / ``lora.FeedForward``,
openpi_facts.md §1.3), each a flattened 2-D matmul on [B*T, D] over openpi's stored weight
shapes: ``q_einsum/w`` (N, D, H), ``kv_einsum/w`` (2, K, D, H), ``attn_vec_einsum/w``
(N, H, D), ``gating_einsum`` (2, D, F), ``linear`` (F, D). A LoRA pair ``lora_a`` /
``lora_b`` next to a weight adds ``scaling * (x A) B`` (alpha / r, or alpha / sqrt(r) with
rsLoRA); the FFN pairs ``*_lora_a`` / ``*_lora_b`` add ``(x A) B`` unscaled, as openpi.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from robosteer_assets.vla.config import LoRAConfig


def _lora(lora: LoRAConfig | None, target: str, p: dict) -> bool:
    return lora is not None and target in lora.targets and "lora_a" in p


def _q_proj(x, p, lora, dtype):
    B, T, D = x.shape
    w = p["w"]  # [N, D, H]
    N, _, H = w.shape
    x2 = x.reshape(B * T, D).astype(dtype)
    y = (x2 @ jnp.moveaxis(w, 1, 0).reshape(D, N * H).astype(dtype)).reshape(B * T, N, H)
    if _lora(lora, "q", p):
        a, b = p["lora_a"].astype(dtype), p["lora_b"].astype(dtype)  # [N,D,r], [N,r,H]
        xa = (x2 @ jnp.moveaxis(a, 1, 0).reshape(D, -1)).reshape(B * T, N, -1)
        y = y + lora.scaling * jnp.einsum("mnr,nrh->mnh", xa, b)
    return y.reshape(B, T, N, H)


def _kv_proj(x, p, lora, dtype):
    B, T, D = x.shape
    w = p["w"]  # [2, K, D, H]
    _, K, _, H = w.shape
    x2 = x.reshape(B * T, D).astype(dtype)
    y = (x2 @ jnp.moveaxis(w, 2, 0).reshape(D, 2 * K * H).astype(dtype)).reshape(B * T, 2, K, H)
    if _lora(lora, "kv", p):
        a, b = p["lora_a"].astype(dtype), p["lora_b"].astype(dtype)  # [2,K,D,r], [2,K,r,H]
        xa = (x2 @ jnp.moveaxis(a, 2, 0).reshape(D, -1)).reshape(B * T, 2, K, -1)
        y = y + lora.scaling * jnp.einsum("mckr,ckrh->mckh", xa, b)
    y = y.reshape(B, T, 2, K, H)
    return y[:, :, 0], y[:, :, 1]


def _out_proj(enc, p, lora, dtype):
    B, T, N, H = enc.shape
    w = p["w"]  # [N, H, D]
    D = w.shape[-1]
    e2 = enc.reshape(B * T, N * H).astype(dtype)
    y = e2 @ w.reshape(N * H, D).astype(dtype)
    if _lora(lora, "attn_vec", p):
        a, b = p["lora_a"].astype(dtype), p["lora_b"].astype(dtype)  # [N,H,r], [N,r,D]
        xa = jnp.einsum("mnh,nhr->mnr", e2.reshape(B * T, N, H), a)
        y = y + lora.scaling * (xa.reshape(B * T, -1) @ b.reshape(-1, D))
    return y.reshape(B, T, D)


def _ffn(x, p, lora, dtype):
    B, T, D = x.shape
    wg, wl = p["gating_einsum"], p["linear"]  # [2, D, F], [F, D]
    F = wg.shape[-1]
    x2 = x.reshape(B * T, D).astype(dtype)
    g = (x2 @ jnp.moveaxis(wg, 1, 0).reshape(D, 2 * F).astype(dtype)).reshape(B * T, 2, F)
    use_lora = lora is not None and "ffn" in lora.targets and "gating_einsum_lora_a" in p
    if use_lora:  # openpi's FFN LoRA path is unscaled
        a, b = p["gating_einsum_lora_a"].astype(dtype), p["gating_einsum_lora_b"].astype(dtype)
        xa = (x2 @ jnp.moveaxis(a, 1, 0).reshape(D, -1)).reshape(B * T, 2, -1)
        g = g + jnp.einsum("mcr,crf->mcf", xa, b)
    h = jax.nn.gelu(g[:, 0], approximate=True) * g[:, 1]
    y = h @ wl.astype(dtype)
    if use_lora:
        y = y + (h @ p["linear_lora_a"].astype(dtype)) @ p["linear_lora_b"].astype(dtype)
    return y.reshape(B, T, D)
