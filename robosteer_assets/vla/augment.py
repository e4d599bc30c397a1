"""Training-time image augmentation (openpi_facts.md §3.1, ``preprocess_observation`` with
``train=True``).

Per example and camera, in [0, 1] pixel space (images are mapped from [-1, 1] and back):
non-wrist cameras get a random crop of 95 % of the side, resized back to the full size,
then a rotation by a uniform angle in ±5° about the centre — composed into one affine map
and sampled once (bilinear; the rotated-in corners show the pixels around the crop, black
only beyond the image); every camera gets a colour jitter — brightness, contrast and saturation factors
drawn uniformly from [1 - x, 1 + x] with x = 0.3 / 0.4 / 0.5, applied in that order and
clipped to [0, 1] (the usual definitions: scale; blend with the mean grey level; blend
with the per-pixel grey image). Every example draws its own parameters (vmap over the
batch); everything is a pure function of the rng, so it runs inside a jitted train step.

openpi applies this whenever ``train=True``; here ``vla.model.compute_loss`` applies it
when it is given an ``AugmentConfig`` (and ``train=True``), so a caller opts in explicitly.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from robosteer_assets.vla.config import IMAGE_KEYS
from robosteer_assets.vla.observation import Observation

_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class AugmentConfig:
    """openpi's defaults. ``crop_scale``/``max_rotation_deg`` apply to non-wrist cameras
    (a key containing "wrist" is a wrist camera); the jitter to every camera."""

    crop_scale: float = 0.95
    max_rotation_deg: float = 5.0
    brightness: float = 0.3
    contrast: float = 0.4
    saturation: float = 0.5

    def __post_init__(self):
        if not 0.0 < self.crop_scale <= 1.0:
            raise ValueError(f"AugmentConfig.crop_scale: expected a value in (0, 1], found {self.crop_scale}")
        for f in ("max_rotation_deg", "brightness", "contrast", "saturation"):
            if getattr(self, f) < 0:
                raise ValueError(f"AugmentConfig.{f}: expected >= 0, found {getattr(self, f)}")
        if self.brightness > 1 or self.contrast > 1 or self.saturation > 1:
            raise ValueError("AugmentConfig: brightness / contrast / saturation must be <= 1 (factors 1 ± x)")


def _sample_bilinear(img, sy, sx):
    """Bilinear sample of img [H, W, C] at float pixel coordinates sy, sx [H', W']; 0 outside."""
    H, W, _ = img.shape
    y0, x0 = jnp.floor(sy), jnp.floor(sx)
    wy, wx = (sy - y0)[..., None], (sx - x0)[..., None]
    y0, x0 = y0.astype(jnp.int32), x0.astype(jnp.int32)

    def at(y, x):
        inside = ((y >= 0) & (y < H) & (x >= 0) & (x < W))[..., None]
        return jnp.where(inside, img[jnp.clip(y, 0, H - 1), jnp.clip(x, 0, W - 1)], 0.0)

    top = at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx
    bottom = at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx
    return top * (1 - wy) + bottom * wy


def _crop_rotate(img, key, scale: float, max_rad: float):
    """Random crop of round(scale * S) per side, resized back to S, then rotated by a uniform
    angle in ±max_rad about the centre — composed into one affine map and sampled once
    (bilinear; half-pixel centres as ``jax.image.resize``; black outside the image)."""
    H, W, _ = img.shape
    ch, cw = max(1, int(round(scale * H))), max(1, int(round(scale * W)))
    ky, kx, ka = jax.random.split(key, 3)
    y0 = jax.random.randint(ky, (), 0, H - ch + 1).astype(jnp.float32)
    x0 = jax.random.randint(kx, (), 0, W - cw + 1).astype(jnp.float32)
    angle = jax.random.uniform(ka, (), minval=-max_rad, maxval=max_rad)
    cy, cx = (H - 1) / 2.0, (W - 1) / 2.0
    yy, xx = jnp.meshgrid(jnp.arange(H, dtype=jnp.float32), jnp.arange(W, dtype=jnp.float32), indexing="ij")
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    # rotation: the output pixel (y, x) comes from R(-angle) (y, x) of the resized crop ...
    ry = cos * (yy - cy) - sin * (xx - cx) + cy
    rx = sin * (yy - cy) + cos * (xx - cx) + cx
    # ... which comes from the original image through the resize (half-pixel centres) and crop offset
    sy = (ry + 0.5) * (ch / H) - 0.5 + y0
    sx = (rx + 0.5) * (cw / W) - 0.5 + x0
    return _sample_bilinear(img, sy, sx)


def _rotate(img, angle):
    """Rotate [S, S, C] by ``angle`` radians about the centre; bilinear, outside = 0."""
    H, W, _ = img.shape
    cy, cx = (H - 1) / 2.0, (W - 1) / 2.0
    yy, xx = jnp.meshgrid(jnp.arange(H, dtype=jnp.float32), jnp.arange(W, dtype=jnp.float32), indexing="ij")
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    sy = cos * (yy - cy) - sin * (xx - cx) + cy
    sx = sin * (yy - cy) + cos * (xx - cx) + cx
    return _sample_bilinear(img, sy, sx)


def _grey(img):
    return img[..., 0] * _LUMA[0] + img[..., 1] * _LUMA[1] + img[..., 2] * _LUMA[2]


def _jitter(img, key, cfg: AugmentConfig):
    kb, kc, ks = jax.random.split(key, 3)

    def factor(k, x):
        return jax.random.uniform(k, (), minval=1.0 - x, maxval=1.0 + x)

    img = jnp.clip(img * factor(kb, cfg.brightness), 0.0, 1.0)
    mean = jnp.mean(_grey(img))
    img = jnp.clip(mean + factor(kc, cfg.contrast) * (img - mean), 0.0, 1.0)
    grey = _grey(img)[..., None]
    return jnp.clip(grey + factor(ks, cfg.saturation) * (img - grey), 0.0, 1.0)


def augment_image(key, img, cfg: AugmentConfig, wrist: bool):
    """One image [S, S, 3] in [0, 1]."""
    k_geo, k_jit = jax.random.split(key)
    if not wrist and (cfg.crop_scale < 1.0 or cfg.max_rotation_deg > 0):
        img = _crop_rotate(img, k_geo, cfg.crop_scale, math.radians(cfg.max_rotation_deg))
    return _jitter(img, k_jit, cfg)


def augment_observation(rng, obs: Observation, cfg: AugmentConfig = AugmentConfig()) -> Observation:
    """A copy of ``obs`` with every camera's images augmented (masks, state, prompt unchanged)."""
    images = {}
    for i, k in enumerate(IMAGE_KEYS):
        img = obs.images[k]
        keys = jax.random.split(jax.random.fold_in(rng, i), img.shape[0])
        x01 = (img.astype(jnp.float32) + 1.0) / 2.0
        out = jax.vmap(lambda kk, im, w="wrist" in k: augment_image(kk, im, cfg, w))(keys, x01)
        images[k] = (out * 2.0 - 1.0).astype(img.dtype)
    return dataclasses.replace(obs, images={**obs.images, **images})


__all__ = ["AugmentConfig", "augment_image", "augment_observation"]
