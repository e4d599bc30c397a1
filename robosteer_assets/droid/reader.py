"""Read and validate one DROID raw episode into an ``Episode`` (docs/ARCHITECTURE.md).

What is read (droid_facts.md §1.4):

* state   = ``observation/robot_state/joint_positions`` (7) + ``.../gripper_position`` (1)
* actions = ``action/joint_velocity`` (7, DROID's normalised per-step command)
  + ``action/gripper_position`` (1)
* ``observation/robot_state/joint_velocities`` (rad/s, for keyframes)
* the instruction: ``language_instruction1..3`` (first non-empty) of a DROID
  annotations JSON ``{uuid: {...}}`` when given and the uuid is in it, else the
  h5 attr ``current_task``, else metadata ``current_task``
* two cameras: the exterior one chosen by ``ReadConfig.exterior`` and the wrist
  one (``camera_type`` 0 / metadata ``wrist_cam_serial``), MP4 frame i = h5 step i.

Images: letterboxed to ``image_size`` x ``image_size`` by ``common.images.resize_with_pad``
(aspect kept, PIL bilinear, centred on black), the same function serving applies to a live
frame (``vla.policy``), so a 1280x720 DROID frame keeps its full width in training as it does
at inference. A side-by-side stereo MP4 (aspect ratio > ``stereo_min_aspect``: the
``-stereo`` 2560x720 layout, or DROID's old ``<serial>.mp4`` convention) is cut to its left
view first (:func:`frame_to_image`).

Rate (the paper records at 6 Hz; DROID at 15 Hz). The recorded rate is
``ReadConfig.source_hz`` if set, else h5 attr / metadata ``control_hz``, else
the median spacing of ``observation/timestamp/control/step_start`` (ms), else
15 Hz. If it is within ``rate_tolerance`` of ``target_hz`` (or ``target_hz`` is
None) the episode passes through. Otherwise rows are selected on the target
time grid: row k is the recorded step ``i_k = floor(k * source_hz / target_hz + 1/2)``
for every ``i_k <= T-1`` (nearest recorded step to t = k / target_hz).
Observations (joint positions, gripper, rad/s velocities, frames) are taken at
``i_k``. ``action/joint_velocity`` is a per-step command (joint delta per step /
0.2 rad), so with ``joint_velocity_resample="sum"`` (default) the new command is
the sum of the recorded commands over the steps it spans, ``[i_k, i_{k+1})``
(the last row spans the nominal stride, cut at T), clipped to DROID's [-1, 1];
``"select"`` takes the command at ``i_k`` unchanged. ``action/gripper_position``
is an absolute target and is taken at ``i_k``. Up-sampling (recorded slower
than the target) is refused with ``RateError``.

Validation errors are ``droid.errors.EpisodeError`` subclasses that name the
file, the field and what was expected vs found. DROID's known quirk of an MP4
with exactly one frame fewer than the h5 (droid_facts §5) is repaired by
truncating the episode to the frames, with a warning; any other mismatch is an
error.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robosteer_assets.common.images import resize_with_pad
from robosteer_assets.common.progress import get_logger
from robosteer_assets.droid import errors as E
from robosteer_assets.droid.episode import NUM_JOINTS, Episode
from robosteer_assets.droid.layout import MP4_DIR, TRAJECTORY_FILE, metadata_path, task_dir_of, uuid_from_metadata_name

log = get_logger("droid.reader")

DROID_CONTROL_HZ = 15.0
EXTERIOR_CHOICES = ("left", "right", "ext1", "ext2")
ANNOTATION_KEYS = ("language_instruction1", "language_instruction2", "language_instruction3")


@dataclass(frozen=True)
class ReadConfig:
    """How a raw episode becomes model input (paper §4.2 / B.2 defaults).

    image_size: side S of the square images (paper: 224).
    target_hz: rate of the returned rows (paper: 6 Hz); None keeps the recorded rate.
    source_hz: recorded rate override; None = from attrs / metadata / timestamps / 15 Hz.
    rate_tolerance: relative difference under which rates count as equal.
    exterior: which exterior camera: "left" (metadata ``left_mp4_path``; the only
        exterior camera when there is one), "right", "ext1", "ext2".
    joint_velocity_resample: "sum" or "select" (see the module docstring).
    stereo_min_aspect: width / height above which an MP4 is side-by-side stereo.
    """

    image_size: int = 224
    target_hz: float | None = 6.0
    source_hz: float | None = None
    rate_tolerance: float = 0.05
    exterior: str = "left"
    joint_velocity_resample: str = "sum"
    stereo_min_aspect: float = 2.5

    def __post_init__(self):
        if not isinstance(self.image_size, int) or self.image_size < 1:
            raise ValueError(f"ReadConfig.image_size: expected a positive int, found {self.image_size!r}")
        for name in ("target_hz", "source_hz"):
            v = getattr(self, name)
            if v is not None and not (np.isfinite(v) and v > 0):
                raise ValueError(f"ReadConfig.{name}: expected a positive rate in Hz or None, found {v!r}")
        if self.exterior not in EXTERIOR_CHOICES:
            raise ValueError(f"ReadConfig.exterior: expected one of {EXTERIOR_CHOICES}, found {self.exterior!r}")
        if self.joint_velocity_resample not in ("sum", "select"):
            raise ValueError(
                f"ReadConfig.joint_velocity_resample: expected 'sum' or 'select', found {self.joint_velocity_resample!r}"
            )


# ----------------------------------------------------------------------------- metadata / annotations


def load_annotations(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """Load a DROID annotations JSON ``{uuid: {"language_instruction1": str, ...}}``."""
    path = Path(path)
    if not path.is_file():
        raise E.MissingFileError(path, "", "a DROID language annotations JSON", "no such file")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise E.CorruptFileError(path, "", "valid JSON", f"parse error: {e}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise E.MetadataError(path, "", "an object {uuid: {language_instruction1: str, ...}}", type(data).__name__)
    return data


def read_metadata(episode_dir: Path) -> tuple[Path, dict[str, Any]]:
    """Find, parse and check ``metadata_<uuid>.json``; returns (path, dict)."""
    path = metadata_path(episode_dir)
    if path is None:
        raise E.MissingFileError(episode_dir / "metadata_<uuid>.json", "", "a metadata_<uuid>.json file", "none")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise E.CorruptFileError(path, "", "valid JSON", f"parse error: {e}") from None
    if not isinstance(meta, dict):
        raise E.MetadataError(path, "", "a JSON object", type(meta).__name__)
    if "uuid" not in meta:
        raise E.MetadataError(path, "uuid", "the episode uuid (str)", "no such key")
    if not isinstance(meta["uuid"], str) or not meta["uuid"]:
        raise E.MetadataError(path, "uuid", "a non-empty string", repr(meta["uuid"]))
    if meta["uuid"] != uuid_from_metadata_name(path):
        raise E.MetadataError(path, "uuid", f"the file name's uuid {uuid_from_metadata_name(path)!r}", repr(meta["uuid"]))
    for key in ("wrist_cam_serial", "ext1_cam_serial", "ext2_cam_serial", "left_mp4_path", "right_mp4_path", "current_task"):
        if key in meta and meta[key] is not None and not isinstance(meta[key], str):
            raise E.MetadataError(path, key, "a string", f"{type(meta[key]).__name__} {meta[key]!r}")
    for key in ("trajectory_length",):
        if key in meta and (isinstance(meta[key], bool) or not isinstance(meta[key], int)):
            raise E.MetadataError(path, key, "an integer", f"{type(meta[key]).__name__} {meta[key]!r}")
    if "control_hz" in meta and (isinstance(meta["control_hz"], bool) or not isinstance(meta["control_hz"], (int, float))):
        raise E.MetadataError(path, "control_hz", "a number", repr(meta["control_hz"]))
    return path, meta


def _instruction(annotations: dict | None, uuid: str, attrs: dict, meta: dict, h5_path: Path, meta_path: Path) -> str:
    if annotations and uuid in annotations:
        entry = annotations[uuid] or {}
        for key in ANNOTATION_KEYS:
            text = entry.get(key)
            if isinstance(text, str) and text.strip():
                return text.strip()
    for text in (attrs.get("current_task"), meta.get("current_task")):
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if isinstance(text, str) and text.strip():
            return text.strip()
    where = "annotations, " if annotations is not None else ""
    raise E.MissingInstructionError(
        h5_path, "attrs/current_task",
        f"a language instruction ({where}h5 attr current_task or {meta_path.name} current_task)",
        "none or empty",
    )


# ----------------------------------------------------------------------------- h5

_REQUIRED = {
    # name -> (trailing shape, accepted alternative trailing shape)
    "observation/robot_state/joint_positions": ((NUM_JOINTS,), None),
    "observation/robot_state/gripper_position": ((), (1,)),
    "observation/robot_state/joint_velocities": ((NUM_JOINTS,), None),
    "action/joint_velocity": ((NUM_JOINTS,), None),
    "action/gripper_position": ((), (1,)),
}


def _read_h5(h5_path: Path) -> tuple[dict[str, np.ndarray], dict[str, int], dict[str, Any], np.ndarray | None]:
    """Return (required datasets as f64 with canonical shapes, camera types, attrs, step_start ms)."""
    import h5py

    if not h5_path.is_file():
        raise E.MissingFileError(h5_path, "", "the episode's trajectory.h5", "no such file")
    try:
        h5 = h5py.File(h5_path, "r")
    except (OSError, RuntimeError) as e:
        raise E.CorruptFileError(h5_path, "", "a readable HDF5 file", f"{type(e).__name__}: {e}") from None
    with h5:
        try:
            attrs = {k: h5.attrs[k] for k in h5.attrs.keys()}
        except (OSError, RuntimeError) as e:
            raise E.CorruptFileError(h5_path, "attrs", "readable file attributes", str(e)) from None
        data: dict[str, np.ndarray] = {}
        lengths: dict[str, int] = {}
        for name, (shape, alt) in _REQUIRED.items():
            obj = h5.get(name)
            if obj is None or not isinstance(obj, h5py.Dataset):
                found = "a group" if obj is not None else "nothing"
                raise E.MissingFieldError(h5_path, name, "a dataset", found)
            if not (np.issubdtype(obj.dtype, np.floating) or np.issubdtype(obj.dtype, np.integer)) or obj.dtype == bool:
                raise E.DTypeError(h5_path, name, "a float dataset (f64 in DROID)", f"dtype {obj.dtype}")
            if len(obj.shape) < 1 or obj.shape[1:] not in (shape, alt):
                want = f"(T, {', '.join(map(str, shape))})" if shape else "(T,)"
                raise E.ShapeError(h5_path, name, f"shape {want}", f"shape {obj.shape}")
            try:
                arr = np.asarray(obj[()], dtype=np.float64)
            except (OSError, RuntimeError) as e:
                raise E.CorruptFileError(h5_path, name, "a readable dataset", str(e)) from None
            if alt is not None and arr.shape[1:] == alt:
                arr = arr.reshape(arr.shape[0], *shape)
            data[name] = arr
            lengths[name] = arr.shape[0]
        cam_group = h5.get("observation/camera_type")
        camera_types: dict[str, int] = {}
        if cam_group is not None:
            if not isinstance(cam_group, h5py.Group):
                raise E.MissingFieldError(h5_path, "observation/camera_type", "a group of per-serial datasets", "a dataset")
            for serial in sorted(cam_group.keys()):
                ds = cam_group[serial]
                name = f"observation/camera_type/{serial}"
                if not isinstance(ds, h5py.Dataset) or len(ds.shape) != 1 or not np.issubdtype(ds.dtype, np.integer):
                    found = f"{getattr(ds, 'dtype', '?')} {getattr(ds, 'shape', '?')}"
                    raise E.ShapeError(h5_path, name, "an integer dataset of shape (T,)", found)
                lengths[name] = ds.shape[0]
                if ds.shape[0]:
                    camera_types[serial] = int(ds[0])
        step_start = None
        ts = h5.get("observation/timestamp/control/step_start")
        if isinstance(ts, h5py.Dataset) and len(ts.shape) == 1 and np.issubdtype(ts.dtype, np.number):
            step_start = np.asarray(ts[()], dtype=np.float64)
            lengths["observation/timestamp/control/step_start"] = ts.shape[0]
    if len(set(lengths.values())) > 1:
        ref_name = "observation/robot_state/joint_positions"
        T = lengths[ref_name]
        bad = next(n for n, L in lengths.items() if L != T)
        raise E.LengthMismatchError(h5_path, bad, f"leading length {T} (as {ref_name})", f"length {lengths[bad]}")
    if lengths["observation/robot_state/joint_positions"] < 1:
        raise E.ShapeError(h5_path, "observation/robot_state/joint_positions", "at least one step", "T=0")
    for name, arr in data.items():
        finite = np.isfinite(arr)
        if not finite.all():
            bad_rows = np.where(~finite.reshape(arr.shape[0], -1).all(axis=1))[0]
            raise E.NonFiniteError(
                h5_path, name, "finite values",
                f"{int((~finite).sum())} NaN/inf values (first at step {int(bad_rows[0])})",
            )
    return data, camera_types, attrs, step_start


def _attr_str(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.generic):
        return v.item()
    return v


# ----------------------------------------------------------------------------- cameras


def _serial_of_path(p: str) -> str:
    stem = Path(p).stem
    return stem[: -len("-stereo")] if stem.endswith("-stereo") else stem


def select_cameras(
    episode_dir: Path, meta_path: Path, meta: dict, camera_types: dict[str, int], exterior: str
) -> tuple[str, str]:
    """(exterior serial, wrist serial) from metadata serials / ``observation/camera_type``."""
    h5_path = episode_dir / TRAJECTORY_FILE
    wrist_types = [s for s, t in camera_types.items() if t == 0]
    ext_types = sorted(s for s, t in camera_types.items() if t != 0)
    wrist = meta.get("wrist_cam_serial") or None
    if wrist is None:
        if len(wrist_types) != 1:
            raise E.CameraError(
                h5_path, "observation/camera_type", "exactly one wrist camera (type 0) or metadata wrist_cam_serial",
                f"{len(wrist_types)} wrist cameras {wrist_types}",
            )
        wrist = wrist_types[0]
    elif camera_types and camera_types.get(wrist, 0) != 0:
        raise E.CameraError(
            h5_path, f"observation/camera_type/{wrist}", "0 (wrist) for metadata wrist_cam_serial",
            str(camera_types.get(wrist)),
        )
    ext1 = meta.get("ext1_cam_serial") or (ext_types[0] if len(ext_types) > 0 else None)
    ext2 = meta.get("ext2_cam_serial") or (ext_types[1] if len(ext_types) > 1 else None)
    exteriors = [s for s in (ext1, ext2) if s]
    if exterior in ("ext1", "ext2"):
        serial = ext1 if exterior == "ext1" else ext2
        if not serial:
            raise E.CameraError(
                meta_path, f"{exterior}_cam_serial", f"an {exterior} exterior camera", "none in metadata or camera_type"
            )
    else:
        key = f"{exterior}_mp4_path"
        serial = _serial_of_path(meta[key]) if meta.get(key) else None
        if serial is None:
            if len(exteriors) == 1:
                serial = exteriors[0]  # the only exterior camera is both left and right
            else:
                raise E.CameraError(
                    meta_path, key,
                    f"the {exterior} exterior camera's MP4 path (or a single exterior camera; else use ReadConfig.exterior='ext1'/'ext2')",
                    f"{len(exteriors)} exterior cameras and no {key}",
                )
    if serial == wrist:
        raise E.CameraError(
            meta_path, f"{exterior}_cam_serial", "an exterior camera different from the wrist camera", serial
        )
    return serial, wrist


# ----------------------------------------------------------------------------- video


def frame_to_image(frame: np.ndarray, size: int, stereo_min_aspect: float = 2.5) -> np.ndarray:
    """One decoded uint8 ``[H, W, 3]`` camera frame -> the stored ``[size, size, 3]`` image.

    A side-by-side stereo frame (``W > stereo_min_aspect * H``, e.g. DROID's 2560x720
    ``-stereo`` layout) is cut to its left view first (the left ``W // 2`` columns); the view is
    then letterboxed with ``common.images.resize_with_pad``, the resize ``Policy.infer`` applies
    to a live frame, so demonstrations and requests reach the model alike."""
    frame = np.asarray(frame)
    h, w = frame.shape[:2]
    if w > stereo_min_aspect * h:
        frame = frame[:, : w // 2]
    return resize_with_pad(frame, size, size)


def decode_frames(mp4: Path, keep: np.ndarray, size: int, stereo_min_aspect: float = 2.5) -> tuple[np.ndarray, int]:
    """Decode ``mp4``; return (frames at indices ``keep`` through :func:`frame_to_image` [K,S,S,3],
    total frame count).

    Frames past the end of the video are left as zeros (the caller checks the count).
    """
    import av

    if not mp4.is_file():
        raise E.MissingFileError(mp4, "", "the camera recording", "no such file")
    keep = np.asarray(keep, dtype=np.int64)
    where = {int(i): k for k, i in enumerate(keep)}
    out = np.zeros((len(keep), size, size, 3), dtype=np.uint8)
    n = 0
    try:
        with av.open(str(mp4)) as c:
            if not c.streams.video:
                raise E.VideoError(mp4, "video stream", "a video stream", "none")
            stream = c.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in c.decode(stream):
                k = where.get(n)
                if k is not None:
                    out[k] = frame_to_image(frame.to_ndarray(format="rgb24"), size, stereo_min_aspect)
                n += 1
    except E.EpisodeError:
        raise
    except Exception as e:  # av.error.InvalidDataError etc.
        raise E.VideoError(mp4, "", "a decodable MP4", f"{type(e).__name__}: {e}") from None
    if n == 0:
        raise E.VideoError(mp4, "frames", "at least one video frame", "0 frames")
    return out, n


# ----------------------------------------------------------------------------- rate


def source_rate(cfg: ReadConfig, attrs: dict, meta: dict, step_start: np.ndarray | None) -> float:
    """The recorded control rate (see the module docstring for the order of sources)."""
    if cfg.source_hz is not None:
        return float(cfg.source_hz)
    for v in (_attr_str(attrs.get("control_hz")), meta.get("control_hz")):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v > 0:
            return float(v)
    if step_start is not None and len(step_start) >= 3:
        dt = float(np.median(np.diff(step_start)))
        if dt > 0:
            return 1000.0 / dt
    return DROID_CONTROL_HZ


def resample_indices(T: int, source_hz: float, target_hz: float | None, tolerance: float = 0.05) -> np.ndarray:
    """Recorded step of each output row: all steps if the rates match, else
    ``floor(k * source_hz / target_hz + 0.5)`` for k = 0, 1, ... while <= T-1."""
    if target_hz is None or abs(source_hz / target_hz - 1.0) <= tolerance:
        return np.arange(T, dtype=np.int64)
    stride = source_hz / target_hz
    if stride < 1.0:
        raise ValueError(f"cannot up-sample from {source_hz:g} Hz to {target_hz:g} Hz")
    k = np.arange(int(np.floor((T - 1) / stride + 1e-9)) + 1)
    idx = np.floor(k * stride + 0.5).astype(np.int64)  # nearest step, ties up
    idx = idx[idx <= T - 1]
    return np.unique(idx)


def resample_joint_velocity_command(cmd: np.ndarray, idx: np.ndarray, stride: float, mode: str = "sum") -> np.ndarray:
    """Per-step command at the new rate: the sum over ``[idx[k], idx[k+1])`` (last row:
    the nominal stride, cut at T), clipped to [-1, 1]; or ``cmd[idx]`` for ``"select"``."""
    if mode == "select" or len(idx) == len(cmd):
        return cmd[idx]
    T = len(cmd)
    ends = np.append(idx[1:], min(T, int(idx[-1] + round(stride))))
    csum = np.concatenate([np.zeros((1, cmd.shape[1])), np.cumsum(cmd, axis=0)])
    out = csum[np.maximum(ends, idx + 1)] - csum[idx]
    return np.clip(out, -1.0, 1.0)


# ----------------------------------------------------------------------------- public


def read_episode(episode_dir: str | os.PathLike, cfg: ReadConfig = ReadConfig(), annotations: dict | None = None) -> Episode:
    """Decode and validate one DROID raw episode; raises an ``EpisodeError`` subclass on bad input."""
    episode_dir = Path(episode_dir)
    if not episode_dir.is_dir():
        raise E.MissingFileError(episode_dir, "", "an episode folder", "no such directory")
    meta_path, meta = read_metadata(episode_dir)
    h5_path = episode_dir / TRAJECTORY_FILE
    data, camera_types, attrs, step_start = _read_h5(h5_path)
    attrs = {k: _attr_str(v) for k, v in attrs.items()}
    uuid = meta["uuid"]
    T = data["observation/robot_state/joint_positions"].shape[0]
    if isinstance(meta.get("trajectory_length"), int) and meta["trajectory_length"] != T:
        raise E.MetadataError(meta_path, "trajectory_length", f"{T} (the h5 length)", str(meta["trajectory_length"]))
    instruction = _instruction(annotations, uuid, attrs, meta, h5_path, meta_path)
    ext_serial, wrist_serial = select_cameras(episode_dir, meta_path, meta, camera_types, cfg.exterior)

    src_hz = source_rate(cfg, attrs, meta, step_start)
    try:
        idx = resample_indices(T, src_hz, cfg.target_hz, cfg.rate_tolerance)
    except ValueError as e:
        raise E.RateError(h5_path, "control rate", f"a rate >= target_hz={cfg.target_hz:g}", f"{src_hz:g} Hz ({e})") from None
    out_hz = src_hz if len(idx) == T else float(cfg.target_hz)

    frames, counts = [], []
    for serial in (ext_serial, wrist_serial):
        f, n = decode_frames(episode_dir / MP4_DIR / f"{serial}.mp4", idx, cfg.image_size, cfg.stereo_min_aspect)
        frames.append(f)
        counts.append(n)
    n_frames = min(counts)
    for serial, n in zip((ext_serial, wrist_serial), counts):
        if n > T or n < T - 1:
            raise E.FrameCountError(
                episode_dir / MP4_DIR / f"{serial}.mp4", "frames",
                f"{T} frames (one per h5 step; {T - 1} tolerated)", f"{n} frames",
            )
    metadata = dict(meta)
    if n_frames == T - 1:
        log.warning(
            "%s: MP4 has %d frames for %d h5 steps (DROID's one-frame-short quirk); truncating the episode to %d steps",
            episode_dir, n_frames, T, n_frames,
        )
        keep = idx < n_frames
        if not keep.any():
            raise E.FrameCountError(episode_dir / MP4_DIR, "frames", "at least one frame after truncation", "0")
        idx = idx[keep]
        frames = [f[keep] for f in frames]
        data = {k: v[:n_frames] for k, v in data.items()}
        metadata["robosteer_truncated_from"] = T
        T = n_frames

    q = data["observation/robot_state/joint_positions"][idx]
    g = data["observation/robot_state/gripper_position"][idx]
    jv_obs = data["observation/robot_state/joint_velocities"][idx]
    stride = src_hz / cfg.target_hz if cfg.target_hz else 1.0
    cmd = resample_joint_velocity_command(data["action/joint_velocity"], idx, stride, cfg.joint_velocity_resample)
    g_cmd = data["action/gripper_position"][idx]
    success = attrs.get("success", meta.get("success", True))
    return Episode(
        uuid=uuid,
        task_dir=task_dir_of(episode_dir),
        instruction=instruction,
        state=np.concatenate([q, g[:, None]], axis=1).astype(np.float32),
        actions=np.concatenate([cmd, g_cmd[:, None]], axis=1).astype(np.float32),
        joint_velocities=jv_obs.astype(np.float32),
        images=np.stack(frames, axis=1),
        path=episode_dir,
        control_hz=out_hz,
        source_hz=src_hz,
        source_steps=idx,
        source_length=T,
        success=bool(success),
        metadata=metadata,
    )


def validate_episode(
    episode_dir: str | os.PathLike, cfg: ReadConfig = ReadConfig(), annotations: dict | None = None
) -> E.EpisodeError | None:
    """``None`` if ``read_episode`` succeeds, else the ``EpisodeError`` it raised."""
    try:
        read_episode(episode_dir, cfg, annotations)
    except E.EpisodeError as e:
        return e
    return None
