"""One test per kind of bad input: each must raise the typed error naming file and field."""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pytest

from robosteer_assets.droid import errors as E
from robosteer_assets.droid.layout import safe_task_name
from robosteer_assets.droid.reader import ReadConfig, load_annotations, read_episode, validate_episode
from robosteer_assets.droid.writer import write_mp4

from .conftest import T_STEPS

CFG = ReadConfig(image_size=16)


def _h5(episode):
    return h5py.File(episode / "trajectory.h5", "a")


def _meta_path(episode):
    return next(episode.glob("metadata_*.json"))


def _mp4(episode, recording, which="wrist"):
    serial = recording.wrist_serial if which == "wrist" else recording.exterior_serial
    return episode / "recordings" / "MP4" / f"{serial}.mp4"


def _expect(episode, cls, *fragments):
    err = validate_episode(episode, CFG)
    assert isinstance(err, cls), f"expected {cls.__name__}, got {err!r}"
    msg = str(err)
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    with pytest.raises(cls):
        read_episode(episode, CFG)
    return err


def test_valid_episode_has_no_error(episode):
    assert validate_episode(episode, CFG) is None


def test_missing_h5(episode):
    (episode / "trajectory.h5").unlink()
    _expect(episode, E.MissingFileError, "trajectory.h5")


def test_corrupt_h5(episode):
    (episode / "trajectory.h5").write_bytes(b"\x89HDF\r\n garbage" * 10)
    _expect(episode, E.CorruptFileError, "trajectory.h5", "readable HDF5")


def test_missing_dataset(episode):
    with _h5(episode) as h5:
        del h5["action/joint_velocity"]
    _expect(episode, E.MissingFieldError, "trajectory.h5", "[action/joint_velocity]")


def test_missing_group(episode):
    with _h5(episode) as h5:
        del h5["observation/robot_state"]
    _expect(episode, E.MissingFieldError, "observation/robot_state/joint_positions")


def test_wrong_shape(episode):
    with _h5(episode) as h5:
        del h5["observation/robot_state/joint_positions"]
        h5["observation/robot_state/joint_positions"] = np.zeros((T_STEPS, 6))
    _expect(episode, E.ShapeError, "[observation/robot_state/joint_positions]", "(T, 7)", "(15, 6)")


def test_wrong_dtype(episode):
    with _h5(episode) as h5:
        del h5["action/gripper_position"]
        h5["action/gripper_position"] = np.array([b"open"] * T_STEPS)
    _expect(episode, E.DTypeError, "[action/gripper_position]", "float")


def test_unequal_lengths(episode):
    with _h5(episode) as h5:
        g = h5["action/gripper_position"][()]
        del h5["action/gripper_position"]
        h5["action/gripper_position"] = g[:-3]
    _expect(episode, E.LengthMismatchError, "[action/gripper_position]", "leading length 15", "length 12")


def test_nan(episode):
    with _h5(episode) as h5:
        h5["observation/robot_state/joint_velocities"][4, 2] = np.nan
    _expect(episode, E.NonFiniteError, "[observation/robot_state/joint_velocities]", "step 4")


def test_inf(episode):
    with _h5(episode) as h5:
        h5["action/joint_velocity"][0, 0] = np.inf
    _expect(episode, E.NonFiniteError, "[action/joint_velocity]")


def test_missing_mp4(episode, recording):
    _mp4(episode, recording).unlink()
    _expect(episode, E.MissingFileError, f"{recording.wrist_serial}.mp4")


def test_undecodable_mp4(episode, recording):
    _mp4(episode, recording, "exterior").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 20)
    _expect(episode, E.VideoError, f"{recording.exterior_serial}.mp4", "decodable")


def test_more_frames_than_steps(episode, recording):
    frames = np.concatenate([recording.wrist_frames, recording.wrist_frames[-1:]])
    write_mp4(_mp4(episode, recording), frames, 15.0)
    _expect(episode, E.FrameCountError, f"{recording.wrist_serial}.mp4", "16 frames")


