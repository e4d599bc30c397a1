"""Recorded demos go through droid.writer and read back through droid.reader."""

import dataclasses
import json

import h5py
import numpy as np
import pytest

from robosteer_assets.droid.layout import find_episode_dirs, metadata_path
from robosteer_assets.droid.reader import ReadConfig, read_episode, validate_episode
from robosteer_assets.sim.recorder import RecordConfig, euler_xyz, record_demos

from .conftest import get_env

CFG = RecordConfig(image_size=64)


def _h5_arrays(path):
    out = {}
    with h5py.File(path, "r") as h5:
        h5.visititems(lambda k, v: out.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demos")
    env = get_env("press_button", render_images=True, image_size=64)
    paths = record_demos("press_button", 1, root, seed=3, cfg=CFG, env=env)
    return root, paths[0]


def test_demo_is_in_droid_layout_and_validates(demo):
    root, ep = demo
    assert ep.parent == root / "press_button" / "success"
    assert find_episode_dirs(root / "press_button") == [ep]
    assert (ep / "recordings" / "MP4" / "sim-exterior-left.mp4").is_file()
    assert (ep / "recordings" / "MP4" / "sim-wrist.mp4").is_file()
    assert validate_episode(ep, ReadConfig(image_size=64)) is None
    meta = json.loads(metadata_path(ep).read_text())
    assert meta["current_task"] == "press red button hard"
    assert meta["success"] is True and meta["control_hz"] == 6.0
    assert meta["ext1_cam_serial"] == "sim-exterior-left" and meta["wrist_cam_serial"] == "sim-wrist"
    assert meta["sim_task"] == "press_button" and meta["source"] == "sim"
    assert meta["uuid"].startswith("ROBOSTEER-SIM+")


def test_demo_reads_back_in_droid_units(demo):
    _, ep = demo
    e = read_episode(ep, ReadConfig(image_size=64))
    T = e.length
    assert 10 < T < 60
    assert e.instruction == "press red button hard"
    assert e.state.shape == (T, 8) and e.actions.shape == (T, 8) and e.images.shape == (T, 2, 64, 64, 3)
    h5 = _h5_arrays(ep / "trajectory.h5")
    q = h5["observation/robot_state/joint_positions"]
    cmd = h5["action/joint_velocity"]
    qd = h5["observation/robot_state/joint_velocities"]
    # the normalised command is what the env integrates: q_{t+1} ~ q_t + cmd_t * 0.2 (the arm lags a little)
    pred = q[:-1] + cmd[:-1] * 0.2
    assert np.abs(pred - q[1:]).max() < 0.1
    assert np.abs(cmd).max() <= 1.0 and np.abs(cmd).max() > 0.05
    # observed velocities are rad/s: about the finite difference at 6 Hz
    fd = np.diff(q, axis=0) * 6.0
    assert np.corrcoef(fd[:, 0], qd[1:, 0])[0, 1] > 0.8
    g = h5["observation/robot_state/gripper_position"]
    assert g.min() >= 0.0 and g.max() <= 1.0
    assert np.allclose(e.actions[:, :7], cmd.astype(np.float32))
    # images are not blank and change over the episode (the arm moves in both views)
    assert e.images.std() > 10 and np.abs(e.images[0].astype(int) - e.images[-1]).mean() > 1.0


def test_same_seed_gives_identical_trajectory_arrays(tmp_path):
    env = get_env("press_button", render_images=True, image_size=64)
    a = record_demos("press_button", 1, tmp_path / "a", seed=5, cfg=CFG, env=env)[0]
    b = record_demos("press_button", 1, tmp_path / "b", seed=5, cfg=CFG, env=env)[0]
    assert a.name == b.name
    ha, hb = _h5_arrays(a / "trajectory.h5"), _h5_arrays(b / "trajectory.h5")
    assert ha.keys() == hb.keys()
    for k in ha:
        assert np.array_equal(ha[k], hb[k]), k
    c = record_demos("press_button", 1, tmp_path / "c", seed=6, cfg=CFG, env=env)[0]
    hc = _h5_arrays(c / "trajectory.h5")
    assert not np.array_equal(hc["observation/robot_state/joint_positions"][-1],
                              ha["observation/robot_state/joint_positions"][-1])


def test_failed_attempts_go_to_the_failure_folder(tmp_path):
    env = get_env("pick_cube", render_images=True, image_size=64)
    original = env.task
    env.task = dataclasses.replace(original, step_limit=3)  # too short for the expert to succeed
    try:
        with pytest.raises(RuntimeError, match="only 0 of 1 demos succeeded in 2 attempts"):
            record_demos("pick_cube", 1, tmp_path, seed=0, cfg=dataclasses.replace(CFG, max_attempts_factor=2), env=env)
    finally:
        env.task = original
    fails = find_episode_dirs(tmp_path / "pick_cube", include_failures=True)
    assert len(fails) == 2 and all(p.parent.name == "failure" for p in fails)
    assert find_episode_dirs(tmp_path / "pick_cube") == []
    meta = json.loads(metadata_path(fails[0]).read_text())
    assert meta["success"] is False


def test_demos_at_given_cells_take_them_in_turn(tmp_path):
    from robosteer_assets.sim.grid import cell_center

    env = get_env("press_button", render_images=True, image_size=64)
    cells = [(0, 1), (4, 6)]
    paths = record_demos("press_button", 3, tmp_path, seed=2, cfg=CFG, env=env, cells=cells)
    placements = [json.loads(metadata_path(p).read_text())["sim_placement"] for p in paths]
    assert [tuple(p["cell"]) for p in placements] == [(0, 1), (4, 6), (0, 1)]
    for p in placements:
        assert (p["x"], p["y"]) == pytest.approx(cell_center(*p["cell"]))
    assert placements[0]["yaw"] != placements[2]["yaw"]  # the attempt's seed, not the cell's trial yaw
    with pytest.raises(ValueError, match="grid cell: expected row in"):
        record_demos("press_button", 1, tmp_path, cfg=CFG, env=env, cells=[(9, 0)])


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="n: expected a positive number"):
        record_demos("pick_cube", 0, tmp_path)
    env = get_env("pick_cube", render_images=True, image_size=64)
    with pytest.raises(ValueError, match="env: expected a TabletopEnv for push_cup/none"):
        record_demos("push_cup", 1, tmp_path, env=env)


def test_euler_xyz_matches_a_known_rotation():
    a, b, c = 0.3, -0.2, 1.1
    Rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    Ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    Rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    assert np.allclose(euler_xyz(Rz @ Ry @ Rx), [a, b, c])
