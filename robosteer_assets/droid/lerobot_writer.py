"""Write ``EpisodeRecording``s as a LeRobot v2.1 dataset, so demonstrations recorded
here (e.g. ``robosteer sim demos --format lerobot``) train with openpi / LeRobot directly.

Features follow openpi's raw-DROID conversion (``feature_map.OPENPI_DROID``):
``exterior_image_1_left`` and ``wrist_image_left`` (video, H.264 MP4 through
``droid.writer.write_mp4``), ``joint_position`` (7), ``gripper_position`` (1),
``actions`` (8 = DROID's ``action/joint_velocity`` command + ``action/gripper_position``),
all float32, plus ``joint_velocity`` (7, observed rad/s) which openpi's conversion lacks
and keyframes use. LeRobot's own columns ``timestamp`` (frame_index / fps),
``frame_index``, ``episode_index``, ``index`` and ``task_index`` are added.

Layout (v2.1)::

    meta/info.json  meta/episodes.jsonl  meta/tasks.jsonl  meta/episodes_stats.jsonl
    data/chunk-000/episode_000000.parquet
    videos/chunk-000/<video_key>/episode_000000.mp4

One-value features (``gripper_position``) are plain float32 columns and wider ones
fixed-size lists, as HF ``datasets`` stores ``shape (1,)`` and ``shape (n,)``. The whole
dataset is built in a temporary sibling and renamed into place on success
(``common.atomic.atomic_dir``): an interrupted export leaves nothing at ``root``.
"""

from __future__ import annotations

import json
import math
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from robosteer_assets.common.atomic import atomic_dir
from robosteer_assets.droid.episode import EpisodeRecording
from robosteer_assets.droid.writer import VideoConfig, write_mp4

CODEBASE_VERSION = "v2.1"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
EXTERIOR_KEY, WRIST_KEY = "exterior_image_1_left", "wrist_image_left"
NUMERIC = {  # feature -> (width, values of a recording [T, width])
    "joint_position": (7, lambda r: r.joint_positions),
    "gripper_position": (1, lambda r: np.asarray(r.gripper_positions)[:, None]),
    "joint_velocity": (7, lambda r: r.joint_velocities),
    "actions": (8, lambda r: np.concatenate([r.action_joint_velocity, np.asarray(r.action_gripper_position)[:, None]], 1)),
}
_STATS_MAX_FRAMES = 20
_STATS_SIDE = 150


def _stats(x: np.ndarray) -> dict[str, list]:
    x = np.asarray(x, dtype=np.float64)
    return {"min": x.min(0).tolist(), "max": x.max(0).tolist(), "mean": x.mean(0).tolist(),
            "std": x.std(0).tolist(), "count": [int(x.shape[0])]}


