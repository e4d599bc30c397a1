"""The two in-memory forms of a DROID episode.

* ``EpisodeRecording``: what a recorder produces and ``droid.writer.write_episode``
  takes: raw float64 signals in DROID units at the control rate, full-size camera
  frames. Field names follow DROID's ``trajectory.h5`` (droid_facts.md §1.4).
* ``Episode``: what ``droid.reader.read_episode`` returns for the model: float32
  state / actions in openpi's DROID layout (7 joints + gripper), frames letterboxed
  to a square (``common.images.resize_with_pad``), at the method's rate (6 Hz by default).

Units (droid_facts.md §1.4): joint positions rad; observed joint velocities rad/s;
gripper position 0 = open .. 1 = closed; ``action_joint_velocity`` is DROID's
normalised per-step command (joint delta per step / 0.2 rad, unitless, [-1, 1]);
``action_gripper_position`` the commanded closure in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robosteer_assets.droid.errors import InvalidRecordingError

NUM_JOINTS = 7
STATE_DIM = NUM_JOINTS + 1  # 7 joint positions + gripper position
ACTION_DIM = NUM_JOINTS + 1  # 7 action/joint_velocity + action/gripper_position
EXTERIOR, WRIST = 0, 1  # camera axis of Episode.images
CAMERA_NAMES = ("exterior_image_1_left", "wrist_image_left")  # DROID / openpi key names
# DROID 1.1 normalisation: action/joint_position = q + action/joint_velocity * MAX_JOINT_DELTA
MAX_JOINT_DELTA = 0.2


@dataclass(frozen=True, eq=False)
class EpisodeRecording:
    """One recorded episode, as written to the DROID raw layout.

    Arrays have a leading time axis T (one row per control step at ``control_hz``).
    ``extra_metadata`` is merged into the metadata JSON; its scalar str/int/float/bool
    values are also stored as ``trajectory.h5`` attributes (e.g. ``lab``, ``user``,
    ``building``, ``scene_id``, ``r2d2_version``).

    Optional signals: ``cartesian_positions`` [T,6] (observed EE pose, written to
    ``observation/robot_state/cartesian_position``); ``action_joint_position`` [T,7]
    (commanded joints; defaults to ``q + action_joint_velocity * 0.2`` as DROID
    computes it); ``step_start_ms`` [T] int64 host clock of each control step
    (defaults to a uniform grid at ``control_hz`` starting at ``start_time_ms``).
    """

    uuid: str
    instruction: str
    control_hz: float
    joint_positions: np.ndarray  # [T,7] f64 rad (observed)
    gripper_positions: np.ndarray  # [T] f64, 0 open .. 1 closed (observed)
    joint_velocities: np.ndarray  # [T,7] f64 rad/s (observed)
    action_joint_velocity: np.ndarray  # [T,7] f64 DROID normalised per-step command
    action_gripper_position: np.ndarray  # [T] f64 commanded closure in [0,1]
    exterior_frames: np.ndarray  # [T,H,W,3] uint8 RGB
    wrist_frames: np.ndarray  # [T,H,W,3] uint8 RGB
    exterior_serial: str
    wrist_serial: str
    success: bool = True
    extra_metadata: dict[str, Any] = field(default_factory=dict)
    cartesian_positions: np.ndarray | None = None  # [T,6] f64
    action_joint_position: np.ndarray | None = None  # [T,7] f64
    step_start_ms: np.ndarray | None = None  # [T] int64
    start_time_ms: int = 1_700_000_000_000

    @property
    def num_steps(self) -> int:
        return int(np.asarray(self.joint_positions).shape[0])

    def validate(self) -> None:
        """Raise ``InvalidRecordingError`` naming the first malformed field."""
        where = f"<EpisodeRecording {self.uuid!r}>"

        def bad(fld: str, expected: str, found: str) -> InvalidRecordingError:
            return InvalidRecordingError(where, fld, expected, found)

        if not isinstance(self.uuid, str) or not self.uuid or "/" in self.uuid or self.uuid != self.uuid.strip():
            raise bad("uuid", "a non-empty string without '/' or surrounding whitespace", repr(self.uuid))
        if not isinstance(self.instruction, str) or not self.instruction.strip():
            raise bad("instruction", "a non-empty language instruction", repr(self.instruction))
        if not (isinstance(self.control_hz, (int, float)) and np.isfinite(self.control_hz) and self.control_hz > 0):
            raise bad("control_hz", "a positive finite rate in Hz", repr(self.control_hz))
        for name in ("exterior_serial", "wrist_serial"):
            s = getattr(self, name)
            if not isinstance(s, str) or not s or any(c in s for c in "/\\ ") or s.startswith("."):
                raise bad(name, "a camera serial usable as a file name", repr(s))
        if self.exterior_serial == self.wrist_serial:
            raise bad("exterior_serial", "a serial different from wrist_serial", repr(self.exterior_serial))
        T = self.num_steps
        if T < 1:
            raise bad("joint_positions", "at least one step", "T=0")
        shapes: dict[str, tuple] = {
            "joint_positions": (T, NUM_JOINTS),
            "gripper_positions": (T,),
            "joint_velocities": (T, NUM_JOINTS),
            "action_joint_velocity": (T, NUM_JOINTS),
            "action_gripper_position": (T,),
        }
        if self.cartesian_positions is not None:
            shapes["cartesian_positions"] = (T, 6)
        if self.action_joint_position is not None:
            shapes["action_joint_position"] = (T, NUM_JOINTS)
        for name, shape in shapes.items():
            a = np.asarray(getattr(self, name))
            if a.shape != shape:
                raise bad(name, f"shape {shape}", f"shape {a.shape}")
            if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
                raise bad(name, "a real numeric array", f"dtype {a.dtype}")
            if not np.all(np.isfinite(a)):
                raise bad(name, "finite values", f"{int(np.size(a) - np.isfinite(a).sum())} NaN/inf values")
        if self.step_start_ms is not None:
            a = np.asarray(self.step_start_ms)
            if a.shape != (T,) or not np.issubdtype(a.dtype, np.integer):
                raise bad("step_start_ms", f"int64 shape {(T,)}", f"{a.dtype} shape {a.shape}")
        for name in ("exterior_frames", "wrist_frames"):
            a = np.asarray(getattr(self, name))
            if a.ndim != 4 or a.shape[0] != T or a.shape[-1] != 3:
                raise bad(name, f"shape ({T}, H, W, 3)", f"shape {a.shape}")
            if a.dtype != np.uint8:
                raise bad(name, "dtype uint8", f"dtype {a.dtype}")
            if a.shape[1] % 2 or a.shape[2] % 2 or a.shape[1] < 2 or a.shape[2] < 2:
                raise bad(name, "even frame height and width (H.264 yuv420p)", f"{a.shape[1]}x{a.shape[2]}")
        if not isinstance(self.extra_metadata, dict):
            raise bad("extra_metadata", "a dict", type(self.extra_metadata).__name__)


@dataclass(frozen=True, eq=False)
class Episode:
    """A decoded, validated episode ready for the model.

    ``state`` [T,8] f32 = 7 joint positions + gripper position;
    ``actions`` [T,8] f32 = 7 ``action/joint_velocity`` + ``action/gripper_position``;
    ``joint_velocities`` [T,7] f32 observed rad/s (used for keyframes);
    ``images`` uint8 [T,2,S,S,3] (0 = exterior, 1 = wrist).
    ``source_steps`` [T] i64: the index of each row in the recorded (h5) time axis;
    ``control_hz``: the rate of the rows (after resampling); ``source_hz``: the rate
    the episode was recorded at.
    """

    uuid: str
    task_dir: Path
    instruction: str
    state: np.ndarray
    actions: np.ndarray
    joint_velocities: np.ndarray
    images: np.ndarray
    path: Path | None = None
    control_hz: float = 6.0
    source_hz: float = 6.0
    source_steps: np.ndarray | None = None
    source_length: int = 0  # recorded (h5) steps used, after a one-frame-short truncation
    success: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(self.state.shape[0])

    @property
    def gripper(self) -> np.ndarray:
        """Observed gripper position [T] (0 open .. 1 closed)."""
        return self.state[:, NUM_JOINTS]

    @property
    def joint_positions(self) -> np.ndarray:
        return self.state[:, :NUM_JOINTS]
