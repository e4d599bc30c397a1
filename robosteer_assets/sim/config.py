"""Typed settings of the simulated DROID tabletop (sim_feasibility.md, droid_facts.md §1.4).

Units: metres, radians, seconds. The robot base (Panda ``link0``) sits at the
world origin on the table top (z = 0); +x points away from the robot, +y to the
robot's left (DROID convention: "moving left of the robot is +y").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# DROID reset pose q0 = [0, -pi/5, 0, -4pi/5, 0, 3pi/5, 0] (droid_facts.md §1.4)
DROID_HOME_QPOS = (0.0, -np.pi / 5, 0.0, -4 * np.pi / 5, 0.0, 3 * np.pi / 5, 0.0)
# Franka Emika Panda joint velocity limits (rad/s), datasheet
PANDA_VELOCITY_LIMITS = (2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61)


@dataclass(frozen=True)
class PhysicsConfig:
    """MuJoCo options measured in sim_feasibility.md §3 (0.002 s keeps grasps reliable)."""

    timestep: float = 0.002
    integrator: str = "implicitfast"
    cone: str = "elliptic"
    impratio: float = 10.0
    settle_s: float = 0.3  # objects come to rest at reset before the first observation


@dataclass(frozen=True)
class ControlConfig:
    """DROID-style action interface at the paper's 6 Hz.

    ``action[:7]`` is DROID's normalised ``action/joint_velocity`` command: the
    joint delta per control step is ``command * max_joint_delta`` rad, so the
    joint velocity is ``command * max_joint_delta * control_hz`` rad/s. It is
    clipped to ``[-1, 1]`` (DROID clips its command) and then to the Panda's
    velocity limits. ``action[7]`` is the gripper position, 0 open .. 1 closed.
    """

    control_hz: float = 6.0
    max_joint_delta: float = 0.2  # DROID 1.1: action/joint_position = q + joint_velocity * 0.2
    velocity_limits: tuple[float, ...] = PANDA_VELOCITY_LIMITS
    home_qpos: tuple[float, ...] = DROID_HOME_QPOS
    max_target_lead: float = 0.25  # rad the servo target may lead the measured joint (no wind-up)
    gripper_ctrl_max: float = 255.0  # menagerie 2F-85 actuator range 0..255
    gripper_joint_closed: float = 0.8  # driver joint angle of a fully closed 2F-85 (rad)

    def substeps(self, timestep: float) -> int:
        return int(round(1.0 / (self.control_hz * timestep)))

    def command_to_velocity(self, command: np.ndarray) -> np.ndarray:
        """Normalised DROID command -> rad/s, clipped to [-1, 1] and the Panda limits."""
        v = np.clip(np.asarray(command, dtype=np.float64), -1.0, 1.0) * self.max_joint_delta * self.control_hz
        lim = np.asarray(self.velocity_limits)
        return np.clip(v, -lim, lim)

    def velocity_to_command(self, velocity: np.ndarray) -> np.ndarray:
        """rad/s -> normalised DROID command (joint delta per step / max_joint_delta), clipped to [-1, 1]."""
        lim = np.asarray(self.velocity_limits)
        v = np.clip(np.asarray(velocity, dtype=np.float64), -lim, lim)
        return np.clip(v / (self.max_joint_delta * self.control_hz), -1.0, 1.0)


@dataclass(frozen=True)
class CameraConfig:
    """Two cameras as the paper uses: DROID's left exterior view and the wrist view.

    The exterior camera stands on the robot's left (+y) looking at the grid; the
    wrist camera is mounted on the Robotiq base looking along the fingers.
    Rendering: shadows off, no multisampling (sim_feasibility.md §2.3).
    """

    image_size: int = 224
    exterior_pos: tuple[float, float, float] = (0.42, 0.82, 0.62)
    exterior_target: tuple[float, float, float] = (0.42, -0.02, 0.08)
    exterior_fovy: float = 60.0
    # wrist camera, in the 2F-85 base frame (z = approach direction, y = finger closing axis):
    # beside the gripper, looking along the fingers, which appear at the bottom of the image
    wrist_pos: tuple[float, float, float] = (0.085, 0.0, 0.03)
    wrist_forward: tuple[float, float, float] = (-0.2, 0.0, 1.0)
    wrist_up: tuple[float, float, float] = (1.0, 0.0, 0.0)
    wrist_fovy: float = 80.0
    exterior_serial: str = "sim-exterior-left"
    wrist_serial: str = "sim-wrist"


@dataclass(frozen=True)
class TableConfig:
    """Table top at z = 0 in front of the robot."""

    center_xy: tuple[float, float] = (0.45, 0.0)
    half_size: tuple[float, float] = (0.6, 0.75)
    thickness: float = 0.04
    rgba: tuple[float, float, float, float] = (0.62, 0.5, 0.38, 1.0)
    floor_z: float = -0.75


@dataclass(frozen=True)
class SimConfig:
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    table: TableConfig = field(default_factory=TableConfig)

    @property
    def substeps(self) -> int:
        return self.control.substeps(self.physics.timestep)
