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

Modules: ``siglip`` (image encoder), ``gemma`` (the two-expert stack, masks, RoPE,
norms), ``lora`` (the einsums with optional LoRA), ``layers`` (dense, dtype); this module
holds the parameter tree, prefix / suffix embedding, loss, sampling and head capture, and
re-exports ``transformer`` / ``make_attn_mask`` / ``embed_image``.

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
from robosteer_assets.vla.config import IMAGE_KEYS, Pi0Config
from robosteer_assets.vla.gemma import BIG_NEG, make_attn_mask, transformer  # noqa: F401  (re-exported)
from robosteer_assets.vla.layers import act_dtype as _dt
from robosteer_assets.vla.layers import dense as _dense
from robosteer_assets.vla.observation import Observation
from robosteer_assets.vla.siglip import embed_image

Params = dict[str, Any]
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


def param_shapes(cfg: Pi0Config) -> Params:
    """The parameter tree as float32 ``jax.ShapeDtypeStruct`` leaves (nothing allocated)."""
    return unflatten({path: jax.ShapeDtypeStruct(shape, jnp.float32) for path, (shape, _, _) in _specs(cfg).items()})


def param_count(tree: Params) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(tree)))


def init_params(cfg: Pi0Config, seed: int = 0, *, traceable: bool = False) -> Params:
    """Fresh float32 parameters following ``_specs`` (normal with the given std, zeros, ones).

    By default numpy fills them on the host (fast on CPU: no per-shape XLA compiles).
    ``traceable=True`` draws them with ``jax.random`` instead (leaf ``i`` of the sorted paths from
    ``fold_in(key(seed), i)``), so the tree can be built under ``jax.jit`` (on the device, for the
    real model) or ``jax.eval_shape`` / ``nnx.eval_shape`` (nothing allocated)."""
    if traceable:
        xp, key = jnp, jax.random.key(seed)

        def normal(i, shape):
            return jax.random.normal(jax.random.fold_in(key, i), shape, jnp.float32)
    else:
        xp, rng = np, np.random.default_rng(seed)

        def normal(i, shape):
            return rng.standard_normal(shape, dtype=np.float32)
    flat = {}
    for i, (path, (shape, kind, scale)) in enumerate(sorted(_specs(cfg).items())):
        if kind == "zeros":
            flat[path] = xp.zeros(shape, xp.float32)
        elif kind == "ones":
            flat[path] = xp.ones(shape, xp.float32)
        else:
            flat[path] = (scale * normal(i, shape)).astype(xp.float32)
    return unflatten(flat)


# ----------------------------------------------------------------------------- building blocks

def posemb_sincos(t, dim: int, min_period: float = 4e-3, max_period: float = 4.0):
    """Sine-cosine time embedding for t in [0, 1]: [B] -> [B, dim]."""
    frac = jnp.linspace(0.0, 1.0, dim // 2)
    period = min_period * (max_period / min_period) ** frac
    phase = jnp.einsum("i,j->ij", t.astype(jnp.float32), 1.0 / period * 2 * jnp.pi,
                       precision=jax.lax.Precision.HIGHEST)
    return jnp.concatenate([jnp.sin(phase), jnp.cos(phase)], axis=-1)


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

_JITTABLE = ("compute_loss", "sample_actions", "capture_heads")


def _hashable(v):
    if isinstance(v, (list, tuple)):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, np.ndarray):
        return _hashable(v.tolist())
    return v


def jitted(cfg: Pi0Config, name: str, **static):
    """A cached ``jax.jit`` of ``compute_loss`` / ``sample_actions`` / ``capture_heads`` for
    ``cfg`` with ``static`` keyword arguments bound (e.g. ``num_steps=10``,
    ``position="last_prefix"``, ``attention_heads=[(0, 3)]``; lists become tuples)."""
    if name not in _JITTABLE:
        raise ValueError(f"jitted: expected one of {_JITTABLE}, found {name!r}")
    return _jitted(cfg, name, tuple(sorted((k, _hashable(v)) for k, v in static.items())))


@functools.lru_cache(maxsize=None)
def _jitted(cfg: Pi0Config, name: str, static: tuple):
    fn = {"compute_loss": compute_loss, "sample_actions": sample_actions, "capture_heads": capture_heads}[name]
    return jax.jit(functools.partial(fn, cfg, **dict(static)))
