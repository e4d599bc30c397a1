"""Write an ``EpisodeRecording`` in the DROID raw layout (droid_facts.md §1.2-1.5).

::

    <episode_dir>/metadata_<uuid>.json
    <episode_dir>/trajectory.h5
    <episode_dir>/recordings/MP4/<exterior_serial>.mp4
    <episode_dir>/recordings/MP4/<wrist_serial>.mp4

All h5 datasets have the leading time axis T and DROID's dtypes (f64 signals,
i64 host-clock milliseconds, i64 camera types). Videos are H.264 (libx264,
``VideoConfig``: preset veryfast, crf 23, yuv420p), one frame per control step,
container rate = control rate (DROID readers align frames by index anyway).

The whole folder is written to a temporary sibling and renamed into place
(``common.atomic.atomic_dir``), so a reader or the new-demos sensor never sees a
half-written episode. Use ``layout.episode_dir_for`` to pick the folder
(success / failure convention).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

import numpy as np

from robosteer_assets.common.atomic import atomic_dir
from robosteer_assets.droid.episode import MAX_JOINT_DELTA, EpisodeRecording
from robosteer_assets.droid.layout import (  # noqa: F401  (episode_dir_for re-exported for callers)
    METADATA_PREFIX,
    MP4_DIR,
    TRAJECTORY_FILE,
    asctime_name,
    episode_dir_for,
)

CAMERA_TYPE_WRIST, CAMERA_TYPE_EXTERIOR = 0, 1  # observation/camera_type/<serial>
DEFAULT_R2D2_VERSION = "1.3"


@dataclass(frozen=True)
class VideoConfig:
    """H.264 settings for ``recordings/MP4/<serial>.mp4``."""

    codec: str = "libx264"
    preset: str = "veryfast"
    crf: int = 23
    pix_fmt: str = "yuv420p"


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: float, video: VideoConfig = VideoConfig()) -> Path:
    """Encode RGB ``frames`` [T,H,W,3] uint8 (H, W even) to ``path`` (not atomic by itself)."""
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{path}: expected frames uint8 [T,H,W,3], found {frames.dtype} {frames.shape}")
    T, H, W, _ = frames.shape
    if H % 2 or W % 2:
        raise ValueError(f"{path}: expected even frame height and width for {video.pix_fmt}, found {H}x{W}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(video.codec, rate=rate, options={"preset": video.preset, "crf": str(video.crf)})
        stream.width, stream.height, stream.pix_fmt = W, H, video.pix_fmt
        for i in range(T):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _droid_timestamp(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc).replace(tzinfo=None)


def _step_start_ms(rec: EpisodeRecording) -> np.ndarray:
    if rec.step_start_ms is not None:
        return np.asarray(rec.step_start_ms, dtype=np.int64)
    return (rec.start_time_ms + np.round(np.arange(rec.num_steps) * 1000.0 / rec.control_hz)).astype(np.int64)


def build_metadata(rec: EpisodeRecording) -> dict:
    """The ``metadata_<uuid>.json`` record (keys as DROID's release, droid_facts §1.2).

    There is one exterior camera, so ``ext1`` / ``left`` name it and ``ext2`` /
    ``right`` are empty strings.
    """
    t = _droid_timestamp(int(_step_start_ms(rec)[0]))
    extra = dict(rec.extra_metadata)
    lab = str(extra.get("lab", "ROBOSTEER"))
    user_id = str(extra.get("user_id", "00000000"))
    ext_mp4 = str(MP4_DIR / f"{rec.exterior_serial}.mp4")
    wrist_mp4 = str(MP4_DIR / f"{rec.wrist_serial}.mp4")
    meta = {
        "uuid": rec.uuid,
        "lab": lab,
        "user": str(extra.get("user", "robosteer")),
        "user_id": user_id,
        "date": t.strftime("%Y-%m-%d"),
        "timestamp": t.strftime("%Y-%m-%d-%Hh-%Mm-%Ss"),
        "hdf5_path": TRAJECTORY_FILE,
        "building": str(extra.get("building", "N/A")),
        "scene_id": int(extra.get("scene_id", -1)),
        "success": bool(rec.success),
        "robot_serial": str(extra.get("robot_serial", "panda-unknown")),
        "r2d2_version": str(extra.get("r2d2_version", DEFAULT_R2D2_VERSION)),
        "current_task": rec.instruction,
        "trajectory_length": rec.num_steps,
        "control_hz": float(rec.control_hz),
        "wrist_cam_serial": rec.wrist_serial,
        "ext1_cam_serial": rec.exterior_serial,
        "ext2_cam_serial": "",
        "wrist_mp4_path": wrist_mp4,
        "ext1_mp4_path": ext_mp4,
        "ext2_mp4_path": "",
        "left_mp4_path": ext_mp4,
        "right_mp4_path": "",
    }
    for k, v in extra.items():
        meta.setdefault(k, v)
    return meta


def _write_h5(path: Path, rec: EpisodeRecording, meta: dict) -> None:
    import h5py

    T = rec.num_steps
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    q = f64(rec.joint_positions)
    jv_cmd = f64(rec.action_joint_velocity)
    q_cmd = f64(rec.action_joint_position) if rec.action_joint_position is not None else q + jv_cmd * MAX_JOINT_DELTA
    step_start = _step_start_ms(rec)
    step_ms = int(round(1000.0 / rec.control_hz))
    robot_state = {
        "joint_positions": q,
        "joint_velocities": f64(rec.joint_velocities),
        "gripper_position": f64(rec.gripper_positions),
    }
    if rec.cartesian_positions is not None:
        robot_state["cartesian_position"] = f64(rec.cartesian_positions)
    datasets: dict[str, np.ndarray] = {
        "action/joint_velocity": jv_cmd,
        "action/joint_position": q_cmd,
        "action/gripper_position": f64(rec.action_gripper_position),
        **{f"observation/robot_state/{k}": v for k, v in robot_state.items()},
        "observation/timestamp/control/step_start": step_start,
        "observation/timestamp/control/step_end": step_start + step_ms,
        "observation/timestamp/skip_action": np.zeros(T, dtype=bool),
        f"observation/camera_type/{rec.exterior_serial}": np.full(T, CAMERA_TYPE_EXTERIOR, dtype=np.int64),
        f"observation/camera_type/{rec.wrist_serial}": np.full(T, CAMERA_TYPE_WRIST, dtype=np.int64),
    }
    for serial in (rec.exterior_serial, rec.wrist_serial):
        datasets[f"observation/timestamp/cameras/{serial}_frame_received"] = step_start
    with h5py.File(path, "w") as h5:
        for name, data in datasets.items():
            h5.create_dataset(name, data=data, maxshape=(None, *data.shape[1:]))
        attrs = {
            "current_task": rec.instruction,
            "success": bool(rec.success),
            "failure": not bool(rec.success),
            "version_number": meta["r2d2_version"],
            "time": asctime_name(_droid_timestamp(int(step_start[0]))),
            "user": meta["user"],
            "building": meta["building"],
            "scene_id": meta["scene_id"],
            "robot_serial_number": meta["robot_serial"],
            "uuid": rec.uuid,
            "control_hz": float(rec.control_hz),
        }
        for k, v in rec.extra_metadata.items():
            if k not in attrs and isinstance(v, (str, int, float, bool, np.integer, np.floating)):
                attrs[k] = v
        for k, v in attrs.items():
            h5.attrs[k] = v


def write_episode(episode_dir: str | os.PathLike, rec: EpisodeRecording, video: VideoConfig = VideoConfig()) -> Path:
    """Write ``rec`` to ``episode_dir`` in the DROID raw layout, atomically.

    An existing folder at ``episode_dir`` is replaced only once the new one is
    complete. Raises ``InvalidRecordingError`` (naming the field) for a malformed
    recording. Returns ``episode_dir``.
    """
    rec.validate()
    episode_dir = Path(episode_dir)
    meta = build_metadata(rec)
    with atomic_dir(episode_dir) as tmp:
        _write_h5(tmp / TRAJECTORY_FILE, rec, meta)
        write_mp4(tmp / MP4_DIR / f"{rec.exterior_serial}.mp4", rec.exterior_frames, rec.control_hz, video)
        write_mp4(tmp / MP4_DIR / f"{rec.wrist_serial}.mp4", rec.wrist_frames, rec.control_hz, video)
        # metadata last: DROID writes it in postprocessing, once the episode is complete
        (tmp / f"{METADATA_PREFIX}{rec.uuid}.json").write_text(json.dumps(meta, indent=2, default=_json_default))
    return episode_dir


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"metadata value of type {type(o).__name__} is not JSON serialisable")
