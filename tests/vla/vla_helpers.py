"""Small observation/action factories for model tests."""

import jax.numpy as jnp
import numpy as np

from robosteer_assets.vla.config import IMAGE_KEYS
from robosteer_assets.vla.observation import Observation


def random_obs(cfg, B=2, seed=0, prompt_len=5, wrist_right_masked=True):
    rng = np.random.default_rng(seed)
    S = 224
    masks = {k: np.ones(B, bool) for k in IMAGE_KEYS}
    if wrist_right_masked:
        masks["right_wrist_0_rgb"][:] = False
    L = cfg.max_token_len
    tok = rng.integers(1, min(cfg.vocab_size, 60), (B, L))
    tmask = np.arange(L)[None, :].repeat(B, 0) < prompt_len
    return Observation(
        images={k: jnp.asarray(rng.uniform(-1, 1, (B, S, S, 3)), jnp.float32) for k in IMAGE_KEYS},
        image_masks={k: jnp.asarray(v) for k, v in masks.items()},
        state=jnp.asarray(rng.normal(size=(B, cfg.action_dim)), jnp.float32),
        tokenized_prompt=jnp.asarray(np.where(tmask, tok, 0), jnp.int32),
        tokenized_prompt_mask=jnp.asarray(tmask),
    )


def random_actions(cfg, B=2, seed=1):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=(B, cfg.action_horizon, cfg.action_dim)), jnp.float32)
