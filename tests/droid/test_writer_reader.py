from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime

import h5py
import numpy as np
import pytest

from robosteer_assets.common.images import resize_with_pad
from robosteer_assets.droid import errors as E
from robosteer_assets.droid.episode import MAX_JOINT_DELTA
from robosteer_assets.droid.layout import episode_dir_for, find_episode_dirs, safe_task_name, task_dir_of
from robosteer_assets.droid.reader import (
    ReadConfig,
    frame_to_image,
    read_episode,
    resample_indices,
    resample_joint_velocity_command,
)
from robosteer_assets.droid.synthetic import make_recording
from robosteer_assets.droid.writer import write_episode

from .conftest import FRAME_HW, T_STEPS


def _letterbox(frames: np.ndarray, size: int) -> np.ndarray:
    return np.stack([resize_with_pad(f, size, size) for f in frames])


def test_round_trip_native_rate(episode, recording):
    S = min(FRAME_HW)
    ep = read_episode(episode, ReadConfig(image_size=S, target_hz=None))
    assert ep.uuid == recording.uuid and ep.instruction == recording.instruction
    assert ep.length == T_STEPS and ep.control_hz == 15.0 and ep.source_hz == 15.0
    assert ep.state.dtype == np.float32 and ep.state.shape == (T_STEPS, 8)
    np.testing.assert_allclose(ep.state[:, :7], recording.joint_positions, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ep.state[:, 7], recording.gripper_positions, atol=1e-6)
    np.testing.assert_allclose(ep.actions[:, :7], recording.action_joint_velocity, atol=1e-6)
    np.testing.assert_allclose(ep.actions[:, 7], recording.action_gripper_position, atol=1e-6)
    np.testing.assert_allclose(ep.joint_velocities, recording.joint_velocities, rtol=1e-6, atol=1e-5)
    assert ep.images.shape == (T_STEPS, 2, S, S, 3) and ep.images.dtype == np.uint8
    for cam, frames in ((0, recording.exterior_frames), (1, recording.wrist_frames)):
        err = np.abs(ep.images[:, cam].astype(int) - _letterbox(frames, S).astype(int))
        assert err.mean() < 4.0, f"camera {cam}: mean abs error {err.mean():.2f} after H.264"
    assert ep.task_dir.name == "pick_cube"
    assert ep.success is True


def test_h5_layout_and_metadata(episode, recording):
    meta = json.loads(next(episode.glob("metadata_*.json")).read_text())
    assert meta["uuid"] == recording.uuid and meta["trajectory_length"] == T_STEPS
    assert meta["wrist_cam_serial"] == recording.wrist_serial and meta["ext1_cam_serial"] == recording.exterior_serial
    assert meta["r2d2_version"] and meta["current_task"] == recording.instruction and meta["success"] is True
    with h5py.File(episode / "trajectory.h5") as h5:
        for name in ("action/joint_velocity", "action/gripper_position", "action/joint_position",
                     "observation/robot_state/joint_positions", "observation/robot_state/cartesian_position",
                     "observation/timestamp/control/step_start"):
            assert h5[name].shape[0] == T_STEPS, name
        assert h5["action/joint_velocity"].dtype == np.float64
        assert int(h5[f"observation/camera_type/{recording.wrist_serial}"][0]) == 0
        assert int(h5[f"observation/camera_type/{recording.exterior_serial}"][0]) == 1
        np.testing.assert_allclose(
            h5["action/joint_position"][()],
            recording.joint_positions + recording.action_joint_velocity * MAX_JOINT_DELTA,
        )
        assert h5.attrs["current_task"] == recording.instruction and bool(h5.attrs["success"])
        assert not bool(h5.attrs["failure"])
        assert set(np.diff(h5["observation/timestamp/control/step_start"][()])) <= {66, 67}  # 15 Hz in ms


