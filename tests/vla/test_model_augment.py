"""Training-time image augmentation (openpi's crop / rotate / colour jitter)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vla_helpers import random_actions, random_obs
from robosteer_assets.vla import augment as A
from robosteer_assets.vla import config as C
from robosteer_assets.vla import model as M

CFG = C.get_config("pi0_micro")
AUG = jax.jit(A.augment_observation, static_argnums=2)  # compiled (and cached): eager vmap is slow
OFF = A.AugmentConfig(crop_scale=1.0, max_rotation_deg=0.0, brightness=0.0, contrast=0.0, saturation=0.0)


def test_all_off_is_identity():
    obs = random_obs(CFG, B=2)
    out = AUG(jax.random.key(0), obs, OFF)
    for k in C.IMAGE_KEYS:
        np.testing.assert_allclose(np.asarray(out.images[k]), np.asarray(obs.images[k]), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(out.state), np.asarray(obs.state))


def test_rotation_by_90_degrees_is_rot90():
    img = jnp.asarray(np.random.default_rng(0).uniform(size=(9, 9, 3)), jnp.float32)
    out = np.asarray(A._rotate(img, np.pi / 2))
    matches = [k for k in (1, 3) if np.allclose(out, np.rot90(np.asarray(img), k, axes=(0, 1)), atol=1e-5)]
    assert len(matches) == 1
    small = np.asarray(A._rotate(img, np.radians(3.0)))
    assert np.abs(small[4, 4] - np.asarray(img)[4, 4]).max() < 1e-5  # the centre stays


def test_geometry_only_on_non_wrist_cameras_and_per_example():
    obs = random_obs(CFG, B=3, wrist_right_masked=False)
    geo = A.AugmentConfig(brightness=0.0, contrast=0.0, saturation=0.0)
    out = AUG(jax.random.key(1), obs, geo)
    for k in ("left_wrist_0_rgb", "right_wrist_0_rgb"):
        np.testing.assert_allclose(np.asarray(out.images[k]), np.asarray(obs.images[k]), atol=1e-6)
    base, orig = np.asarray(out.images["base_0_rgb"]), np.asarray(obs.images["base_0_rgb"])
    assert base.shape == orig.shape and base.min() >= -1 - 1e-6 and base.max() <= 1 + 1e-6
    assert not np.allclose(base, orig)
    # the same image in every slot gets different crops / angles per example
    same = obs.images["base_0_rgb"][:1].repeat(3, axis=0)
    obs2 = obs.__class__(images={**obs.images, "base_0_rgb": same}, image_masks=obs.image_masks, state=obs.state,
                         tokenized_prompt=obs.tokenized_prompt, tokenized_prompt_mask=obs.tokenized_prompt_mask)
    b2 = np.asarray(AUG(jax.random.key(1), obs2, geo).images["base_0_rgb"])
    assert not np.allclose(b2[0], b2[1]) and not np.allclose(b2[1], b2[2])


def test_brightness_is_a_bounded_scale_and_deterministic():
    img = jnp.full((1, 224, 224, 3), -0.5)  # 0.25 in [0, 1]: no clipping for factors in [0.7, 1.3]
    obs = random_obs(CFG, B=1)
    obs = obs.__class__(images={k: img for k in C.IMAGE_KEYS}, image_masks=obs.image_masks, state=obs.state,
                        tokenized_prompt=obs.tokenized_prompt, tokenized_prompt_mask=obs.tokenized_prompt_mask)
    cfg = A.AugmentConfig(crop_scale=1.0, max_rotation_deg=0.0, contrast=0.0, saturation=0.0)
    out = AUG(jax.random.key(2), obs, cfg)
    again = AUG(jax.random.key(2), obs, cfg)
    for k in C.IMAGE_KEYS:
        x01 = (np.asarray(out.images[k]) + 1) / 2
        factor = x01 / 0.25
        assert np.allclose(factor, factor.flat[0], atol=1e-5) and 0.7 - 1e-6 <= factor.flat[0] <= 1.3 + 1e-6
        np.testing.assert_array_equal(np.asarray(out.images[k]), np.asarray(again.images[k]))


def test_compute_loss_augments_only_when_asked():
    params = M.init_params(CFG, seed=0)
    obs, acts, rng = random_obs(CFG), random_actions(CFG), jax.random.key(3)
    plain = np.asarray(M.compute_loss(CFG, params, obs, acts, rng))
    np.testing.assert_array_equal(np.asarray(M.compute_loss(CFG, params, obs, acts, rng, train=True)), plain)
    aug = np.asarray(M.compute_loss(CFG, params, obs, acts, rng, train=True, augment=A.AugmentConfig()))
    assert np.isfinite(aug).all() and not np.allclose(aug, plain)
    np.testing.assert_array_equal(
        np.asarray(M.compute_loss(CFG, params, obs, acts, rng, train=False, augment=A.AugmentConfig())), plain)


def test_bad_config():
    with pytest.raises(ValueError, match="crop_scale"):
        A.AugmentConfig(crop_scale=1.5)
    with pytest.raises(ValueError, match="brightness"):
        A.AugmentConfig(brightness=-0.1)


def test_composed_crop_matches_resize_of_the_crop():
    """Without rotation the one-gather affine sampling equals crop -> jax.image.resize."""
    img = jnp.asarray(np.random.default_rng(3).uniform(size=(40, 40, 3)), jnp.float32)
    key = jax.random.key(4)
    out = np.asarray(A._crop_rotate(img, key, 0.75, 0.0))
    ky, kx, _ = jax.random.split(key, 3)
    y0, x0 = int(jax.random.randint(ky, (), 0, 11)), int(jax.random.randint(kx, (), 0, 11))
    want = np.asarray(jax.image.resize(img[y0:y0 + 30, x0:x0 + 30], (40, 40, 3), "linear"))
    # interior pixels (the resize clamps at the crop border, the affine map reads the pixel beyond)
    np.testing.assert_allclose(out[2:-2, 2:-2], want[2:-2, 2:-2], atol=1e-5)
