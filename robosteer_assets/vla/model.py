"""pi0 / pi0.5 (openpi's JAX model, reimplemented from its published facts).

The parameters are a pure nested dict with **openpi's exact paths and shapes**
(openpi_facts.md §1.2): ``PaliGemma/img/...`` (SigLIP, linen names),
``PaliGemma/llm/...`` (Gemma, two experts with the ``_1`` suffix, layers stacked
on a leading depth axis), and the root projections. The forward is written as
functions of that tree (big_vision style: einsums with named axes, layers run by
``lax.scan``), so an openpi checkpoint loads by path with no renaming, the same
code runs the real ``pi0`` on a GPU and ``pi0_tiny`` on this CPU, and
jit / grad / sharding apply to plain pytrees.

Axis letters: B batch, T query tokens, S key tokens, D width, N query heads,
K kv heads, G = N / K, H head dim, F mlp dim, L layers, A action dim, r LoRA rank.

Math (openpi_facts.md §3): prefix = SigLIP tokens of the three cameras (masked
images keep their slots but are never attended) + language tokens x sqrt(D);
suffix = pi0: [state token, action tokens (action_in_proj(x_t) ++ time
embedding -> swish MLP)], pi0.5: [action tokens], with the time entering the
action expert through adaRMS. One joint multi-query attention per layer over
[prefix; suffix]; block mask from cumsum of the autoregressive flags; positions
= cumsum(mask) - 1 (masked tokens do not advance them); RoPE on halves; f32
softmax; GeGLU FFN; RMSNorm (1 + scale). Flow matching with t = 1 noise,
t = 0 data; sampling runs the prefix once into a KV cache, then 10 Euler steps.

CPU note (jax_cpu_sizing.md): every projection is a 2-D matmul on a flattened
[B*T, D] activation (the backward of 3-D dot_generals is ~2x slower on XLA:CPU);
the stored weight shapes are openpi's.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from robosteer_assets.vla.augment import AugmentConfig, augment_observation
from robosteer_assets.vla.config import IMAGE_KEYS, LoRAConfig, Pi0Config
from robosteer_assets.vla.observation import Observation

Params = dict[str, Any]
BIG_NEG = -2.3819763e38
POSITIONS = ("first_suffix", "last_prefix")
_AUGMENT_STREAM = 0x617567  # fold_in tag: the augmentation key is independent of noise / time


# ----------------------------------------------------------------------------- parameter tree

def _specs(cfg: Pi0Config) -> dict[str, tuple[tuple[int, ...], str, float]]:
    """path -> (shape, init kind, scale). Kinds: normal (std = scale), zeros, ones."""
    v, g0, g1 = cfg.vision, cfg.llm, cfg.expert
    L, N, K, H = g0.depth, g0.num_heads, g0.num_kv_heads, g0.head_dim
    D0, D1, F0, F1 = g0.width, g1.width, g0.mlp_dim, g1.mlp_dim
    W, VL, Vh, Vd, P = v.width, v.depth, v.num_heads, v.head_dim, v.patch
    A = cfg.action_dim
    s: dict[str, tuple[tuple[int, ...], str, float]] = {}

    def n(shape, fan_in):
        return (tuple(shape), "normal", 1.0 / math.sqrt(fan_in))

    img = "PaliGemma/img/"
    s[img + "embedding/kernel"] = n((P, P, 3, W), P * P * 3)
    s[img + "embedding/bias"] = ((W,), "zeros", 0)
    s[img + "pos_embedding"] = ((1, v.num_patches, W), "normal", 1.0 / math.sqrt(W))
    blk = img + "Transformer/encoderblock/"
    for ln in ("LayerNorm_0", "LayerNorm_1"):
        s[blk + f"{ln}/scale"] = ((VL, W), "ones", 0)
        s[blk + f"{ln}/bias"] = ((VL, W), "zeros", 0)
    s[blk + "MlpBlock_0/Dense_0/kernel"] = n((VL, W, v.mlp_dim), W)
    s[blk + "MlpBlock_0/Dense_0/bias"] = ((VL, v.mlp_dim), "zeros", 0)
    s[blk + "MlpBlock_0/Dense_1/kernel"] = n((VL, v.mlp_dim, W), v.mlp_dim)
    s[blk + "MlpBlock_0/Dense_1/bias"] = ((VL, W), "zeros", 0)
    mha = blk + "MultiHeadDotProductAttention_0/"
    for q in ("query", "key", "value"):
        s[mha + f"{q}/kernel"] = n((VL, W, Vh, Vd), W)
        s[mha + f"{q}/bias"] = ((VL, Vh, Vd), "zeros", 0)
    s[mha + "out/kernel"] = n((VL, Vh, Vd, W), W)
    s[mha + "out/bias"] = ((VL, W), "zeros", 0)
    s[img + "Transformer/encoder_norm/scale"] = ((W,), "ones", 0)
    s[img + "Transformer/encoder_norm/bias"] = ((W,), "zeros", 0)
    s[img + "head/kernel"] = n((W, D0), W)
    s[img + "head/bias"] = ((D0,), "zeros", 0)

    llm = "PaliGemma/llm/"
    s[llm + "embedder/input_embedding"] = ((cfg.vocab_size, D0), "normal", 1.0 / math.sqrt(D0))
    for e, (D, F, g) in enumerate(((D0, F0, g0), (D1, F1, g1))):
        sfx = "" if e == 0 else "_1"
        lay = llm + "layers/"
        s[lay + f"attn/q_einsum{sfx}/w"] = n((L, N, D, H), D)
        s[lay + f"attn/kv_einsum{sfx}/w"] = n((L, 2, K, D, H), D)
        s[lay + f"attn/attn_vec_einsum{sfx}/w"] = n((L, N, H, D), N * H)
        s[lay + f"mlp{sfx}/gating_einsum"] = n((L, 2, D, F), D)
        s[lay + f"mlp{sfx}/linear"] = n((L, F, D), F)
        ada = e == 1 and cfg.pi05
        for norm in ("pre_attention_norm", "pre_ffw_norm"):
            if ada:
                s[lay + f"{norm}{sfx}/Dense_0/kernel"] = ((L, D, 3 * D), "zeros", 0)
                s[lay + f"{norm}{sfx}/Dense_0/bias"] = ((L, 3 * D), "zeros", 0)
            else:
                s[lay + f"{norm}{sfx}/scale"] = ((L, D), "zeros", 0)
        if ada:
            s[llm + f"final_norm{sfx}/Dense_0/kernel"] = ((D, 3 * D), "zeros", 0)
            s[llm + f"final_norm{sfx}/Dense_0/bias"] = ((3 * D,), "zeros", 0)
        else:
            s[llm + f"final_norm{sfx}/scale"] = ((D,), "zeros", 0)
        lora = g.lora
        if lora is not None:
            r, b_kind = lora.rank, ("zeros" if lora.init_b == "zeros" else "normal")
            lo = (b_kind, 0.01 if b_kind == "normal" else 0)
            if "q" in lora.targets:
                s[lay + f"attn/q_einsum{sfx}/lora_a"] = ((L, N, D, r), "normal", 0.01)
                s[lay + f"attn/q_einsum{sfx}/lora_b"] = ((L, N, r, H), *lo)
            if "kv" in lora.targets:
                s[lay + f"attn/kv_einsum{sfx}/lora_a"] = ((L, 2, K, D, r), "normal", 0.01)
                s[lay + f"attn/kv_einsum{sfx}/lora_b"] = ((L, 2, K, r, H), *lo)
            if "attn_vec" in lora.targets:
                s[lay + f"attn/attn_vec_einsum{sfx}/lora_a"] = ((L, N, H, r), "normal", 0.01)
                s[lay + f"attn/attn_vec_einsum{sfx}/lora_b"] = ((L, N, r, D), *lo)
            if "ffn" in lora.targets:
                s[lay + f"mlp{sfx}/gating_einsum_lora_a"] = ((L, 2, D, r), "normal", 0.01)
                s[lay + f"mlp{sfx}/gating_einsum_lora_b"] = ((L, 2, r, F), *lo)
                s[lay + f"mlp{sfx}/linear_lora_a"] = ((L, F, r), "normal", 0.01)
                s[lay + f"mlp{sfx}/linear_lora_b"] = ((L, r, D), *lo)

    def dense(name, i, o):
        s[f"{name}/kernel"] = n((i, o), i)
        s[f"{name}/bias"] = ((o,), "zeros", 0)

    dense("action_in_proj", A, D1)
    dense("action_out_proj", D1, A)
    if cfg.pi05:
        dense("time_mlp_in", D1, D1)
        dense("time_mlp_out", D1, D1)
    else:
        dense("state_proj", A, D1)
        dense("action_time_mlp_in", 2 * D1, D1)
        dense("action_time_mlp_out", D1, D1)
    return s


def unflatten(flat: dict[str, Any]) -> Params:
    out: Params = {}
    for path, v in flat.items():
        node = out
        *parents, leaf = path.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def flatten(tree: Params, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "/"))
        else:
            out[key] = v
    return out


def _init_jnp(cfg: Pi0Config, seed: int = 0) -> Params:
    key = jax.random.key(seed)
    flat = {}
    for i, (path, (shape, kind, scale)) in enumerate(sorted(_specs(cfg).items())):
        if kind == "zeros":
            flat[path] = jnp.zeros(shape, jnp.float32)
        elif kind == "ones":
            flat[path] = jnp.ones(shape, jnp.float32)
        else:
            flat[path] = scale * jax.random.normal(jax.random.fold_in(key, i), shape, jnp.float32)
    return unflatten(flat)


def param_shapes(cfg: Pi0Config) -> Params:
    """The parameter tree as ``jax.ShapeDtypeStruct`` leaves (``jax.eval_shape``; nothing allocated)."""
    return jax.eval_shape(functools.partial(_init_jnp, cfg, 0))


def param_count(tree: Params) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(tree)))


def init_params(cfg: Pi0Config, seed: int = 0) -> Params:
    """Fresh float32 parameters filled from numpy (fast on CPU: no per-shape XLA compiles)."""
    rng = np.random.default_rng(seed)
    flat = {}
    for path, (shape, kind, scale) in sorted(_specs(cfg).items()):
        if kind == "zeros":
            flat[path] = np.zeros(shape, np.float32)
        elif kind == "ones":
            flat[path] = np.ones(shape, np.float32)
        else:
            flat[path] = (scale * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
    return unflatten(flat)


# ----------------------------------------------------------------------------- building blocks

def _dt(cfg: Pi0Config):
    return jnp.bfloat16 if cfg.dtype == "bfloat16" else jnp.float32


def _dense(x, p, dtype=None):
    """x [..., I] @ kernel [I, O] + bias, as one 2-D matmul."""
    k = p["kernel"]
    dtype = dtype or jnp.result_type(x.dtype, k.dtype)
    x2 = x.reshape(-1, x.shape[-1]).astype(dtype)
    y = x2 @ k.astype(dtype) + p["bias"].astype(dtype)
    return y.reshape(*x.shape[:-1], k.shape[-1])


def _layernorm(x, scale, bias, eps=1e-6):
    xf = x.astype(jnp.float32)
    mean = xf.mean(-1, keepdims=True)
    var = ((xf - mean) ** 2).mean(-1, keepdims=True)
    y = (xf - mean) * jax.lax.rsqrt(var + eps) * scale.astype(jnp.float32) + bias.astype(jnp.float32)
    return y.astype(x.dtype)


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


def posemb_sincos(t, dim: int, min_period: float = 4e-3, max_period: float = 4.0):
    """Sine-cosine time embedding for t in [0, 1]: [B] -> [B, dim]."""
    frac = jnp.linspace(0.0, 1.0, dim // 2)
    period = min_period * (max_period / min_period) ** frac
    phase = jnp.einsum("i,j->ij", t.astype(jnp.float32), 1.0 / period * 2 * jnp.pi,
                       precision=jax.lax.Precision.HIGHEST)
    return jnp.concatenate([jnp.sin(phase), jnp.cos(phase)], axis=-1)


def make_attn_mask(input_mask, ar):
    """allowed[b, i, j] = cumsum(ar)[j] <= cumsum(ar)[i] and mask[i] and mask[j] (i query, j key)."""
    ar = jnp.broadcast_to(ar, input_mask.shape)
    c = jnp.cumsum(ar.astype(jnp.int32), axis=1)
    allowed = c[:, None, :] <= c[:, :, None]
    return allowed & input_mask[:, None, :] & input_mask[:, :, None]


# ---- expert projections with optional LoRA (flattened 2-D matmuls; openpi's weight shapes)

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


# ----------------------------------------------------------------------------- SigLIP

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
        y = _layernorm(x, bp["LayerNorm_0"]["scale"], bp["LayerNorm_0"]["bias"])
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
        y = _layernorm(x, bp["LayerNorm_1"]["scale"], bp["LayerNorm_1"]["bias"])
        y = jax.nn.gelu(_dense(y, mlp["Dense_0"], dtype), approximate=True)
        x = x + _dense(y, mlp["Dense_1"], dtype)
        return x, None

    x, _ = jax.lax.scan(block, x, blocks)
    x = _layernorm(x, p_img["Transformer"]["encoder_norm"]["scale"], p_img["Transformer"]["encoder_norm"]["bias"])
    return _dense(x, p_img["head"], dtype)


# ----------------------------------------------------------------------------- prefix / suffix

def embed_prefix(cfg: Pi0Config, params: Params, obs: Observation):
    """Image tokens of the three cameras then language tokens: ([B,Tp,D0], mask [B,Tp], ar [Tp])."""
    p_img, p_llm = params["PaliGemma"]["img"], params["PaliGemma"]["llm"]
    toks, masks = [], []
    for key in IMAGE_KEYS:
        t = embed_image(cfg, p_img, obs.images[key])
        toks.append(t)
        masks.append(jnp.broadcast_to(obs.image_masks[key][:, None], t.shape[:2]))
    table = p_llm["embedder"]["input_embedding"]
    lang = jnp.take(table, obs.tokenized_prompt, axis=0)
    lang = (lang * jnp.asarray(math.sqrt(table.shape[-1]), table.dtype)).astype(_dt(cfg))
    toks.append(lang)
    masks.append(obs.tokenized_prompt_mask)
    tokens = jnp.concatenate(toks, axis=1)
    return tokens, jnp.concatenate(masks, axis=1), jnp.zeros(tokens.shape[1], bool)


def embed_suffix(cfg: Pi0Config, params: Params, obs: Observation, x_t, t):
    """pi0: [state token, action tokens]; pi0.5: [action tokens] + adaRMS condition.
    Returns (tokens [B,Ts,D1], mask [B,Ts], ar [Ts], cond [B,D1] | None)."""
    B, Ta, _ = x_t.shape
    D1 = cfg.expert.width
    emb = posemb_sincos(t, D1)
    act = _dense(x_t, params["action_in_proj"])
    if cfg.pi05:
        cond = jax.nn.swish(_dense(emb, params["time_mlp_in"]))
        cond = jax.nn.swish(_dense(cond, params["time_mlp_out"]))
        tokens = act
        ar = jnp.array([True] + [False] * (Ta - 1))
    else:
        state = _dense(obs.state, params["state_proj"])[:, None, :]
        h = jnp.concatenate([act, jnp.broadcast_to(emb[:, None, :], (B, Ta, D1))], axis=-1)
        h = _dense(jax.nn.swish(_dense(h, params["action_time_mlp_in"])), params["action_time_mlp_out"])
        tokens = jnp.concatenate([state.astype(h.dtype), h], axis=1)
        cond = None
        ar = jnp.array([True, True] + [False] * (Ta - 1))
    tokens = tokens.astype(_dt(cfg))
    return tokens, jnp.ones(tokens.shape[:2], bool), ar, cond


# ----------------------------------------------------------------------------- transformer

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


# ----------------------------------------------------------------------------- model functions

def _check_shape(what: str, x, want: tuple[int, ...]) -> None:
    if tuple(x.shape) != tuple(want):
        raise ValueError(f"{what}: expected shape {tuple(want)}, found {tuple(x.shape)}")


def check_observation(cfg: Pi0Config, obs: Observation) -> None:
    """Shape checks (static, so free under jit) with errors naming the field: the three image
    keys at the config's resolution, per-image masks [B], state [B, action_dim], prompt and
    mask [B, L]."""
    B = obs.state.shape[0] if obs.state.ndim else None
    _check_shape("observation.state", obs.state, (B, cfg.action_dim))
    S = cfg.vision.resolution
    missing = [k for k in IMAGE_KEYS if k not in obs.images or k not in obs.image_masks]
    if missing:
        raise ValueError(f"observation.images / image_masks: keys {missing} missing; expected all of {IMAGE_KEYS}")
    for k in IMAGE_KEYS:
        _check_shape(f"observation.images[{k!r}]", obs.images[k], (B, S, S, 3))
        _check_shape(f"observation.image_masks[{k!r}]", obs.image_masks[k], (B,))
    tp = obs.tokenized_prompt
    if tp.ndim != 2 or tp.shape[0] != B:
        raise ValueError(f"observation.tokenized_prompt: expected shape ({B}, L), found {tuple(tp.shape)}")
    _check_shape("observation.tokenized_prompt_mask", obs.tokenized_prompt_mask, tuple(tp.shape))



def _joint(cfg, params, obs, x_t, t):
    prefix, p_mask, p_ar = embed_prefix(cfg, params, obs)
    suffix, s_mask, s_ar, cond = embed_suffix(cfg, params, obs, x_t, t)
    mask = jnp.concatenate([p_mask, s_mask], axis=1)
    ar = jnp.concatenate([p_ar, s_ar])
    attn = make_attn_mask(mask, ar)
    positions = jnp.cumsum(mask, axis=1) - 1
    return prefix, suffix, cond, attn, positions, p_mask


def _velocity(cfg, params, out1):
    return _dense(out1[:, -cfg.action_horizon:], params["action_out_proj"], _dt(cfg)).astype(jnp.float32)


def compute_loss(cfg: Pi0Config, params: Params, obs: Observation, actions, rng, train: bool = False,
                 head_noise=None, remat: bool = True, augment: AugmentConfig | None = None):
    """Flow-matching loss per (example, action step): [B, T_a] (openpi_facts §3.7).

    t = Beta(1.5, 1) * 0.999 + 0.001 (t = 1 is noise), x_t = t eps + (1 - t) a,
    target u = eps - a, loss = mean over action dims of (v_t - u)^2 (padded dims
    included, as openpi). With ``train=True`` and an ``augment`` config the images are
    augmented first (``vla.augment``: openpi's crop / rotate / colour jitter, keyed by
    ``rng``); ``train`` alone changes nothing (openpi always augments in training — here
    the caller opts in). ``remat`` (default, as openpi's ``nn.remat``) recomputes each layer
    in the backward instead of stacking its activations: less memory, and on this CPU the
    train step is faster too (no large per-layer residual buffers).
    """
    check_observation(cfg, obs)
    B = obs.state.shape[0]
    _check_shape("compute_loss actions", actions, (B, cfg.action_horizon, cfg.action_dim))
    if head_noise is not None:
        _check_shape("compute_loss head_noise", head_noise, (cfg.num_layers, cfg.num_heads))
    noise_rng, time_rng, hn_rng = jax.random.split(rng, 3)
    if train and augment is not None:
        obs = augment_observation(jax.random.fold_in(rng, _AUGMENT_STREAM), obs, augment)
    actions = actions.astype(jnp.float32)
    eps = jax.random.normal(noise_rng, actions.shape)
    t = jax.random.beta(time_rng, 1.5, 1.0, (B,)) * 0.999 + 0.001
    x_t = t[:, None, None] * eps + (1 - t[:, None, None]) * actions
    u = eps - actions
    prefix, suffix, cond, attn, positions, _ = _joint(cfg, params, obs, x_t, t)
    (_, out1), _, _ = transformer(cfg, params["PaliGemma"]["llm"], [prefix, suffix], attn, positions,
                                  cond=(None, cond), head_noise=head_noise, noise_rng=hn_rng, remat=remat)
    v = _velocity(cfg, params, out1)
    return jnp.mean((v - u) ** 2, axis=-1)


def sample_actions(cfg: Pi0Config, params: Params, obs: Observation, noise=None, rng=None, num_steps: int = 10):
    """Euler integration of the flow from t = 1 (noise) to t = 0 with a prefix KV cache: [B, T_a, A]."""
    check_observation(cfg, obs)
    B = obs.state.shape[0]
    if noise is None:
        noise = jax.random.normal(rng if rng is not None else jax.random.key(0),
                                  (B, cfg.action_horizon, cfg.action_dim))
    _check_shape("sample_actions noise", noise, (B, cfg.action_horizon, cfg.action_dim))
    p_llm = params["PaliGemma"]["llm"]
    prefix, p_mask, p_ar = embed_prefix(cfg, params, obs)
    p_attn = make_attn_mask(p_mask, p_ar)
    p_pos = jnp.cumsum(p_mask, axis=1) - 1
    _, kv, _ = transformer(cfg, p_llm, [prefix, None], p_attn, p_pos)
    dt = -1.0 / num_steps

    def step(_, carry):
        x, t = carry
        suffix, s_mask, s_ar, cond = embed_suffix(cfg, params, obs, x, jnp.broadcast_to(t, (B,)))
        s_attn = make_attn_mask(s_mask, s_ar)
        full = jnp.concatenate([jnp.broadcast_to(p_mask[:, None, :], (B, suffix.shape[1], p_mask.shape[1])), s_attn],
                               axis=-1)
        pos = jnp.sum(p_mask, axis=-1)[:, None] + jnp.cumsum(s_mask, axis=1) - 1
        (_, out1), _, _ = transformer(cfg, p_llm, [None, suffix], full, pos, cond=(None, cond), kv_cache=kv)
        v = _velocity(cfg, params, out1)
        return x + dt * v, t + dt

    x, _ = jax.lax.fori_loop(0, num_steps, step, (noise.astype(jnp.float32), jnp.float32(1.0)))
    return x


def capture_heads(cfg: Pi0Config, params: Params, obs: Observation, position: str = "first_suffix", noise=None,
                  time: float = 1.0, return_attention: bool = False, attention_heads=None):
    """Per-head attention outputs (before the output projection) of every LLM layer at one
    token position, in one forward: [B, L, N, H] (f32).

    ``first_suffix`` (paper default): the first suffix token — pi0's state token (it attends
    the prefix and itself, so it does not depend on noise or time), pi0.5's first action
    token at x_t = ``noise`` and ``time`` (default: N(0,1) noise from key 0, t = 1, i.e.
    the first sampling step). ``last_prefix``: the last valid prefix token of each example
    (a prefix-only pass gives the same values, since the prefix never attends the suffix).

    Attention probabilities of that token (f32, over the S keys of the joint sequence) come
    back as a second output: with ``return_attention`` for every head, [B, L, N, S]; with
    ``attention_heads`` = a sequence of (layer, head) pairs for those heads only, [B, len, S].
    """
    if position not in POSITIONS:
        raise ValueError(f"capture position: expected one of {POSITIONS}, found {position!r}")
    heads = None
    if attention_heads is not None:
        heads = np.asarray(attention_heads, dtype=np.int64).reshape(-1, 2)
        L, N = cfg.num_layers, cfg.num_heads
        if len(heads) == 0 or (heads < 0).any() or (heads[:, 0] >= L).any() or (heads[:, 1] >= N).any():
            raise ValueError(f"capture_heads attention_heads: expected (layer, head) pairs with layer < {L} and "
                             f"head < {N}, found {attention_heads!r}")
    want_att = return_attention or heads is not None
    check_observation(cfg, obs)
    B = obs.state.shape[0]
    p_llm = params["PaliGemma"]["llm"]
    if position == "last_prefix":
        prefix, p_mask, p_ar = embed_prefix(cfg, params, obs)
        idx = p_mask.shape[1] - 1 - jnp.argmax(p_mask[:, ::-1], axis=1)
        _, _, cap = transformer(cfg, p_llm, [prefix, None], make_attn_mask(p_mask, p_ar),
                                jnp.cumsum(p_mask, axis=1) - 1, capture_index=idx, capture_attention=want_att)
    else:
        if noise is None:
            noise = jax.random.normal(jax.random.key(0), (B, cfg.action_horizon, cfg.action_dim))
        _check_shape("capture_heads noise", noise, (B, cfg.action_horizon, cfg.action_dim))
        t = jnp.full((B,), time, jnp.float32)
        prefix, suffix, cond, attn, positions, _ = _joint(cfg, params, obs, noise, t)
        idx = jnp.full((B,), prefix.shape[1], jnp.int32)
        _, _, cap = transformer(cfg, p_llm, [prefix, suffix], attn, positions, cond=(None, cond),
                                capture_index=idx, capture_attention=want_att)
    if not want_att:
        return cap.astype(jnp.float32)
    enc, probs = cap[0].astype(jnp.float32), cap[1].astype(jnp.float32)
    if heads is not None:
        probs = probs[:, heads[:, 0], heads[:, 1]]
    return enc, probs


# ----------------------------------------------------------------------------- jitted entry points

@functools.lru_cache(maxsize=None)
def jitted(cfg: Pi0Config, name: str, **static):
    """A cached ``jax.jit`` of ``compute_loss`` / ``sample_actions`` / ``capture_heads`` for ``cfg``."""
    fns = {"compute_loss": compute_loss, "sample_actions": sample_actions, "capture_heads": capture_heads}
    fn = functools.partial(fns[name], cfg, **static)
    return jax.jit(fn)