def _image_stats(frames: np.ndarray) -> dict[str, list]:
    """Per-channel stats in [0, 1], shaped (3, 1, 1) as LeRobot stores them for images, over
    at most ``_STATS_MAX_FRAMES`` frames subsampled to about ``_STATS_SIDE`` pixels a side
    (as LeRobot samples images for its statistics)."""
    step = max(1, math.ceil(len(frames) / _STATS_MAX_FRAMES))
    px_step = max(1, max(frames.shape[1:3]) // _STATS_SIDE)
    px = frames[::step, ::px_step, ::px_step].reshape(-1, 3).astype(np.float32) / 255.0
    s = _stats(px)
    return {k: ([[[v]] for v in s[k]] if k != "count" else [int(len(frames))]) for k in s}


class LeRobotWriter:
    """``with LeRobotWriter(root) as w: w.add(rec) ...`` writes a LeRobot v2.1 dataset at
    ``root`` when the block ends without an exception. Every recording must have the
    same control rate (the dataset's ``fps``) and frame size per camera."""

    def __init__(self, root: str | os.PathLike, robot_type: str = "panda", video: VideoConfig = VideoConfig()):
        self.root = Path(root)
        self.robot_type = robot_type
        self.video = video
        self._stack: ExitStack | None = None
        self._tmp: Path | None = None
        self._episodes: list[dict[str, Any]] = []
        self._stats: list[dict[str, Any]] = []
        self._tasks: dict[str, int] = {}
        self._fps: float | None = None
        self._shapes: dict[str, tuple[int, int]] = {}
        self._frames = 0

    def __enter__(self) -> LeRobotWriter:
        self._stack = ExitStack()
        self._tmp = self._stack.enter_context(atomic_dir(self.root))
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                if not self._episodes:
                    raise ValueError(f"{self.root}: no episodes added; a LeRobot dataset needs at least one")
                self._write_meta()
            except BaseException as e:
                self._stack.__exit__(type(e), e, e.__traceback__)  # removes the temporary dataset
                raise
        return self._stack.__exit__(exc_type, exc, tb)

    def add(self, rec: EpisodeRecording) -> Path:
        """Write one episode's parquet and videos; returns the parquet path."""
        import polars as pl

        if self._tmp is None:
            raise RuntimeError("LeRobotWriter.add: use the writer in a `with` block")
        rec.validate()
        fps = float(rec.control_hz)
        if self._fps is None:
            self._fps = fps
        elif abs(fps - self._fps) > 1e-9 * self._fps:
            raise ValueError(f"recording {rec.uuid}: control_hz {fps:g} differs from the dataset's fps {self._fps:g}")
        cams = {EXTERIOR_KEY: np.asarray(rec.exterior_frames), WRIST_KEY: np.asarray(rec.wrist_frames)}
        for key, frames in cams.items():
            hw = tuple(frames.shape[1:3])
            if self._shapes.setdefault(key, hw) != hw:
                raise ValueError(f"recording {rec.uuid} [{key}]: frames {hw} differ from the dataset's {self._shapes[key]}")
        i, T = len(self._episodes), rec.num_steps
        task_index = self._tasks.setdefault(rec.instruction, len(self._tasks))
        chunk = i // CHUNKS_SIZE
        cols: dict[str, pl.Series] = {}
        stats: dict[str, Any] = {}
        for name, (width, get) in NUMERIC.items():
            v = np.asarray(get(rec), dtype=np.float32).reshape(T, width)
            cols[name] = pl.Series(name, v[:, 0]) if width == 1 else pl.Series(name, v, dtype=pl.Array(pl.Float32, width))
            stats[name] = _stats(v)
        frame_index = np.arange(T, dtype=np.int64)
        extra = {
            "timestamp": (frame_index / fps).astype(np.float32),
            "frame_index": frame_index,
            "episode_index": np.full(T, i, dtype=np.int64),
            "index": self._frames + frame_index,
            "task_index": np.full(T, task_index, dtype=np.int64),
        }
        for name, v in extra.items():
            cols[name] = pl.Series(name, v)
            stats[name] = _stats(v[:, None])
        path = self._tmp / DATA_PATH.format(episode_chunk=chunk, episode_index=i)
        path.parent.mkdir(parents=True, exist_ok=True)
        pl.DataFrame(list(cols.values())).write_parquet(path)
        for key, frames in cams.items():
            write_mp4(self._tmp / VIDEO_PATH.format(episode_chunk=chunk, video_key=key, episode_index=i), frames, fps,
                      self.video)
            stats[key] = _image_stats(frames)
        self._episodes.append({"episode_index": i, "tasks": [rec.instruction], "length": T})
        self._stats.append({"episode_index": i, "stats": stats})
        self._frames += T
        return self.root / path.relative_to(self._tmp)

    def _features(self) -> dict[str, Any]:
        feats: dict[str, Any] = {}
        for key, (h, w) in self._shapes.items():
            feats[key] = {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channel"],
                          "info": {"video.fps": self._fps, "video.height": h, "video.width": w, "video.channels": 3,
                                   "video.codec": "h264", "video.pix_fmt": self.video.pix_fmt,
                                   "video.is_depth_map": False, "has_audio": False}}
        for name, (width, _) in NUMERIC.items():
            feats[name] = {"dtype": "float32", "shape": [width], "names": [name]}
        feats["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
        for name in ("frame_index", "episode_index", "index", "task_index"):
            feats[name] = {"dtype": "int64", "shape": [1], "names": None}
        return feats

    def _write_meta(self) -> None:
        n = len(self._episodes)
        fps = int(self._fps) if float(self._fps).is_integer() else self._fps
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": n,
            "total_frames": self._frames,
            "total_tasks": len(self._tasks),
            "total_videos": n * len(self._shapes),
            "total_chunks": (n - 1) // CHUNKS_SIZE + 1,
            "chunks_size": CHUNKS_SIZE,
            "fps": fps,
            "splits": {"train": f"0:{n}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH,
            "features": self._features(),
        }
        meta = self._tmp / "meta"
        meta.mkdir(parents=True, exist_ok=True)
        (meta / "info.json").write_text(json.dumps(info, indent=4))
        (meta / "tasks.jsonl").write_text("".join(json.dumps({"task_index": i, "task": t}) + "\n"
                                                  for t, i in self._tasks.items()))
        (meta / "episodes.jsonl").write_text("".join(json.dumps(e) + "\n" for e in self._episodes))
        (meta / "episodes_stats.jsonl").write_text("".join(json.dumps(s) + "\n" for s in self._stats))


def write_lerobot_dataset(root: str | os.PathLike, recordings, robot_type: str = "panda") -> Path:
    """Write an iterable of ``EpisodeRecording``s as a LeRobot v2.1 dataset at ``root``."""
    with LeRobotWriter(root, robot_type=robot_type) as w:
        for rec in recordings:
            w.add(rec)
    return Path(root)
