"""DROID input / output transforms (openpi_facts.md §3.1, §4.1), shared by training and serving.

Inputs (openpi's chain DroidInputs → Normalize → ResizeImages → TokenizePrompt → PadStatesAndActions):
* images ``uint8 [B, 2, S, S, 3]`` (0 = exterior left, 1 = wrist, as the episode store):
  exterior → ``base_0_rgb``, wrist → ``left_wrist_0_rgb``, ``right_wrist_0_rgb`` = zeros with mask
  False; resized with pad to the model resolution only when not already that size
  (``common.images.resize_with_pad``, the same function ingest uses); then ``x / 255 · 2 − 1``
  → ``[-1, 1]`` float32;
* state ``[B, 8]`` (7 joints + gripper) normalised (z-score pi0, quantile pi0.5), the pi0.5 prompt
  built from the normalised 8-dim state, then zero-padded to ``action_dim``;
* actions ``[B, T_a, 8]`` (training) normalised with the ``actions`` stats and zero-padded.

Outputs: model actions ``[..., T_a, action_dim]`` are unnormalised (all dims; z-score pads mean 0 /
std 1, quantile leaves the padding) and sliced to the first 8 (7 joint velocities + gripper position).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robosteer_assets.common.images import resize_with_pad
from robosteer_assets.vla.config import IMAGE_KEYS
from robosteer_assets.vla.normalize import NormStats, normalize, unnormalize, use_quantile_norm
from robosteer_assets.vla.observation import Observation

DROID_STATE_DIM = 8  # 7 joint positions + gripper position
DROID_ACTION_DIM = 8  # 7 joint velocities + gripper position
DROID_CAMERAS = ("exterior", "wrist")  # axis 1 of the images array


class TransformError(ValueError):
    """Inputs of the wrong shape / dtype for the DROID transforms."""


@dataclass(frozen=True)
class DroidTransformConfig:
    """``state_dim`` / ``action_dim``: the robot's dims (DROID: 8); ``resolution``: the model's image
    size (224); ``mask_right_wrist``: DROID has no right wrist camera (zeros, mask False)."""

    state_dim: int = DROID_STATE_DIM
    action_dim: int = DROID_ACTION_DIM
    resolution: int = 224
    mask_right_wrist: bool = True

    @classmethod
    def for_model(cls, cfg) -> "DroidTransformConfig":
        return cls(resolution=int(cfg.vision.resolution))


# ----------------------------------------------------------------------------- images

def prepare_images(images: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 ``[B, C, H, W, 3]`` → float32 ``[B, C, R, R, 3]`` in ``[-1, 1]`` (resize only if needed)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TransformError(f"images: expected uint8, found {images.dtype}")
    if images.ndim != 5 or images.shape[-1] != 3:
        raise TransformError(f"images: expected [B, cameras, H, W, 3], found shape {images.shape}")
    if images.shape[2:4] != (resolution, resolution):
        images = np.stack([np.stack([resize_with_pad(im, resolution, resolution) for im in cams])
                           for cams in images])
    return images.astype(np.float32) / 255.0 * 2.0 - 1.0


# ----------------------------------------------------------------------------- state / actions

def pad_to_dim(x: np.ndarray, dim: int) -> np.ndarray:
    """Zero-pad the last axis to ``dim`` (openpi PadStatesAndActions); error if longer."""
    x = np.asarray(x)
    if x.shape[-1] > dim:
        raise TransformError(f"pad_to_dim: last dim {x.shape[-1]} exceeds the model's action_dim {dim}")
    if x.shape[-1] == dim:
        return x
    pad = [(0, 0)] * (x.ndim - 1) + [(0, dim - x.shape[-1])]
    return np.pad(x, pad)


def _stats(norm_stats: dict[str, NormStats], key: str) -> NormStats:
    try:
        return norm_stats[key]
    except KeyError:
        raise TransformError(f"norm_stats: expected key {key!r}, found {sorted(norm_stats)}") from None


def normalize_state(cfg, norm_stats: dict[str, NormStats], state: np.ndarray) -> np.ndarray:
    return normalize(np.asarray(state, np.float64), _stats(norm_stats, "state"), use_quantile_norm(cfg.pi05))


def normalize_actions(cfg, norm_stats: dict[str, NormStats], actions: np.ndarray) -> np.ndarray:
    """Robot actions ``[..., T_a, 8]`` → normalised and zero-padded ``[..., T_a, action_dim]`` float32."""
    a = normalize(np.asarray(actions, np.float64), _stats(norm_stats, "actions"), use_quantile_norm(cfg.pi05))
    return pad_to_dim(a, cfg.action_dim).astype(np.float32)


def unnormalize_actions(cfg, norm_stats: dict[str, NormStats], actions, robot_dim: int = DROID_ACTION_DIM):
    """Model output ``[..., T_a, action_dim]`` → robot actions ``[..., T_a, robot_dim]`` (float64)."""
    a = unnormalize(np.asarray(actions, np.float64), _stats(norm_stats, "actions"), use_quantile_norm(cfg.pi05))
    return a[..., :robot_dim]


# ----------------------------------------------------------------------------- observation

def make_observation(cfg, tokenizer, norm_stats: dict[str, NormStats], images: np.ndarray, state: np.ndarray,
                     prompts, tcfg: DroidTransformConfig | None = None) -> Observation:
    """DROID batch → model :class:`Observation` (numpy leaves).

    ``images`` uint8 ``[B, 2, S, S, 3]`` (exterior, wrist), ``state`` ``[B, 8]``, ``prompts`` B strings."""
    tcfg = tcfg or DroidTransformConfig.for_model(cfg)
    state = np.asarray(state)
    images = np.asarray(images)
    prompts = list(prompts)
    if state.ndim != 2 or state.shape[1] != tcfg.state_dim:
        raise TransformError(f"state: expected [B, {tcfg.state_dim}] (7 joints + gripper), found {state.shape}")
    B = state.shape[0]
    if images.ndim != 5 or images.shape[0] != B or images.shape[1] != len(DROID_CAMERAS):
        raise TransformError(f"images: expected [B={B}, 2 (exterior, wrist), S, S, 3], found {images.shape}")
    if len(prompts) != B:
        raise TransformError(f"prompts: expected {B} prompts, found {len(prompts)}")
    if not np.all(np.isfinite(state)):
        raise TransformError("state: contains NaN or inf")
    imgs = prepare_images(images, tcfg.resolution)
    s_norm = normalize_state(cfg, norm_stats, state)
    tokens, tmask = tokenizer.tokenize_batch(prompts, s_norm if cfg.pi05 else None)
    ones = np.ones(B, bool)
    obs_images = {IMAGE_KEYS[0]: imgs[:, 0], IMAGE_KEYS[1]: imgs[:, 1],
                  IMAGE_KEYS[2]: np.full_like(imgs[:, 0], -1.0)}  # uint8 zeros → -1
    masks = {IMAGE_KEYS[0]: ones, IMAGE_KEYS[1]: ones.copy(),
             IMAGE_KEYS[2]: np.zeros(B, bool) if tcfg.mask_right_wrist else ones.copy()}
    return Observation(images=obs_images, image_masks=masks,
                       state=pad_to_dim(s_norm, cfg.action_dim).astype(np.float32),
                       tokenized_prompt=tokens.astype(np.int32), tokenized_prompt_mask=tmask.astype(bool))


def make_training_batch(cfg, tokenizer, norm_stats: dict[str, NormStats], images: np.ndarray, state: np.ndarray,
                        prompts, actions: np.ndarray, tcfg: DroidTransformConfig | None = None
                        ) -> tuple[Observation, np.ndarray]:
    """(Observation, normalised padded actions ``[B, T_a, action_dim]`` float32) from a DROID batch with
    action chunks ``actions [B, T_a, 8]``."""
    tcfg = tcfg or DroidTransformConfig.for_model(cfg)
    actions = np.asarray(actions)
    B = np.asarray(state).shape[0] if np.ndim(state) == 2 else -1
    if actions.ndim != 3 or actions.shape[0] != B or actions.shape[1] != cfg.action_horizon \
            or actions.shape[2] != tcfg.action_dim:
        raise TransformError(f"actions: expected [B={B}, T_a={cfg.action_horizon}, {tcfg.action_dim}], "
                             f"found {actions.shape}")
    if not np.all(np.isfinite(actions)):
        raise TransformError("actions: contains NaN or inf")
    obs = make_observation(cfg, tokenizer, norm_stats, images, state, prompts, tcfg)
    return obs, normalize_actions(cfg, norm_stats, actions)