def test_two_frames_fewer(episode, recording):
    write_mp4(_mp4(episode, recording), recording.wrist_frames[:-2], 15.0)
    _expect(episode, E.FrameCountError, "13 frames")


def test_one_frame_fewer_truncates_with_warning(episode, recording, caplog):
    write_mp4(_mp4(episode, recording, "exterior"), recording.exterior_frames[:-1], 15.0)
    with caplog.at_level(logging.WARNING, logger="robosteer.droid.reader"):
        ep = read_episode(episode, ReadConfig(image_size=16, target_hz=None))
    assert ep.length == T_STEPS - 1 and ep.source_length == T_STEPS - 1
    assert ep.images.shape[0] == ep.actions.shape[0] == T_STEPS - 1
    assert ep.metadata["robosteer_truncated_from"] == T_STEPS
    assert any("truncating" in r.getMessage() for r in caplog.records)
    # at 6 Hz the truncated episode keeps the grid steps below 14
    ep6 = read_episode(episode, CFG)
    assert ep6.source_steps.max() <= T_STEPS - 2


def test_missing_instruction(episode):
    with _h5(episode) as h5:
        h5.attrs["current_task"] = ""
    mp = _meta_path(episode)
    meta = json.loads(mp.read_text())
    meta["current_task"] = "  "
    mp.write_text(json.dumps(meta))
    _expect(episode, E.MissingInstructionError, "current_task")


def test_missing_metadata(episode):
    _meta_path(episode).unlink()
    _expect(episode, E.MissingFileError, "metadata_<uuid>.json")


def test_malformed_metadata_json(episode):
    _meta_path(episode).write_text("{not json")
    _expect(episode, E.CorruptFileError, "metadata_", "valid JSON")


def test_metadata_missing_uuid(episode):
    mp = _meta_path(episode)
    meta = json.loads(mp.read_text())
    del meta["uuid"]
    mp.write_text(json.dumps(meta))
    _expect(episode, E.MetadataError, "[uuid]")


def test_metadata_wrong_type(episode):
    mp = _meta_path(episode)
    meta = json.loads(mp.read_text())
    meta["wrist_cam_serial"] = 12345
    mp.write_text(json.dumps(meta))
    _expect(episode, E.MetadataError, "[wrist_cam_serial]", "a string")


def test_metadata_length_disagrees(episode):
    mp = _meta_path(episode)
    meta = json.loads(mp.read_text())
    meta["trajectory_length"] = 99
    mp.write_text(json.dumps(meta))
    _expect(episode, E.MetadataError, "[trajectory_length]", "99")


def test_wrist_camera_mismatch(episode, recording):
    with _h5(episode) as h5:
        h5[f"observation/camera_type/{recording.wrist_serial}"][:] = 1
    _expect(episode, E.CameraError, "camera_type")


@pytest.mark.parametrize(
    "name",
    ["../etc", "a/b", "a\\b", ".hidden", "has space", "tab\tname", "tâche", "", "x" * 65, "line\n", "..", "-lead", "a..b"],
)
def test_unsafe_task_names(name):
    with pytest.raises(E.UnsafeTaskNameError, match=r"\[A-Za-z0-9\]"):
        safe_task_name(name)


def test_bad_annotations_file(tmp_path):
    p = tmp_path / "ann.json"
    p.write_text("[1, 2]")
    with pytest.raises(E.MetadataError, match="ann.json"):
        load_annotations(p)
    with pytest.raises(E.MissingFileError):
        load_annotations(tmp_path / "nope.json")


def test_error_is_picklable_and_readable(episode):
    import pickle

    (episode / "trajectory.h5").unlink()
    err = validate_episode(episode, CFG)
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err) and str(again) == str(err)
    assert err.reason.startswith("MissingFileError: ") and err.field == ""
