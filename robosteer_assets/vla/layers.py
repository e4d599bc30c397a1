"""Shared small pieces of the pi0 forward: the activation dtype of a config and a dense
layer written as one 2-D matmul (jax_cpu_sizing.md: the backward of 3-D dot_generals is
~2x slower on XLA:CPU)."""

from __future__ import annotations

import jax.numpy as jnp

from robosteer_assets.vla.config import Pi0Config


def act_dtype(cfg: Pi0Config):
    return jnp.bfloat16 if cfg.dtype == "bfloat16" else jnp.float32


def dense(x, p, dtype=None):
    """x [..., I] @ kernel [I, O] + bias, as one 2-D matmul."""
    k = p["kernel"]
    dtype = dtype or jnp.result_type(x.dtype, k.dtype)
    x2 = x.reshape(-1, x.shape[-1]).astype(dtype)
    y = x2 @ k.astype(dtype) + p["bias"].astype(dtype)
    return y.reshape(*x.shape[:-1], k.shape[-1])
