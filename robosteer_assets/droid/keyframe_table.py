"""Keyframes of every episode in a task's store, as one table.

``keyframes.parquet`` beside the store: one row per keyframe with columns
``task, episode_index, uuid, step, row`` (``row`` indexes the store's flat
arrays), written atomically. Downstream (head activations) reads the rows.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from robosteer_assets.common.atomic import atomic_file
from robosteer_assets.droid.errors import StoreError
from robosteer_assets.droid.keyframes import KeyframeConfig, keyframe_indices
from robosteer_assets.droid.store import EpisodeStore

KEYFRAMES_NAME = "keyframes.parquet"


def compute_keyframes(store: EpisodeStore, cfg: KeyframeConfig = KeyframeConfig()):
    """Keyframe rows of every episode (polars DataFrame)."""
    import polars as pl

    rows = {"task": [], "episode_index": [], "uuid": [], "step": [], "row": []}
    arrays = store.arrays
    for i, ep in enumerate(store.episodes):
        sl = slice(ep["start"], ep["start"] + ep["length"])
        try:
            state = np.asarray(arrays["state"][sl])
            jv = np.asarray(arrays["joint_velocities"][sl])
            cmd = np.asarray(arrays["actions"][sl])[:, :7] if cfg.idle_filter else None
        except Exception as e:
            raise StoreError(store.path, f"episode {i} ({ep['uuid']}): unreadable chunk ({type(e).__name__}: {e}); "
                             "re-materialize raw_episodes") from None
        ks = keyframe_indices(state[:, 7], jv, cfg, action_joint_velocity=cmd)
        rows["task"] += [store.task] * len(ks)
        rows["episode_index"] += [i] * len(ks)
        rows["uuid"] += [ep["uuid"]] * len(ks)
        rows["step"] += [int(k) for k in ks]
        rows["row"] += [int(ep["start"] + k) for k in ks]
    return pl.DataFrame(
        rows, schema={"task": pl.Utf8, "episode_index": pl.Int32, "uuid": pl.Utf8, "step": pl.Int32, "row": pl.Int64}
    )


def write_keyframes(df, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_file(path) as f:
        df.write_parquet(f)
    return path


def keyframe_task(cfg: KeyframeConfig, *, store: str, out: str):
    """The keyframes stage: keyframes of every episode of the episode store ``store``, written to ``out``.
    Returns (keyframe table, the opened store)."""
    episodes = EpisodeStore.open(store)
    df = compute_keyframes(episodes, cfg)
    write_keyframes(df, out)
    return df, episodes


def read_keyframes(path: str | os.PathLike):
    import polars as pl

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no keyframes table; materialize `keyframes` for this task first")
    return pl.read_parquet(path)
