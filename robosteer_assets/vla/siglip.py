"""SigLIP ViT image encoder over openpi's ``PaliGemma/img`` tree (openpi_facts.md §3.3):
patch conv (f32) + learned position embedding, pre-LN encoder blocks (MHA with biases,
softmax in the activation dtype as flax's default, GELU-tanh MLP) scanned over the
stacked depth axis, final LayerNorm, no pooling, then the ``head`` projection to the
LLM width."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from robosteer_assets.vla.config import Pi0Config
from robosteer_assets.vla.layers import act_dtype as _dt
from robosteer_assets.vla.layers import dense as _dense

Params = dict[str, Any]


def layernorm(x, scale, bias, eps=1e-6):
    xf = x.astype(jnp.float32)
    mean = xf.mean(-1, keepdims=True)
    var = ((xf - mean) ** 2).mean(-1, keepdims=True)
    y = (xf - mean) * jax.lax.rsqrt(var + eps) * scale.astype(jnp.float32) + bias.astype(jnp.float32)
    return y.astype(x.dtype)


def embed_image(cfg: Pi0Config, p_img: Params, image):
    """SigLIP ViT (pool none) + head: f32 [B,S,S,3] in [-1,1] -> [B, n, D0]."""
    v, dtype = cfg.vision, _dt(cfg)
    x = jax.lax.conv_general_dilated(
        image.astype(jnp.float32), p_img["embedding"]["kernel"].astype(jnp.float32), (v.patch, v.patch), "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC")) + p_img["embedding"]["bias"].astype(jnp.float32)
    B = x.shape[0]
    x = x.reshape(B, -1, v.width) + p_img["pos_embedding"].astype(jnp.float32)
    x = x.astype(dtype)
    blocks = p_img["Transformer"]["encoderblock"]

    def block(x, bp):
        mha, mlp = bp["MultiHeadDotProductAttention_0"], bp["MlpBlock_0"]
        y = layernorm(x, bp["LayerNorm_0"]["scale"], bp["LayerNorm_0"]["bias"])
        n = y.shape[1]
        y2 = y.reshape(B * n, v.width)

        def proj(name):
            k = mha[name]["kernel"].reshape(v.width, -1).astype(dtype)
            return (y2 @ k + mha[name]["bias"].reshape(-1).astype(dtype)).reshape(B, n, v.num_heads, v.head_dim)

        q, k, val = proj("query"), proj("key"), proj("value")
        q = q / jnp.asarray(math.sqrt(v.head_dim), dtype)
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k)
        probs = jax.nn.softmax(logits, axis=-1).astype(dtype)  # in the activation dtype (flax default)
        att = jnp.einsum("bhqk,bkhd->bqhd", probs, val).reshape(B * n, -1)
        out = att @ mha["out"]["kernel"].reshape(-1, v.width).astype(dtype) + mha["out"]["bias"].astype(dtype)
        x = x + out.reshape(B, n, v.width)
        y = layernorm(x, bp["LayerNorm_1"]["scale"], bp["LayerNorm_1"]["bias"])
        y = jax.nn.gelu(_dense(y, mlp["Dense_0"], dtype), approximate=True)
        x = x + _dense(y, mlp["Dense_1"], dtype)
        return x, None

    x, _ = jax.lax.scan(block, x, blocks)
    x = layernorm(x, p_img["Transformer"]["encoder_norm"]["scale"], p_img["Transformer"]["encoder_norm"]["bias"])
    return _dense(x, p_img["head"], dtype)
