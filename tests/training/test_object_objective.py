"""The pretraining's auxiliary object-position objective: targets from the episodes' simulator
metadata, a probe that learns, and a checkpoint that keeps openpi's tree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robosteer_assets.training.trainer import OBJECT_PROBE, TrainConfig


def _store_with_placements(root: Path, placements: list[dict] | None):
    from robosteer_assets.droid import synthetic
    from robosteer_assets.droid.layout import find_episode_dirs, metadata_path
    from robosteer_assets.droid.reader import ReadConfig
    from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task

    synthetic.write_task(root / "demos", "pick_cube", n=4, T=10, image_size=32, control_hz=6.0)
    if placements is not None:
        for d, placement in zip(find_episode_dirs(root / "demos" / "pick_cube"), placements):
            meta_file = metadata_path(d)
            meta = json.loads(meta_file.read_text())
            meta_file.write_text(json.dumps({**meta, "sim_placement": placement}))
    ingest_task(root / "demos" / "pick_cube", root / "store", IngestConfig(read=ReadConfig(image_size=32),
                                                                            min_episodes=2))
    return EpisodeStore.open(root / "store")


def _placement(x, y, other=None):
    objects = {"red_cube": [x, y, 0.3], "yellow_block": [0.9, 0.9, 0.0]}  # a distractor is never a target
    if other is not None:
        objects["red_bowl"] = [*other, 0.0]
    return {"cell": None, "seed": 0, "x": x, "y": y, "yaw": 0.3, "objects": objects}


def test_targets_come_from_the_episode_metadata(tmp_path):
    from robosteer_assets.training.data import episode_object_targets

    placements = [_placement(0.5, -0.1), _placement(0.6, 0.1, other=(0.45, 0.2)), _placement(0.55, 0.0),
                  _placement(0.4, 0.05)]
    store = _store_with_placements(tmp_path, placements)
    targets, mask = episode_object_targets(store)
    by_uuid = {}
    for ep, t, m in zip(store.episodes, targets, mask):
        by_uuid[ep["uuid"]] = (t, m)
    from robosteer_assets.training.data import SLOT_DIM, object_kind

    cube, bowl = SLOT_DIM * object_kind("red_cube"), SLOT_DIM * object_kind("green_bowl")
    c, s = float(np.cos(4 * 0.3)), float(np.sin(4 * 0.3))  # a cube: a quarter-turn symmetry
    rows = {round(float(t[cube]), 3): (t, m) for t, m in by_uuid.values()}
    t, m = rows[0.6]
    assert np.allclose(t[cube: cube + 4], (0.6, 0.1, c, s), atol=1e-5) and np.allclose(t[bowl: bowl + 2], (0.45, 0.2))
    assert m[cube: cube + 4].all() and m[bowl: bowl + 2].all() and not m[bowl + 2: bowl + 4].any()  # a round bowl
    assert m.sum() == 6  # no other kind in the scene
    t, m = rows[0.5]
    assert np.allclose(t[cube: cube + 2], (0.5, -0.1)) and m.sum() == 4 and not m[bowl: bowl + 2].any()
    assert all(not np.isclose(t, 0.9).any() for t, _ in by_uuid.values())  # the distractor


def test_an_object_of_no_known_kind_is_refused_by_name(tmp_path):
    from robosteer_assets.training.data import episode_object_targets

    bad = {**_placement(0.5, 0.0), "objects": {"red_cube": [0.5, 0.0, 0.0], "teapot": [0.4, 0.1, 0.0]}}
    store = _store_with_placements(tmp_path, [bad] * 4)
    with pytest.raises(ValueError, match=r"sim_placement.objects.teapot': expected an object of one of the kinds"):
        episode_object_targets(store)


def test_demos_without_a_placement_are_refused_by_name(tmp_path):
    from robosteer_assets.training.data import episode_object_targets

    store = _store_with_placements(tmp_path, None)
    with pytest.raises(ValueError, match=r"metadata_.*\.json: field 'sim_placement.objects'"):
        episode_object_targets(store)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="object_aux_weight: expected >= 0"):
        TrainConfig(method="pretrain", object_aux_weight=-1.0)
    with pytest.raises(ValueError, match="needs method 'pretrain'"):
        TrainConfig(method="steering", object_aux_weight=1.0)


def test_probe_learns_and_stays_out_of_the_checkpoint(tmp_path, micro):
    from robosteer_assets.training.optimizer import ScheduleConfig
    from robosteer_assets.training.trainer import finetune
    from robosteer_assets.vla.checkpoint import load_checkpoint

    root, _ = micro
    rng = np.random.default_rng(0)
    store = _store_with_placements(tmp_path, [_placement(*rng.uniform(0.3, 0.7, 2)) for _ in range(4)])
    cfg = TrainConfig(method="pretrain", steps=40, batch_size=8, log_interval=10, object_aux_weight=1.0,
                      schedule=ScheduleConfig(warmup_steps=5, peak_lr=3e-3, decay_steps=40, decay_lr=3e-4))
    out = finetune(root / "base", [store], tmp_path / "out", cfg)
    mse = [r["object_loss"] for r in out["log_rows"]]
    assert mse[-1] < 0.5 * mse[0], mse
    loaded = load_checkpoint(tmp_path / "out")  # validates the tree against the config: no probe leaves
    assert OBJECT_PROBE not in loaded.params


def test_start_oversampling_repeats_the_first_steps_of_each_episode(micro):
    from robosteer_assets.training.data import ChunkDataset

    _, store = micro
    plain = ChunkDataset([store], 4, 4)
    data = ChunkDataset([store], 4, 4, start_frames=2, start_repeats=3)
    E = store.num_episodes
    assert len(data) == len(plain) + 2 * 2 * E
    rows = data.index[data._perm(0)][:, 1]  # one epoch
    for ep in store.episodes:
        assert (rows == ep["start"]).sum() == 3 and (rows == ep["start"] + 1).sum() == 3
        assert (rows == ep["start"] + 2).sum() == 1
    with pytest.raises(ValueError, match="start oversampling"):
        ChunkDataset([store], 4, 4, start_frames=2, start_repeats=0)
    with pytest.raises(ValueError, match="start_frames / start_repeats"):
        TrainConfig(method="pretrain", start_frames=-1)
