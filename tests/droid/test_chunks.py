"""Action chunks clamped at the episode end (openpi's RLDS DROID loader repeats the final action)."""

from __future__ import annotations

import numpy as np
import pytest

from robosteer_assets.droid.chunks import chunk_indices, episode_ends
from robosteer_assets.droid.reader import ReadConfig
from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task
from robosteer_assets.droid.synthetic import write_task

EPISODES = [{"start": 0, "length": 3}, {"start": 3, "length": 5}]


def test_episode_ends_per_row():
    np.testing.assert_array_equal(episode_ends(EPISODES, 8), [2, 2, 2, 7, 7, 7, 7, 7])
    with pytest.raises(ValueError, match=r"my store: .*covering all 9 rows, found 1 rows outside"):
        episode_ends(EPISODES, 9, "my store")


def test_chunk_indices_clamp_at_each_episode_end():
    ends = episode_ends(EPISODES, 8)
    rows = np.array([0, 2, 3, 6])
    np.testing.assert_array_equal(chunk_indices(rows, 4, ends[rows]),
                                  [[0, 1, 2, 2], [2, 2, 2, 2], [3, 4, 5, 6], [6, 7, 7, 7]])
    np.testing.assert_array_equal(chunk_indices(5, 2, ends[5]), [5, 6])  # one row: shape (horizon,)
    with pytest.raises(ValueError, match="horizon >= 1"):
        chunk_indices(rows, 0, ends[rows])
    with pytest.raises(ValueError, match="past its episode's last row"):
        chunk_indices(np.array([3]), 2, np.array([2]))


def test_chunks_from_a_store_match_the_per_episode_definition(tmp_path):
    write_task(tmp_path / "demos", "pick_cube", 3, T=12, image_size=16, control_hz=6.0, seed=5)
    ingest_task(tmp_path / "demos" / "pick_cube", tmp_path / "store",
                IngestConfig(read=ReadConfig(image_size=16), min_episodes=3))
    store = EpisodeStore.open(tmp_path / "store")
    actions = np.asarray(store.arrays["actions"][:])
    ends = episode_ends(store.episodes, store.num_steps, str(store.path))
    rows = np.arange(store.num_steps)
    chunks = actions[chunk_indices(rows, 5, ends[rows])]
    for i in range(store.num_episodes):
        ep = store.episode(i)
        for t in range(ep.length):
            want = ep.actions[[min(t + j, ep.length - 1) for j in range(5)]]
            np.testing.assert_array_equal(chunks[store.episodes[i]["start"] + t], want)


def test_store_observations_at_rows_in_any_order(tmp_path):
    write_task(tmp_path / "demos", "pick_cube", 2, T=12, image_size=16, control_hz=6.0, seed=7)
    ingest_task(tmp_path / "demos" / "pick_cube", tmp_path / "store",
                IngestConfig(read=ReadConfig(image_size=16), min_episodes=2))
    store = EpisodeStore.open(tmp_path / "store")
    second = store.episodes[1]
    rows = np.array([second["start"] + 1, 0, second["start"] + 1])  # unsorted, repeated (a padded batch)
    images, state, prompts = store.observations(rows)
    ep0, ep1 = store.episode(0), store.episode(1)
    assert images.shape == (3, 2, 16, 16, 3) and images.dtype == np.uint8 and state.shape == (3, 8)
    np.testing.assert_array_equal(images, np.stack([ep1.images[1], ep0.images[0], ep1.images[1]]))
    np.testing.assert_array_equal(state, np.stack([ep1.state[1], ep0.state[0], ep1.state[1]]))
    assert prompts == [ep1.instruction, ep0.instruction, ep1.instruction]
