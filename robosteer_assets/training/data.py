"""Training batches: random timesteps of one or more episode stores with their action
chunks (horizon = the model's action_horizon; indices past the episode end clamp to the
last step, as openpi's loader). The stores' arrays are decoded into memory once (a few
tens of demos; a zarr chunk holds 16 frames, so per-sample reads would decode 16x)."""

from __future__ import annotations

import numpy as np


class ChunkSampler:
    """Random timesteps of several episode stores with their action chunks."""

    def __init__(self, stores, horizon: int, seed: int = 0):
        self.stores, self.horizon = stores, horizon
        self.rng = np.random.default_rng(seed)
        self.index = [(si, r) for si, s in enumerate(stores) for r in range(s.num_steps)]
        self.ends = []
        for s in stores:
            ends = np.zeros(s.num_steps, np.int64)
            for ep in s.episodes:
                ends[ep["start"]:ep["start"] + ep["length"]] = ep["start"] + ep["length"] - 1
            self.ends.append(ends)
        self.ep_index = [np.asarray(s.arrays["episode_index"][:]) for s in stores]
        self.state = [np.asarray(s.arrays["state"][:]) for s in stores]
        self.actions = [np.asarray(s.arrays["actions"][:]) for s in stores]
        # the corpus is small: decode every frame once (a zarr chunk holds 16 frames)
        self.images = [np.asarray(s.arrays["images"][:]) for s in stores]

    def batch(self, B: int):
        picks = [self.index[i] for i in self.rng.integers(0, len(self.index), B)]
        images, state, chunks, prompts = [], [], [], []
        for si, r in picks:
            s = self.stores[si]
            images.append(self.images[si][r])
            state.append(self.state[si][r])
            chunks.append(self.actions[si][np.minimum(np.arange(r, r + self.horizon), self.ends[si][r])])
            prompts.append(s.episodes[int(self.ep_index[si][r])]["instruction"])
        return np.stack(images), np.stack(state), np.stack(chunks), prompts
