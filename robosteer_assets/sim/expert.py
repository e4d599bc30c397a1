"""Scripted experts: mink differential IK on the Robotiq pinch site (sim_feasibility.md §3.4).

Each task is a short list of waypoints for the pinch site (position, gripper
command), re-evaluated from the current physics state every step (closed loop).
The pinch points down (gripper z axis = -world z); the fingers close along a
horizontal axis at angle ``alpha`` chosen per task (a cube face, across the
marker, radially through the mug wall, across the push direction) among the
symmetric choices closest to the current hand yaw. A waypoint is done when the
pinch is within ``tol`` of its target (after ``min_steps``) or after
``max_steps``. The translation per step is capped (``ExpertConfig``).

mink solves ``solve_ik(conf, [frame, posture], dt=1/6, daqp, limits=[configuration,
velocity])`` on a robot-only model built by the same scene builder; the arm part
of the velocity, converted to DROID's normalised command, is the action.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from robosteer_assets.sim.scene import ARM_JOINTS, PINCH_SITE, build_model
from robosteer_assets.sim.tasks import container_inner

import mink  # noqa: E402
import mujoco  # noqa: E402


@dataclass(frozen=True)
class ExpertConfig:
    max_step_m: float = 0.05  # translation cap per 6 Hz step (free space)
    slow_step_m: float = 0.025  # near objects (descend, place, push)
    approach_height: float = 0.12  # above the object before descending
    carry_height: float = 0.20
    position_cost: float = 1.0
    orientation_cost: float = 0.5
    posture_cost: float = 1e-3
    damping: float = 1e-3
    solver: str = "daqp"
    close_steps: int = 4  # steps with the gripper closing before lifting
    open_steps: int = 3


@dataclass
class Waypoint:
    target: Callable[[], np.ndarray]  # pinch position (world)
    grip: float
    tol: float = 0.012
    min_steps: int = 0
    max_steps: int = 30
    slow: bool = False
    name: str = ""


@dataclass
class _IK:
    model: mujoco.MjModel
    conf: mink.Configuration
    frame: mink.FrameTask
    posture: mink.PostureTask
    limits: list = field(default_factory=list)
    arm_q: np.ndarray = None  # qpos addresses of the arm in the IK model
    arm_v: np.ndarray = None


_IK_MODELS: dict = {}


def _ik_model(cfg) -> mujoco.MjModel:
    key = (cfg.physics, cfg.control)
    if key not in _IK_MODELS:
        _IK_MODELS[key] = build_model(cfg=cfg, robot_only=True)
    return _IK_MODELS[key]


def _wrap(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


def closest_alpha(desired: float, current: float, period: float) -> float:
    """The angle ``desired + k * period`` closest to ``current``."""
    k = np.round((current - desired) / period)
    return float(desired + k * period)


def pinch_rotation(alpha: float) -> np.ndarray:
    """Pinch frame pointing down with its y (closing) axis at ``alpha`` in the table plane."""
    y = np.array([np.cos(alpha), np.sin(alpha), 0.0])
    z = np.array([0.0, 0.0, -1.0])
    x = np.cross(y, z)
    return np.stack([x, y, z], axis=1)


class ScriptedExpert:
    def __init__(self, env, cfg: ExpertConfig = ExpertConfig()):
        self.env, self.cfg = env, cfg
        self.view = env.view
        m = _ik_model(env.cfg)
        conf = mink.Configuration(m)
        frame = mink.FrameTask(PINCH_SITE, "site", position_cost=cfg.position_cost,
                               orientation_cost=cfg.orientation_cost, lm_damping=1.0)
        posture = mink.PostureTask(m, cost=cfg.posture_cost)
        q = conf.q.copy()
        arm_q = np.array([m.jnt_qposadr[m.joint(j).id] for j in ARM_JOINTS])
        arm_v = np.array([m.jnt_dofadr[m.joint(j).id] for j in ARM_JOINTS])
        q[arm_q] = env.cfg.control.home_qpos
        conf.update(q)
        posture.set_target_from_configuration(conf)
        ctl = env.cfg.control
        cmd_max = ctl.max_joint_delta * ctl.control_hz  # |command| <= 1 in rad/s
        vel = {j: min(lim, cmd_max) for j, lim in zip(ARM_JOINTS, ctl.velocity_limits)}
        limits = [mink.ConfigurationLimit(m), mink.VelocityLimit(m, vel)]
        self.ik = _IK(m, conf, frame, posture, limits, arm_q, arm_v)
        self.alpha = self._hand_alpha()
        self.waypoints: list[Waypoint] = self.plan()
        self.index = 0
        self.steps_in = 0

    # ---------------------------------------------------------------- geometry helpers
    def _hand_alpha(self) -> float:
        y = self.view.pinch_xmat()[:, 1]
        return float(np.arctan2(y[1], y[0]))

    def plan(self) -> list[Waypoint]:  # pragma: no cover - overridden
        raise NotImplementedError

    def above(self, p: np.ndarray, h: float) -> np.ndarray:
        return np.array([p[0], p[1], h])

    # ---------------------------------------------------------------- control
    def done(self) -> bool:
        return self.index >= len(self.waypoints)

    def act(self) -> np.ndarray:
        """Next 8-D action: normalised joint-velocity command + gripper."""
        v = self.view
        pinch = v.pinch_pos()
        while not self.done():
            wp = self.waypoints[self.index]
            target = np.asarray(wp.target(), float)
            reached = np.linalg.norm(target - pinch) <= wp.tol and self.steps_in >= wp.min_steps
            if reached or self.steps_in >= wp.max_steps:
                self.index += 1
                self.steps_in = 0
                continue
            break
        if self.done():
            wp = self.waypoints[-1]
            target = np.asarray(wp.target(), float)
        self.steps_in += 1
        # plan on the commanded configuration (the servo targets), which the arm follows with some lag
        ik = self.ik
        q = ik.conf.q.copy()
        q[ik.arm_q] = self.env.commanded_joint_positions()
        ik.conf.update(q)
        pinch_cmd = ik.conf.get_transform_frame_to_world(PINCH_SITE, "site").translation()
        cap = self.cfg.slow_step_m if wp.slow else self.cfg.max_step_m
        delta = target - pinch_cmd
        n = np.linalg.norm(delta)
        if n > cap:
            delta *= cap / n
        goal = pinch_cmd + delta
        ik.frame.set_target(mink.SE3.from_rotation_and_translation(mink.SO3.from_matrix(pinch_rotation(self.alpha)),
                                                                   goal))
        dt = 1.0 / self.env.cfg.control.control_hz
        vel = mink.solve_ik(ik.conf, [ik.frame, ik.posture], dt, self.cfg.solver, damping=self.cfg.damping,
                            limits=ik.limits)
        cmd = self.env.cfg.control.velocity_to_command(vel[ik.arm_v])
        return np.concatenate([cmd, [wp.grip]])


# --------------------------------------------------------------------------- tasks
class PickExpert(ScriptedExpert):
    """Pick ``obj`` (a cube: fingers on two faces) and lift it; subclasses continue from the lift."""

    obj = "red_cube"

    def grasp_alpha(self) -> float:
        return closest_alpha(self.view.yaw(self.obj), self.alpha, np.pi / 2)

    def grasp_point(self) -> np.ndarray:
        p = self.view.pos(self.obj)
        return np.array([p[0], p[1], max(p[2], 0.02)])

    def pick_waypoints(self) -> list[Waypoint]:
        c = self.cfg
        self.alpha = self.grasp_alpha()
        g = self.grasp_point
        lift = self.grasp_point().copy()
        return [
            Waypoint(lambda: self.above(g(), g()[2] + c.approach_height), 0.0, tol=0.015, name="approach"),
            Waypoint(g, 0.0, tol=0.006, slow=True, max_steps=20, name="descend"),
            Waypoint(lambda: lift, 1.0, tol=1.0, min_steps=c.close_steps, name="close"),
            Waypoint(lambda: self.above(lift, c.carry_height), 1.0, tol=0.02, name="lift"),
        ]

    def plan(self) -> list[Waypoint]:
        return self.pick_waypoints()


class PickCubeExpert(PickExpert):
    obj = "red_cube"


class CubeInBowlExpert(PickExpert):
    obj = "green_cube"
    container = "red_bowl"

    def release_height(self) -> float:
        _, rim = container_inner(self.view, self.container)
        return self.view.pos(self.container)[2] + rim + 0.05

    def over_container(self, h: float) -> np.ndarray:
        """Pinch target that puts the held object (not the pinch) over the container centre."""
        v = self.view
        off = v.pinch_pos() - v.pos(self.obj)
        c = v.pos(self.container)
        return np.array([c[0] + off[0], c[1] + off[1], h])

    def plan(self) -> list[Waypoint]:
        c = self.cfg
        wps = self.pick_waypoints()
        wps += [
            Waypoint(lambda: self.over_container(c.carry_height), 1.0, tol=0.015, name="carry"),
            Waypoint(lambda: self.over_container(self.release_height()), 1.0, tol=0.006, slow=True, name="lower"),
            Waypoint(lambda: self.view.pinch_pos(), 0.0, tol=1.0, min_steps=c.open_steps, name="release"),
            Waypoint(lambda: self.above(self.view.pinch_pos(), c.carry_height), 0.0, tol=0.02, name="retreat"),
        ]
        return wps


class MarkerInMugExpert(CubeInBowlExpert):
    obj = "marker"
    container = "mug"

    def grasp_alpha(self) -> float:
        # close across the marker: perpendicular to its long (body x) axis
        return closest_alpha(self.view.yaw(self.obj) + np.pi / 2, self.alpha, np.pi)

    grasp_above_axis = 0.008  # pinch above the marker's axis: lower and the closing fingers squeeze it up

    def grasp_point(self) -> np.ndarray:
        p = self.view.pos(self.obj)
        return np.array([p[0], p[1], p[2] + self.grasp_above_axis])

    def release_height(self) -> float:
        _, rim = container_inner(self.view, self.container)
        return self.view.pos(self.container)[2] + rim + 0.03


class PickMugExpert(PickExpert):
    """Grasp one wall segment of the mug radially (away from the handle) and lift."""

    obj = "mug"

    def _segment(self) -> float:
        v = self.view
        c = v.pos("mug")
        yaw = v.yaw("mug")  # the handle points along the mug's +x
        toward_robot = np.arctan2(-c[1], -c[0])
        n = 16
        best, best_cost = None, np.inf
        for i in range(n):
            phi = yaw + 2 * np.pi * i / n
            handle_gap = abs(_wrap(phi - yaw))
            if handle_gap < np.radians(70):
                continue
            cost = abs(_wrap(phi - toward_robot))
            if cost < best_cost:
                best, best_cost = phi, cost
        return float(best)

    def plan(self) -> list[Waypoint]:
        self._phi = self._segment()
        return self.pick_waypoints()

    def grasp_alpha(self) -> float:
        return closest_alpha(self._phi, self.alpha, np.pi)

    def grasp_point(self) -> np.ndarray:
        v = self.view
        r_in, rim = container_inner(v, "mug")
        wall = v.geom_size("mug_wall0")[0] * 2
        c = v.pos("mug")
        r = r_in + wall / 2
        return np.array([c[0] + r * np.cos(self._phi), c[1] + r * np.sin(self._phi), c[2] + rim - 0.025])


class PressButtonExpert(ScriptedExpert):
    def plan(self) -> list[Waypoint]:
        c = self.cfg
        v = self.view
        self.alpha = closest_alpha(0.0, self.alpha, np.pi / 2)
        cap = v.m.geom("red_button_cap").id

        def top() -> np.ndarray:  # centre of the plunger's top face
            return v.d.geom_xpos[cap] + [0, 0, v.m.geom_size[cap][1]]

        press_to = lambda: top() - [0, 0, 0.02]  # noqa: E731  (beyond the 12 mm travel: pressed hard)
        return [
            Waypoint(lambda: self.above(top(), top()[2] + c.approach_height), 1.0, tol=0.015, name="approach"),
            Waypoint(lambda: top() + [0, 0, 0.01], 1.0, tol=0.008, slow=True, name="descend"),
            Waypoint(press_to, 1.0, tol=0.004, min_steps=3, max_steps=8, slow=True, name="press"),
            Waypoint(lambda: self.above(top(), top()[2] + c.approach_height), 1.0, tol=0.02, name="retreat"),
        ]


class PushCupExpert(ScriptedExpert):
    """Closed gripper behind the cup (opposite the bowl), low, then push along the cup->bowl line."""

    push_height = 0.035

    def _dir(self) -> np.ndarray:
        v = self.view
        d = (v.pos("red_bowl") - v.pos("red_cup"))[:2]
        return d / max(np.linalg.norm(d), 1e-9)

    def _behind(self, extra: float) -> np.ndarray:
        v = self.view
        r = v.geom_size("red_cup_geom")[0]
        c = v.pos("red_cup")
        p = c[:2] - self._dir() * (r + 0.015 + extra)
        return np.array([p[0], p[1], self.push_height])

    def plan(self) -> list[Waypoint]:
        c = self.cfg
        d0 = self._dir()
        self.alpha = closest_alpha(float(np.arctan2(d0[1], d0[0])) + np.pi / 2, self.alpha, np.pi)
        start = self._behind(0.04)
        push = lambda: self._behind(-0.03)  # noqa: E731  (keep moving into the cup, re-aimed each step)
        return [
            Waypoint(lambda: self.above(start, c.approach_height), 1.0, tol=0.015, name="approach"),
            Waypoint(lambda: start, 1.0, tol=0.01, slow=True, name="descend"),
            Waypoint(push, 1.0, tol=0.0, max_steps=40, slow=True, name="push"),
            Waypoint(lambda: self.above(self.view.pinch_pos(), c.approach_height), 1.0, tol=0.02, name="retreat"),
        ]


EXPERTS = {
    "pick_cube": PickCubeExpert,
    "cube_in_bowl": CubeInBowlExpert,
    "marker_in_mug": MarkerInMugExpert,
    "pick_mug": PickMugExpert,
    "press_button": PressButtonExpert,
    "push_cup": PushCupExpert,
}


def make_expert(env, cfg: ExpertConfig = ExpertConfig()) -> ScriptedExpert:
    try:
        cls = EXPERTS[env.task.name]
    except KeyError:
        raise ValueError(f"expert: no scripted expert for task {env.task.name!r}; have {sorted(EXPERTS)}") from None
    return cls(env, cfg)
