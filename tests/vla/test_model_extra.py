"""Model details beyond the core math: LoRA (zero-B start, equality with merged weights),
pi0.5's KV cache, last-prefix capture vs a numpy recomputation, chosen-head attention,
head-noise determinism, bf16, input validation, Observation.from_dict, jit cache."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vla_helpers import random_actions, random_obs
from robosteer_assets.vla import config as C
from robosteer_assets.vla import model as M
from robosteer_assets.vla.observation import Observation

CFG = C.get_config("pi0_micro")
CFG05 = C.get_config("pi05_micro")


@pytest.fixture(scope="module")
def params():
    return M.init_params(CFG, seed=0)


@pytest.fixture(scope="module")
def params05():
    return M.init_params(CFG05, seed=1)


def _with_base(lora_params, base):
    """The LoRA tree with every non-LoRA leaf taken from ``base``."""
    flat, b = M.flatten(lora_params), M.flatten(base)
    return M.unflatten({k: (v if "lora" in k else b[k]) for k, v in flat.items()})


def test_lora_zero_b_starts_at_the_base_model(params):
    lcfg = CFG.replace(lora=C.LoRAConfig(4, 4.0, frozenset({"q", "attn_vec", "ffn"}), init_b="zeros"))
    lp = _with_base(M.init_params(lcfg, seed=3), params)
    flat = M.flatten(lp)
    assert all(not np.any(v) for k, v in flat.items() if k.endswith("lora_b"))
    assert "PaliGemma/llm/layers/attn/kv_einsum/lora_a" not in flat  # kv not targeted
    assert "PaliGemma/llm/layers/attn/q_einsum_1/lora_a" not in flat  # expert 1 has no LoRA
    obs, acts, rng = random_obs(CFG), random_actions(CFG), jax.random.key(2)
    np.testing.assert_allclose(np.asarray(M.compute_loss(lcfg, lp, obs, acts, rng)),
                               np.asarray(M.compute_loss(CFG, params, obs, acts, rng)), rtol=1e-6, atol=1e-7)


def test_lora_equals_merged_weights(params):
    """y = x W + s (x A) B on every target (FFN unscaled, as openpi) equals the base model with
    W + s A B merged in numpy. rsLoRA with alpha != rank exercises the scaling."""
    lora = C.LoRAConfig(4, 8.0, rslora=True)
    lcfg = CFG.replace(lora=lora, action_expert_lora=C.LoRAConfig(2, 6.0))
    lp = _with_base(M.init_params(lcfg, seed=4), params)
    flat = {k: np.asarray(v, np.float64) for k, v in M.flatten(lp).items()}
    merged = {k: v.copy() for k, v in flat.items() if "lora" not in k}
    lay = "PaliGemma/llm/layers/"
    for sfx, s in (("", lora.scaling), ("_1", 6.0 / 2)):
        assert s != 1.0
        for name, eq in (("q_einsum", "lndr,lnrh->lndh"), ("kv_einsum", "lckdr,lckrh->lckdh"),
                         ("attn_vec_einsum", "lnhr,lnrd->lnhd")):
            pre = f"{lay}attn/{name}{sfx}/"
            merged[pre + "w"] += s * np.einsum(eq, flat[pre + "lora_a"], flat[pre + "lora_b"])
        mlp = f"{lay}mlp{sfx}/"
        merged[mlp + "gating_einsum"] += np.einsum("lcdr,lcrf->lcdf", flat[mlp + "gating_einsum_lora_a"],
                                                   flat[mlp + "gating_einsum_lora_b"])
        merged[mlp + "linear"] += np.einsum("lfr,lrd->lfd", flat[mlp + "linear_lora_a"], flat[mlp + "linear_lora_b"])
    merged = M.unflatten({k: v.astype(np.float32) for k, v in merged.items()})
    obs, acts, rng = random_obs(CFG), random_actions(CFG), jax.random.key(5)
    got = np.asarray(M.compute_loss(lcfg, lp, obs, acts, rng))
    want = np.asarray(M.compute_loss(CFG, merged, obs, acts, rng))
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-5)
    assert not np.allclose(got, np.asarray(M.compute_loss(CFG, params, obs, acts, rng)), rtol=1e-3)


def test_pi05_kv_cache_matches_full_forward(params05):
    """adaRMS path: one cached Euler step equals the joint forward at t = 1."""
    obs = random_obs(CFG05)
    x = jax.random.normal(jax.random.key(8), (2, CFG05.action_horizon, CFG05.action_dim))
    prefix, suffix, cond, attn, pos, _ = M._joint(CFG05, params05, obs, x, jnp.ones(2))
    assert cond is not None and cond.shape == (2, CFG05.expert.width)
    (_, out1), _, _ = M.transformer(CFG05, params05["PaliGemma"]["llm"], [prefix, suffix], attn, pos,
                                    cond=(None, cond))
    v = M._velocity(CFG05, params05, out1)
    step = M.sample_actions(CFG05, params05, obs, noise=x, num_steps=1)
    np.testing.assert_allclose(np.asarray(step), np.asarray(x - v), atol=2e-5)


def _rms(x, scale):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6) * (1 + scale)


def _rope(x, p):
    H = x.shape[-1]
    th = p[..., None] / 10_000 ** (2 * np.arange(H // 2) / H)
    x1, x2 = x[..., : H // 2], x[..., H // 2:]
    return np.concatenate([x1 * np.cos(th) - x2 * np.sin(th), x2 * np.cos(th) + x1 * np.sin(th)], -1)


def test_last_prefix_capture_equals_numpy_recomputation(params05):
    """Examples with different prompt lengths: the captured token is each example's last valid
    prefix token; layer 0 recomputed in float64 from the weights (masked tokens skipped)."""
    obs = random_obs(CFG05, B=2, prompt_len=7)
    tmask = np.asarray(obs.tokenized_prompt_mask).copy()
    tmask[1, 4:] = False
    obs = dataclasses.replace(obs, tokenized_prompt_mask=jnp.asarray(tmask))
    cap = np.asarray(M.capture_heads(CFG05, params05, obs, position="last_prefix"))
    assert cap.shape == (2, CFG05.num_layers, CFG05.num_heads, CFG05.head_dim)

    prefix, p_mask, _ = M.embed_prefix(CFG05, params05, obs)
    x = np.asarray(prefix, np.float64)
    m = np.asarray(p_mask)
    lay = {k: np.asarray(v[0], np.float64) for k, v in M.flatten(params05["PaliGemma"]["llm"]["layers"]).items()}
    xn = _rms(x, lay["pre_attention_norm/scale"])
    q = np.einsum("btd,ndh->btnh", xn, lay["attn/q_einsum/w"])
    kv = np.einsum("btd,ckdh->cbtkh", xn, lay["attn/kv_einsum/w"])
    pos = (np.cumsum(m, axis=1) - 1).astype(np.float64)
    q = _rope(q, pos[:, :, None]) * CFG05.head_dim ** -0.5
    k = _rope(kv[0], pos[:, :, None])[:, :, 0]
    v = kv[1][:, :, 0]
    n_img = 3 * CFG05.vision.num_patches
    for b, last in enumerate([n_img + 6, n_img + 3]):
        assert m[b, last] and not m[b, last + 1:].any()
        logits = np.where(m[b], np.einsum("nh,sh->ns", q[b, last], k[b]), -np.inf)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        np.testing.assert_allclose(cap[b, 0], probs @ v[b], rtol=2e-4, atol=2e-5)


def test_pi0_state_token_capture_ignores_noise_and_time(params):
    obs = random_obs(CFG)
    a = M.capture_heads(CFG, params, obs, noise=jnp.zeros((2, CFG.action_horizon, CFG.action_dim)), time=0.3)
    b = M.capture_heads(CFG, params, obs)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_chosen_heads_attention(params05):
    obs = random_obs(CFG05)
    enc, full = M.capture_heads(CFG05, params05, obs, return_attention=True)
    heads = [(0, 3), (1, 7), (1, 0)]
    enc2, sel = M.capture_heads(CFG05, params05, obs, attention_heads=heads)
    np.testing.assert_array_equal(np.asarray(enc), np.asarray(enc2))
    assert sel.shape == (2, 3, full.shape[-1])
    for i, (l, n) in enumerate(heads):
        np.testing.assert_array_equal(np.asarray(sel[:, i]), np.asarray(full[:, l, n]))
    # the first action token of pi0.5 attends the valid prefix and the actions, never masked slots
    S_img = CFG05.vision.num_patches
    assert not np.asarray(full)[:, :, :, 2 * S_img:3 * S_img].any()  # right wrist camera is masked
    with pytest.raises(ValueError, match="attention_heads"):
        M.capture_heads(CFG05, params05, obs, attention_heads=[(CFG05.num_layers, 0)])


def test_head_noise_is_deterministic_given_rng_and_targets_heads(params):
    obs, acts = random_obs(CFG), random_actions(CFG)
    std = np.zeros((CFG.num_layers, CFG.num_heads), np.float32)
    std[1, 2] = 0.5
    f = jax.jit(lambda r, hn: M.compute_loss(CFG, params, obs, acts, r, head_noise=hn))
    a, b = f(jax.random.key(1), std), f(jax.random.key(1), std)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    c = f(jax.random.key(2), std)
    base = f(jax.random.key(2), np.zeros_like(std))
    assert not np.allclose(np.asarray(c), np.asarray(base))
    with pytest.raises(ValueError, match="head_noise"):
        M.compute_loss(CFG, params, obs, acts, jax.random.key(1), head_noise=jnp.zeros((CFG.num_heads,)))


def test_bfloat16_config_runs_close_to_float32(params):
    cfg16 = CFG.replace(dtype="bfloat16")
    p16 = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.bfloat16), params)
    obs, acts, rng = random_obs(CFG), random_actions(CFG), jax.random.key(3)
    l32 = np.asarray(M.compute_loss(CFG, params, obs, acts, rng))
    l16 = np.asarray(M.compute_loss(cfg16, p16, obs, acts, rng))
    assert l16.dtype == np.float32 and np.isfinite(l16).all()
    np.testing.assert_allclose(l16.mean(), l32.mean(), rtol=0.05)
    noise = jax.random.normal(jax.random.key(4), (2, CFG.action_horizon, CFG.action_dim))
    s16 = M.sample_actions(cfg16, p16, obs, noise=noise)
    assert s16.dtype == jnp.float32 and np.isfinite(np.asarray(s16)).all()
    cap = M.capture_heads(cfg16, p16, obs)
    assert cap.dtype == jnp.float32


def test_bad_inputs_name_the_field(params):
    obs, acts, rng = random_obs(CFG), random_actions(CFG), jax.random.key(0)
    with pytest.raises(ValueError, match=r"observation.state.*\(2, 8\)"):
        M.compute_loss(CFG, params, dataclasses.replace(obs, state=jnp.zeros((2, 7))), acts, rng)
    small = {**obs.images, "base_0_rgb": jnp.zeros((2, 96, 96, 3))}
    with pytest.raises(ValueError, match=r"images\['base_0_rgb'\].*224"):
        M.sample_actions(CFG, params, dataclasses.replace(obs, images=small))
    with pytest.raises(ValueError, match="actions"):
        M.compute_loss(CFG, params, obs, acts[:, :2], rng)
    with pytest.raises(ValueError, match="noise"):
        M.sample_actions(CFG, params, obs, noise=jnp.zeros((2, 1, CFG.action_dim)))


def test_observation_from_dict():
    B, L = 2, 5
    img = np.zeros((B, 224, 224, 3), np.uint8)
    img[0, 0, 0] = 255
    d = {"image": {k: img for k in C.IMAGE_KEYS}, "image_mask": {"right_wrist_0_rgb": np.array([False, True])},
         "state": np.ones((B, 8)), "tokenized_prompt": np.ones((B, L), np.int64),
         "tokenized_prompt_mask": np.ones((B, L), np.int64)}
    obs = Observation.from_dict(d)
    base = np.asarray(obs.images["base_0_rgb"])
    assert base.dtype == np.float32 and base[0, 0, 0, 0] == 1.0 and base[0, 0, 1, 0] == -1.0
    assert list(obs.images) == list(C.IMAGE_KEYS)
    assert np.asarray(obs.image_masks["base_0_rgb"]).tolist() == [True, True]
    assert np.asarray(obs.image_masks["right_wrist_0_rgb"]).tolist() == [False, True]
    assert obs.tokenized_prompt.dtype == jnp.int32 and obs.tokenized_prompt_mask.dtype == jnp.bool_
    assert obs.batch_size == B
    leaves = jax.tree_util.tree_leaves(obs)
    assert len(leaves) == 3 + 3 + 3  # a pytree: images, masks, state, prompt, prompt mask
    with pytest.raises(ValueError, match="right_wrist_0_rgb"):
        Observation.from_dict({**d, "image": {"base_0_rgb": img, "left_wrist_0_rgb": img}})


def test_jitted_entry_points_are_cached_and_match(params):
    f = M.jitted(CFG, "sample_actions", num_steps=3)
    assert f is M.jitted(CFG, "sample_actions", num_steps=3)
    obs = random_obs(CFG)
    noise = jax.random.normal(jax.random.key(9), (2, CFG.action_horizon, CFG.action_dim))
    np.testing.assert_allclose(np.asarray(f(params, obs, noise=noise)),
                               np.asarray(M.sample_actions(CFG, params, obs, noise=noise, num_steps=3)),
                               rtol=1e-5, atol=1e-5)


def test_pi05_first_action_capture_equals_numpy_recomputation(params05):
    """pi0.5's suffix and adaRMS recomputed in float64: sin-cos time embedding -> time MLP with
    swish after both layers -> adaRMS (scale, shift) of expert 1; layer 0 at the first action."""
    rng = np.random.default_rng(7)
    flat = {k: np.asarray(v) for k, v in M.flatten(params05).items()}
    for k in flat:  # adaRMS kernels start at zero: randomise them so the condition matters
        if "_1/Dense_0" in k:
            flat[k] = (0.1 * rng.standard_normal(flat[k].shape)).astype(np.float32)
    p = M.unflatten(flat)
    obs = random_obs(CFG05, B=2)
    t = 0.37
    x_t = rng.standard_normal((2, CFG05.action_horizon, CFG05.action_dim)).astype(np.float32)
    cap = np.asarray(M.capture_heads(CFG05, p, obs, position="first_suffix", noise=jnp.asarray(x_t), time=t))

    f = {k: v.astype(np.float64) for k, v in flat.items()}
    D1 = CFG05.expert.width
    frac = np.linspace(0.0, 1.0, D1 // 2)
    period = 4e-3 * (4.0 / 4e-3) ** frac
    emb = np.concatenate([np.sin(t * 2 * np.pi / period), np.cos(t * 2 * np.pi / period)])
    swish = lambda z: z / (1 + np.exp(-z))  # noqa: E731
    cond = swish(emb @ f["time_mlp_in/kernel"] + f["time_mlp_in/bias"])
    cond = swish(cond @ f["time_mlp_out/kernel"] + f["time_mlp_out/bias"])
    suffix = x_t.astype(np.float64) @ f["action_in_proj/kernel"] + f["action_in_proj/bias"]  # [B, Ta, D1]
    prefix, p_mask, _ = M.embed_prefix(CFG05, p, obs)
    prefix, p_mask = np.asarray(prefix, np.float64), np.asarray(p_mask)

    lay = "PaliGemma/llm/layers/"
    l0 = {k[len(lay):]: v[0] for k, v in f.items() if k.startswith(lay)}
    x0 = _rms(prefix, l0["pre_attention_norm/scale"])
    mod = cond @ l0["pre_attention_norm_1/Dense_0/kernel"] + l0["pre_attention_norm_1/Dense_0/bias"]
    scale, shift = mod[:D1], mod[D1:2 * D1]
    r = suffix / np.sqrt((suffix ** 2).mean(-1, keepdims=True) + 1e-6)
    x1 = r * (1 + scale) + shift
    qs, ks, vs = [], [], []
    for x, sfx in ((x0, ""), (x1, "_1")):
        qs.append(np.einsum("btd,ndh->btnh", x, l0[f"attn/q_einsum{sfx}/w"]))
        kv = np.einsum("btd,ckdh->cbtkh", x, l0[f"attn/kv_einsum{sfx}/w"])
        ks.append(kv[0][:, :, 0])
        vs.append(kv[1][:, :, 0])
    q, k, v = (np.concatenate(a, 1) for a in (qs, ks, vs))
    mask = np.concatenate([p_mask, np.ones((2, CFG05.action_horizon), bool)], 1)
    pos = (np.cumsum(mask, 1) - 1).astype(np.float64)
    q = _rope(q, pos[:, :, None]) * CFG05.head_dim ** -0.5
    k = _rope(k[:, :, None, :], pos[:, :, None])[:, :, 0]
    i = prefix.shape[1]
    for b in range(2):
        logits = np.where(mask[b], np.einsum("nh,sh->ns", q[b, i], k[b]), -np.inf)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        np.testing.assert_allclose(cap[b, 0], probs @ v[b], rtol=5e-4, atol=5e-5)


def test_siglip_equals_numpy_recomputation(params):
    """The image encoder in float64: patches in row-major grid order through the HWIO patch
    kernel, + pos-emb, pre-LN blocks (MHA with biases, q / sqrt(head_dim); GELU-tanh MLP),
    encoder_norm, head."""
    v = CFG.vision
    img = np.random.default_rng(11).uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
    rng = np.random.default_rng(12)  # randomise biases and LN scales too (they start at 0 / 1)
    flat = {k: (np.asarray(a) + 0.2 * rng.standard_normal(np.shape(a))).astype(np.float32)
            for k, a in M.flatten(params["PaliGemma"]["img"]).items()}
    got = np.asarray(M.embed_image(CFG, M.unflatten(flat), jnp.asarray(img)))
    f = {k: a.astype(np.float64) for k, a in flat.items()}
    P, g = v.patch, 224 // v.patch
    patches = img.astype(np.float64).reshape(2, g, P, g, P, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, g * g, -1)
    x = patches @ f["embedding/kernel"].reshape(-1, v.width) + f["embedding/bias"] + f["pos_embedding"]

    def ln(z, s, b):
        mu = z.mean(-1, keepdims=True)
        return (z - mu) / np.sqrt(((z - mu) ** 2).mean(-1, keepdims=True) + 1e-6) * s + b

    def gelu(z):
        return 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)))

    blk = "Transformer/encoderblock/"
    for layer in range(v.depth):
        w = {k[len(blk):]: a[layer] for k, a in f.items() if k.startswith(blk)}
        y = ln(x, w["LayerNorm_0/scale"], w["LayerNorm_0/bias"])
        mha = "MultiHeadDotProductAttention_0/"
        q, k, val = (np.einsum("btd,dnh->btnh", y, w[mha + f"{n}/kernel"]) + w[mha + f"{n}/bias"]
                     for n in ("query", "key", "value"))
        logits = np.einsum("bqnh,bknh->bnqk", q / np.sqrt(v.head_dim), k)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        att = np.einsum("bnqk,bknh->bqnh", probs, val)
        x = x + np.einsum("bqnh,nhd->bqd", att, w[mha + "out/kernel"]) + w[mha + "out/bias"]
        y = ln(x, w["LayerNorm_1/scale"], w["LayerNorm_1/bias"])
        y = gelu(y @ w["MlpBlock_0/Dense_0/kernel"] + w["MlpBlock_0/Dense_0/bias"])
        x = x + y @ w["MlpBlock_0/Dense_1/kernel"] + w["MlpBlock_0/Dense_1/bias"]
    x = ln(x, f["Transformer/encoder_norm/scale"], f["Transformer/encoder_norm/bias"])
    want = x @ f["head/kernel"] + f["head/bias"]
    assert got.shape == (2, v.num_patches, CFG.llm.width)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_jitted_capture_with_static_options(params05):
    obs = random_obs(CFG05)
    f = M.jitted(CFG05, "capture_heads", position="last_prefix", attention_heads=[(1, 2), (0, 0)])
    assert f is M.jitted(CFG05, "capture_heads", attention_heads=((1, 2), (0, 0)), position="last_prefix")
    enc, att = f(params05, obs)
    enc2, att2 = M.capture_heads(CFG05, params05, obs, position="last_prefix", attention_heads=[(1, 2), (0, 0)])
    np.testing.assert_allclose(np.asarray(enc), np.asarray(enc2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(att), np.asarray(att2), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="jitted"):
        M.jitted(CFG05, "forward")