def test_resample_15_to_6_hz(episode, recording):
    ep = read_episode(episode, ReadConfig(image_size=16))  # default target 6 Hz
    idx = np.floor(np.arange(6) * 2.5 + 0.5).astype(int)  # 0 3 5 8 10 13 (<= 14)
    np.testing.assert_array_equal(ep.source_steps, idx)
    assert ep.control_hz == 6.0 and ep.source_hz == 15.0 and ep.length == len(idx)
    np.testing.assert_allclose(ep.state[:, :7], recording.joint_positions[idx], atol=1e-6)
    # per-step command summed over the 15 Hz steps each 6 Hz step spans, clipped to [-1, 1]
    ends = list(idx[1:]) + [min(T_STEPS, idx[-1] + 2)]
    want = np.clip([recording.action_joint_velocity[a:b].sum(0) for a, b in zip(idx, ends)], -1, 1)
    np.testing.assert_allclose(ep.actions[:, :7], want, atol=1e-5)
    np.testing.assert_allclose(ep.actions[:, 7], recording.action_gripper_position[idx])
    sel = read_episode(episode, ReadConfig(image_size=16, joint_velocity_resample="select"))
    np.testing.assert_allclose(sel.actions[:, :7], recording.action_joint_velocity[idx], atol=1e-6)


def test_resample_helpers():
    np.testing.assert_array_equal(resample_indices(10, 6.0, 6.0), np.arange(10))  # pass-through
    np.testing.assert_array_equal(resample_indices(10, 6.1, 6.0), np.arange(10))  # within tolerance
    np.testing.assert_array_equal(resample_indices(7, 15.0, 5.0), [0, 3, 6])
    with pytest.raises(ValueError, match="up-sample"):
        resample_indices(10, 3.0, 6.0)
    cmd = np.full((6, 7), 0.5)
    out = resample_joint_velocity_command(cmd, np.array([0, 3]), 3.0)
    np.testing.assert_allclose(out, 1.0)  # 1.5 clipped
    out = resample_joint_velocity_command(np.full((6, 7), 0.1), np.array([0, 3]), 3.0)
    np.testing.assert_allclose(out, 0.3)


def test_recorded_at_6hz_passes_through(tmp_path):
    rec = make_recording(T=8, seed=1, image_size=16, control_hz=6.0)
    d = write_episode(episode_dir_for(tmp_path, "t", rec.uuid), rec)
    ep = read_episode(d, ReadConfig(image_size=16))
    assert ep.length == 8 and ep.control_hz == 6.0
    np.testing.assert_array_equal(ep.source_steps, np.arange(8))
    np.testing.assert_allclose(ep.actions[:, :7], rec.action_joint_velocity, atol=1e-6)


def test_frame_to_image_letterboxes_and_keeps_the_left_stereo_view():
    img = np.full((20, 40, 3), 255, np.uint8)
    out = frame_to_image(img, 10)
    # the whole 40-wide frame fits the width: 5 rows of image centred between black bars
    assert out.shape == (10, 10, 3)
    assert (out[:2] == 0).all() and (out[2:7] == 255).all() and (out[7:] == 0).all()
    stereo = np.zeros((10, 60, 3), np.uint8)  # aspect 6 > 2.5: left half only
    stereo[:, :30] = 100
    view = frame_to_image(stereo, 10)
    np.testing.assert_array_equal(view, resize_with_pad(stereo[:, :30], 10, 10))
    assert view.max() == 100


def test_annotations_override_current_task(episode, recording):
    ann = {recording.uuid: {"language_instruction1": "", "language_instruction2": "grab the cube"}}
    assert read_episode(episode, ReadConfig(image_size=16), ann).instruction == "grab the cube"
    assert read_episode(episode, ReadConfig(image_size=16), {"other": {}}).instruction == recording.instruction


def test_exterior_camera_choice(episode, recording):
    for ext in ("left", "ext1"):
        ep = read_episode(episode, ReadConfig(image_size=16, target_hz=None, exterior=ext))
        assert ep.images.shape[1] == 2
    with pytest.raises(E.CameraError, match="ext2"):
        read_episode(episode, ReadConfig(image_size=16, exterior="ext2"))
    with pytest.raises(ValueError, match="exterior"):
        ReadConfig(exterior="front")


