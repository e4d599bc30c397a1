"""Open-loop replay of stored demos (the first rung of bench_learning): stored actions replayed from the
recorded start state reproduce the demo; other actions do not."""

import numpy as np
import pytest

from robosteer_assets.droid.reader import ReadConfig
from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task
from robosteer_assets.evaluation.replay import episode_metadata, replay_episode, replay_store
from robosteer_assets.sim.recorder import RecordConfig, record_demos


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay")
    record_demos("pick_cube", 2, root / "demos", seed=3, cfg=RecordConfig(image_size=64, home_noise=0.2))
    ingest_task(root / "demos" / "pick_cube", root / "store" / "pick_cube",
                IngestConfig(read=ReadConfig(image_size=32), min_episodes=1))
    return EpisodeStore.open(root / "store" / "pick_cube")


def test_stored_actions_reproduce_the_demos(store):
    rows = replay_store(store)
    assert len(rows) == 2
    for r in rows:
        assert r["success"] and r["skipped"] is None
        assert r["first_success_step"] == r["recorded_first_success"]


def test_other_actions_fail(store):
    ep = store.episodes[0]
    meta = episode_metadata(ep["path"])
    acts = np.asarray(store.arrays["actions"][ep["start"]: ep["start"] + ep["length"]]).copy()
    acts[:, :7] = 0.0  # the arm never moves
    assert not replay_episode("pick_cube", meta, acts)["success"]


def test_noisy_recordings_are_skipped(store):
    meta = {**episode_metadata(store.episodes[0]["path"]), "sim_action_noise": 0.1}
    assert replay_episode("pick_cube", meta, np.zeros((3, 8)))["skipped"]
    with pytest.raises(ValueError, match="sim_seed"):
        replay_episode("pick_cube", {"uuid": "x"}, np.zeros((3, 8)))
