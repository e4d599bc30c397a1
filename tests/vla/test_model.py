"""Model math: masks/positions, capture vs an independent recomputation, determinism,
capture/noise leave outputs unchanged, and the tiny model overfits a few examples."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vla_helpers import random_actions, random_obs
from robosteer_assets.vla import config as C
from robosteer_assets.vla import model as M

CFG = C.get_config("pi0_micro")
CFG05 = C.get_config("pi05_micro")


@pytest.fixture(scope="module")
def params():
    return M.init_params(CFG, seed=0)


def test_attention_mask_semantics():
    # prefix (3 tokens, one masked) | pi0 suffix: state (ar) | 2 actions (first ar)
    mask = jnp.array([[True, False, True, True, True, True]])
    ar = jnp.array([False, False, False, True, True, False])
    a = np.asarray(M.make_attn_mask(mask, ar)[0])
    prefix, state, acts = [0, 2], 3, [4, 5]
    for i in prefix:  # bidirectional prefix, never sees the suffix or the masked token
        assert a[i, prefix].all() and not a[i, [1, state] + acts].any()
    assert a[state, prefix + [state]].all() and not a[state, acts].any()  # state: prefix + itself
    for i in acts:  # actions: prefix, state and all actions
        assert a[i, prefix + [state] + acts].all()
    assert not a[1].any() and not a[:, 1].any()  # masked token neither attends nor is attended
    pos = np.asarray(jnp.cumsum(mask, axis=1) - 1)[0]
    assert list(pos) == [0, 0, 1, 2, 3, 4]  # masked tokens do not advance positions


def test_sample_actions_deterministic_and_finite(params):
    obs = random_obs(CFG)
    noise = jax.random.normal(jax.random.key(3), (2, CFG.action_horizon, CFG.action_dim))
    f = jax.jit(lambda p, o, n: M.sample_actions(CFG, p, o, noise=n))
    a1, a2 = f(params, obs, noise), f(params, obs, noise)
    assert a1.shape == (2, CFG.action_horizon, CFG.action_dim)
    assert np.array_equal(np.asarray(a1), np.asarray(a2)) and np.isfinite(np.asarray(a1)).all()
    a3 = f(params, obs, noise + 1.0)
    assert not np.allclose(np.asarray(a1), np.asarray(a3))


def test_kv_cache_matches_full_forward(params):
    """One Euler step through the cache equals the same step from a joint forward."""
    obs = random_obs(CFG)
    x = jax.random.normal(jax.random.key(4), (2, CFG.action_horizon, CFG.action_dim))
    t = jnp.ones(2)
    prefix, suffix, cond, attn, pos, _ = M._joint(CFG, params, obs, x, t)
    (_, out1), _, _ = M.transformer(CFG, params["PaliGemma"]["llm"], [prefix, suffix], attn, pos, cond=(None, cond))
    v_full = M._velocity(CFG, params, out1)
    one_step = M.sample_actions(CFG, params, obs, noise=x, num_steps=1)
    np.testing.assert_allclose(np.asarray(one_step), np.asarray(x - v_full), atol=2e-5)


def test_capture_equals_independent_recomputation(params):
    """Layer 0, every head, at pi0's state token: recomputed in numpy from the weights."""
    obs = random_obs(CFG, B=2)
    cap = np.asarray(M.capture_heads(CFG, params, obs))
    assert cap.shape == (2, CFG.num_layers, CFG.num_heads, CFG.head_dim)

    x_t = jax.random.normal(jax.random.key(0), (2, CFG.action_horizon, CFG.action_dim))
    prefix, suffix, cond, attn, pos, _ = M._joint(CFG, params, obs, x_t, jnp.ones(2))
    lay = M.flatten(params["PaliGemma"]["llm"]["layers"])
    w = {k: np.asarray(v[0], np.float64) for k, v in lay.items()}  # layer 0

    def rms(x, scale):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6) * (1 + scale)

    def rope(x, p):
        H = x.shape[-1]
        ts = 10_000 ** (2 * np.arange(H // 2) / H)
        th = p[..., None] / ts
        x1, x2 = x[..., : H // 2], x[..., H // 2:]
        return np.concatenate([x1 * np.cos(th) - x2 * np.sin(th), x2 * np.cos(th) + x1 * np.sin(th)], -1)

    xs = [np.asarray(prefix, np.float64), np.asarray(suffix, np.float64)]
    qs, ks, vs = [], [], []
    for e, sfx in enumerate(["", "_1"]):
        xn = rms(xs[e], w[f"pre_attention_norm{sfx}/scale"])
        qs.append(np.einsum("btd,ndh->btnh", xn, w[f"attn/q_einsum{sfx}/w"]))
        kv = np.einsum("btd,ckdh->cbtkh", xn, w[f"attn/kv_einsum{sfx}/w"])
        ks.append(kv[0][:, :, 0])
        vs.append(kv[1][:, :, 0])
    q, k, v = (np.concatenate(a, 1) for a in (qs, ks, vs))
    p = np.asarray(pos, np.float64)
    q = rope(q, p[:, :, None]) * CFG.head_dim ** -0.5
    k = rope(k[:, :, None, :], p[:, :, None])[:, :, 0]
    i = prefix.shape[1]  # the state token
    m = np.asarray(attn)[:, i]  # [B, S]
    for h in range(CFG.num_heads):
        logits = np.einsum("bh,bsh->bs", q[:, i, h], k)
        logits = np.where(m, logits, -np.inf)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        want = np.einsum("bs,bsh->bh", probs, v)
        np.testing.assert_allclose(cap[:, 0, h], want, rtol=2e-4, atol=2e-5)


def test_capture_and_zero_noise_do_not_change_outputs(params):
    obs, acts = random_obs(CFG), random_actions(CFG)
    rng = jax.random.key(7)
    base = M.compute_loss(CFG, params, obs, acts, rng)
    zero = M.compute_loss(CFG, params, obs, acts, rng, head_noise=jnp.zeros((CFG.num_layers, CFG.num_heads)))
    np.testing.assert_array_equal(np.asarray(base), np.asarray(zero))
    prefix, suffix, cond, attn, pos, _ = M._joint(CFG, params, obs, acts, jnp.full(2, 0.5))
    llm = params["PaliGemma"]["llm"]
    (_, o1), _, _ = M.transformer(CFG, llm, [prefix, suffix], attn, pos)
    (_, o2), _, cap = M.transformer(CFG, llm, [prefix, suffix], attn, pos, capture_index=jnp.array([3, 4]))
    np.testing.assert_array_equal(np.asarray(o1), np.asarray(o2))
    assert cap.shape == (2, CFG.num_layers, CFG.num_heads, CFG.head_dim)
    noisy = M.compute_loss(CFG, params, obs, acts, rng, head_noise=jnp.ones((CFG.num_layers, CFG.num_heads)))
    assert not np.allclose(np.asarray(base), np.asarray(noisy))


def test_pi05_capture_last_prefix_and_attention():
    p = M.init_params(CFG05, seed=1)
    obs = random_obs(CFG05)
    enc, att = M.capture_heads(CFG05, p, obs, position="last_prefix", return_attention=True)
    assert enc.shape == (2, CFG05.num_layers, CFG05.num_heads, CFG05.head_dim)
    np.testing.assert_allclose(np.asarray(att).sum(-1), 1.0, rtol=1e-5)
    first = M.capture_heads(CFG05, p, obs, position="first_suffix")
    assert np.isfinite(np.asarray(first)).all()
    with pytest.raises(ValueError, match="position"):
        M.capture_heads(CFG05, p, obs, position="middle")


def test_tiny_model_overfits_a_handful_of_examples(params):
    obs, acts = random_obs(CFG, B=4, seed=5), random_actions(CFG, B=4, seed=6)
    tx = optax.adam(3e-3)
    state = tx.init(params)
    rng = jax.random.key(0)  # fixed noise/time: a memorisable regression problem

    @jax.jit
    def step(p, s):
        loss, g = jax.value_and_grad(lambda p: M.compute_loss(CFG, p, obs, acts, rng).mean())(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    p, losses = params, []
    for _ in range(150):
        p, state, loss = step(p, state)
        losses.append(float(loss))
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])