def test_writer_rejects_bad_recording(tmp_path, recording):
    bad = replace(recording, joint_positions=recording.joint_positions[:, :6])
    with pytest.raises(E.InvalidRecordingError, match=r"joint_positions.*shape \(15, 7\)"):
        write_episode(tmp_path / "x", bad)
    odd = replace(recording, wrist_frames=np.zeros((T_STEPS, 31, 48, 3), np.uint8))
    with pytest.raises(E.InvalidRecordingError, match="even"):
        write_episode(tmp_path / "x", odd)
    nan = recording.gripper_positions.copy()
    nan[2] = np.nan
    with pytest.raises(E.InvalidRecordingError, match="gripper_positions"):
        write_episode(tmp_path / "x", replace(recording, gripper_positions=nan))
    assert not (tmp_path / "x").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_writer_is_atomic_and_replaces(tmp_path, recording, monkeypatch):
    d = write_episode(tmp_path / "ep", recording)
    before = sorted(os.listdir(d))
    import robosteer_assets.droid.writer as W

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(W, "write_mp4", boom)
    with pytest.raises(RuntimeError):
        write_episode(tmp_path / "ep", replace(recording, instruction="new"))
    assert sorted(os.listdir(d)) == before  # old episode untouched
    assert [p.name for p in tmp_path.iterdir()] == ["ep"]  # no temp left behind


def test_failure_dirs_and_discovery(tmp_path, recording):
    ok = episode_dir_for(tmp_path, "pick_cube", recording.uuid, success=True)
    t = datetime(2023, 7, 7, 9, 42, 23)
    bad = episode_dir_for(tmp_path, "pick_cube", t, success=False)
    assert bad.relative_to(tmp_path).as_posix() == "pick_cube/failure/2023-07-07/Fri_Jul__7_09:42:23_2023"
    write_episode(ok, recording)
    write_episode(bad, replace(recording, success=False))
    assert find_episode_dirs(tmp_path / "pick_cube") == [ok]
    assert len(find_episode_dirs(tmp_path / "pick_cube", include_failures=True)) == 2
    assert task_dir_of(bad) == tmp_path / "pick_cube"
    assert read_episode(bad, ReadConfig(image_size=16)).success is False
    with pytest.raises(E.UnsafeTaskNameError):
        episode_dir_for(tmp_path, "pick_cube", "../escape")
    assert safe_task_name("pick_cube-2.v1") == "pick_cube-2.v1"


def test_three_camera_droid_episode_picks_left_exterior(episode, recording):
    """Real DROID episodes have 2 exterior cameras; 'left' follows metadata left_mp4_path."""
    from robosteer_assets.droid.writer import write_mp4

    ext2 = "39990003"  # sorts after the first exterior serial -> ext2
    flat = np.full((T_STEPS, *FRAME_HW, 3), 200, np.uint8)
    write_mp4(episode / "recordings" / "MP4" / f"{ext2}.mp4", flat, 15.0)
    with h5py.File(episode / "trajectory.h5", "a") as h5:
        h5[f"observation/camera_type/{ext2}"] = np.ones(T_STEPS, np.int64)
    mp = next(episode.glob("metadata_*.json"))
    meta = json.loads(mp.read_text())
    meta.update(ext2_cam_serial=ext2, ext2_mp4_path=f"recordings/MP4/{ext2}.mp4", left_mp4_path=f"x/recordings/MP4/{ext2}.mp4",
                right_mp4_path=meta["ext1_mp4_path"])
    mp.write_text(json.dumps(meta))
    left = read_episode(episode, ReadConfig(image_size=16, exterior="left"))
    flat_image = resize_with_pad(flat[0], 16, 16).astype(int)  # grey 200 between black bars
    assert abs(left.images[:, 0].astype(int) - flat_image).max() <= 3
    for choice in ("ext1", "right"):
        other = read_episode(episode, ReadConfig(image_size=16, exterior=choice))
        assert abs(other.images[:, 0].astype(int) - flat_image).max() > 20
    np.testing.assert_array_equal(left.images[:, 1], other.images[:, 1])  # same wrist camera
    meta["left_mp4_path"] = ""
    mp.write_text(json.dumps(meta))
    with pytest.raises(E.CameraError, match="left_mp4_path"):
        read_episode(episode, ReadConfig(image_size=16, exterior="left"))
