"""Mask-aware optax chain: masked entries stay bit-identical after many steps (weight decay and
Adam's eps included); the schedule has the paper's shape."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from robosteer_assets.training.optimizer import (OptimizerConfig, ScheduleConfig, full_mask_tree, make_schedule,
                                                 mask_aware_optimizer)


def _tree(rng):
    return {"attn": {"q": {"lora_a": jnp.asarray(rng.normal(size=(2, 4, 6, 3)), jnp.float32)}},
            "proj": {"kernel": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)}}


def _run(tx, params, steps=60):
    opt = tx.init(params)

    @jax.jit
    def step(params, opt, k):
        g = jax.tree_util.tree_map(lambda x: jax.random.normal(k, x.shape) * 10.0, params)
        u, opt = tx.update(g, opt, params)
        return optax.apply_updates(params, u), opt

    for i in range(steps):
        params, opt = step(params, opt, jax.random.key(i))
    return params


def test_masked_slices_bit_identical_after_many_steps():
    rng = np.random.default_rng(0)
    p0 = _tree(rng)
    sel = np.zeros((2, 4, 1, 1), np.float32)
    sel[1, 2] = 1
    masks = full_mask_tree(p0, {"attn/q/lora_a": sel})
    # large lr and weight decay make any leak visible
    opt, sch = OptimizerConfig(weight_decay=0.5), ScheduleConfig(warmup_steps=2, peak_lr=0.1, decay_steps=60)
    p = _run(mask_aware_optimizer(opt, sch, masks), p0)
    a0, a = np.asarray(p0["attn"]["q"]["lora_a"]), np.asarray(p["attn"]["q"]["lora_a"])
    keep = sel[..., 0, 0] == 0
    assert np.array_equal(a[keep], a0[keep])
    assert not np.allclose(a[1, 2], a0[1, 2])
    assert not np.allclose(np.asarray(p["proj"]["kernel"]), np.asarray(p0["proj"]["kernel"]))
    # without the final mask the decoupled weight decay would move the masked slices
    naive = optax.chain(optax.stateless(lambda u, params=None: jax.tree_util.tree_map(lambda x, m: x * m, u, masks)),
                        optax.clip_by_global_norm(1.0), optax.adamw(make_schedule(sch), weight_decay=0.5))
    pn = _run(naive, p0)
    assert not np.array_equal(np.asarray(pn["attn"]["q"]["lora_a"])[keep], a0[keep])


def test_clip_sees_only_masked_gradient():
    p0 = {"w": jnp.ones((2, 2, 1, 1))}
    m = np.zeros((2, 2, 1, 1), np.float32)
    m[0, 0] = 1
    tx = mask_aware_optimizer(OptimizerConfig(), ScheduleConfig(warmup_steps=0, peak_lr=1.0, decay_steps=10),
                              full_mask_tree(p0, {"w": m}))
    g = {"w": jnp.asarray([[[[0.5]], [[100.0]]], [[[100.0]], [[100.0]]]])}
    clip_state = tx.init(p0)
    u, _ = tx.update(g, clip_state, p0)
    # masked-away huge entries did not shrink the selected gradient via the global-norm clip:
    # Adam's first step is lr * g/|g| = 1 for the kept entry
    assert np.isclose(float(u["w"][0, 0, 0, 0]), -1.0, atol=1e-4)


def test_schedule_paper_defaults():
    s = ScheduleConfig()
    assert (s.warmup_steps, s.peak_lr, s.decay_steps, s.decay_lr) == (200, 2.5e-5, 5000, 2.5e-6)
    o = OptimizerConfig()
    assert (o.b1, o.b2, o.eps, o.weight_decay, o.clip_gradient_norm) == (0.9, 0.95, 1e-8, 1e-10, 1.0)
    f = make_schedule(s)
    assert np.isclose(float(f(0)), 2.5e-5 / 201) and np.isclose(float(f(200)), 2.5e-5)
    assert np.isclose(float(f(5000)), 2.5e-6) and float(f(2600)) < 2.5e-5


def test_mask_that_does_not_fit_is_rejected():
    p0 = {"w": jnp.ones((2, 3))}
    with pytest.raises(ValueError):
        full_mask_tree(p0, {"w": np.ones((4, 1))})
    with pytest.raises(ValueError, match="not among the trainable"):
        full_mask_tree(p0, {"v": np.ones(1)})
