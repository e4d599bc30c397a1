"""The model input structure (openpi_facts.md §3.1): images per camera key in
[-1, 1], per-image masks, the (padded) state and the tokenized prompt."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from robosteer_assets.vla.config import IMAGE_KEYS


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Observation:
    """``images[key]`` f32 [B,S,S,3] in [-1,1]; ``image_masks[key]`` bool [B];
    ``state`` f32 [B,A]; ``tokenized_prompt`` i32 [B,L]; ``tokenized_prompt_mask`` bool [B,L].
    Keys in openpi's fixed order: base_0_rgb, left_wrist_0_rgb, right_wrist_0_rgb."""

    images: dict
    image_masks: dict
    state: jax.Array
    tokenized_prompt: jax.Array
    tokenized_prompt_mask: jax.Array

    @property
    def batch_size(self) -> int:
        return int(self.state.shape[0])

    @classmethod
    def from_dict(cls, d: dict) -> "Observation":
        """From openpi-style keys (``image``, ``image_mask``, ``state``, ``tokenized_prompt``,
        ``tokenized_prompt_mask``); uint8 images become x/255*2-1; missing masks are True."""
        missing = [k for k in IMAGE_KEYS if k not in d.get("image", {})]
        if missing:
            raise ValueError(f"Observation.from_dict: image keys {missing} missing; expected all of {IMAGE_KEYS}")
        images, masks = {}, {}
        for k in IMAGE_KEYS:
            img = d["image"][k]
            if np.asarray(img).dtype == np.uint8:
                img = jnp.asarray(img, jnp.float32) / 255.0 * 2.0 - 1.0
            images[k] = jnp.asarray(img, jnp.float32)
            m = d.get("image_mask", {}).get(k)
            masks[k] = jnp.ones(images[k].shape[:1], bool) if m is None else jnp.asarray(m, bool)
        return cls(images=images, image_masks=masks, state=jnp.asarray(d["state"], jnp.float32),
                   tokenized_prompt=jnp.asarray(d["tokenized_prompt"], jnp.int32),
                   tokenized_prompt_mask=jnp.asarray(d["tokenized_prompt_mask"], bool))
