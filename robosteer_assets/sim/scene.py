"""Compose the tabletop with ``mujoco.MjSpec`` (sim_feasibility.md §3.1).

menagerie's Panda with its hand removed (as upstream ``panda_nohand.xml``) + the
menagerie Robotiq 2F-85 at the flange, both loaded through the
``mujoco_menagerie`` package (it honours ``MENAGERIE_ROOT``; without it the
package downloads and caches the models). A table with its top at z = 0, a
fixed exterior camera on the robot's left and a wrist camera on the gripper.
Options: timestep 0.002, implicitfast, elliptic cones, impratio 10, gravity
compensation on the robot (Franka compensates gravity internally).

Names in the compiled model: robot joints ``panda/joint1..7``, actuators
``panda/actuator1..7`` (menagerie position servos) and
``panda/gripper/fingers_actuator`` (0..255), the pinch site
``panda/gripper/pinch``, cameras ``exterior`` and ``wrist``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from robosteer_assets.sim import objects as O
from robosteer_assets.sim.config import SimConfig
from robosteer_assets.sim.variations import Variation, get_variation

import mujoco  # noqa: E402  (after robosteer_assets.sim set MUJOCO_GL)

PANDA, ROBOTIQ = "franka_emika_panda", "robotiq_2f85"
ARM_JOINTS = tuple(f"panda/joint{i}" for i in range(1, 8))
ARM_ACTUATORS = tuple(f"panda/actuator{i}" for i in range(1, 8))
GRIPPER_ACTUATOR = "panda/gripper/fingers_actuator"
GRIPPER_DRIVER_JOINTS = ("panda/gripper/right_driver_joint", "panda/gripper/left_driver_joint")
PINCH_SITE = "panda/gripper/pinch"
GRIPPER_PAD_BODIES = ("panda/gripper/right_pad", "panda/gripper/left_pad")
EXTERIOR_CAMERA, WRIST_CAMERA = "exterior", "wrist"

OBJECT_NAMES = ("red_cube", "green_cube", "red_bowl", "red_cup", "mug", "marker", "red_button")


class MenagerieUnavailableError(RuntimeError):
    pass


def menagerie_spec(robot: str, entry: str) -> mujoco.MjSpec:
    """``mujoco_menagerie.get(robot).spec(entry)`` with a readable error when the files are missing."""
    import mujoco_menagerie

    try:
        return mujoco_menagerie.get(robot).spec(entry)
    except (mujoco_menagerie.MenagerieError, OSError, ValueError) as e:
        root = os.environ.get("MENAGERIE_ROOT")
        where = f"MENAGERIE_ROOT={root}" if root else "the mujoco_menagerie download cache (MENAGERIE_ROOT unset)"
        raise MenagerieUnavailableError(
            f"menagerie model {robot}/{entry}: expected the MJCF and meshes in {where}; "
            f"set MENAGERIE_ROOT to a folder holding {robot}/ (e.g. ../shared/menagerie): {e}"
        ) from e


def _physics_options(spec: mujoco.MjSpec, cfg: SimConfig) -> None:
    """Set the solver options (also on the child specs, so ``attach`` has no conflicts to report)."""
    opt = spec.option
    opt.timestep = cfg.physics.timestep
    opt.integrator = getattr(mujoco.mjtIntegrator, f"mjINT_{cfg.physics.integrator.upper()}")
    opt.cone = getattr(mujoco.mjtCone, f"mjCONE_{cfg.physics.cone.upper()}")
    opt.impratio = cfg.physics.impratio


def robot_spec(cfg: SimConfig = SimConfig()) -> mujoco.MjSpec:
    """Panda without its hand + Robotiq 2F-85 on the flange, gravity-compensated."""
    s = menagerie_spec(PANDA, "panda")
    _physics_options(s, cfg)
    for k in list(s.keys):  # the home keyframe has 8 ctrls; must go before the hand's actuator
        s.delete(k)
    for el in (s.actuator("actuator8"), s.tendon("split")):
        if el is not None:
            s.delete(el)
    s.delete(s.body("link8"))  # hand + fingers
    for eq in list(s.equalities):
        s.delete(eq)
    for ex in list(s.excludes):
        s.delete(ex)
    # the flange frame of upstream panda_nohand.xml
    att = s.body("link7").add_body(name="attachment", pos=[0, 0, 0.107], quat=[0.3826834, 0, 0, 0.9238795])
    att.add_site(name="attachment_site")
    gripper = menagerie_spec(ROBOTIQ, "2f85")
    _physics_options(gripper, cfg)
    s.attach(gripper, prefix="gripper/", site=s.site("attachment_site"))
    for b in s.bodies:
        b.gravcomp = 1.0
    return s


def look_at_quat(pos: Sequence[float], target: Sequence[float], up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """MuJoCo camera quaternion (camera looks along -z, y up) looking from ``pos`` at ``target``."""
    f = np.asarray(target, float) - np.asarray(pos, float)
    f /= np.linalg.norm(f)
    x = np.cross(f, up)
    x /= np.linalg.norm(x)
    y = np.cross(x, f)
    mat = np.stack([x, y, -f], axis=1)
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, mat.reshape(-1))
    return q


def _options(world: mujoco.MjSpec, cfg: SimConfig) -> None:
    _physics_options(world, cfg)
    size = cfg.camera.image_size
    world.visual.global_.offwidth = max(size, 640)
    world.visual.global_.offheight = max(size, 480)
    world.visual.quality.offsamples = 0  # no multisampling (sim_feasibility.md §2.2)
    world.visual.quality.shadowsize = 0


def _lights(world: mujoco.MjSpec, v: Variation) -> None:
    L = v.lighting
    world.visual.headlight.ambient = [L.headlight_ambient] * 3
    world.visual.headlight.diffuse = [L.headlight_diffuse] * 3
    world.visual.headlight.specular = [0.1] * 3
    if L.top_light_diffuse > 0:
        world.worldbody.add_light(name="top", pos=[0.4, 0, 1.6], dir=[0, 0, -1], diffuse=[L.top_light_diffuse] * 3,
                                  castshadow=False)
    if L.side_lamp_diffuse > 0:
        d = np.asarray(L.side_lamp_dir, float)
        world.worldbody.add_light(name="side_lamp", type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL, pos=[0.45, 1.0, 0.5],
                                  dir=list(d / np.linalg.norm(d)), diffuse=[L.side_lamp_diffuse] * 3,
                                  specular=[0.3] * 3, castshadow=False)


def _table(world: mujoco.MjSpec, cfg: SimConfig) -> None:
    t = cfg.table
    (cx, cy), (hx, hy) = t.center_xy, t.half_size
    world.worldbody.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=[hx, hy, t.thickness / 2],
                             pos=[cx, cy, -t.thickness / 2], rgba=list(t.rgba), friction=[1.0, 0.01, 0.001])
    world.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.1], pos=[0, 0, t.floor_z],
                             rgba=[0.35, 0.36, 0.38, 1])
    # walls of the room: behind the table (far side) and on the robot's right (seen by the left camera)
    world.worldbody.add_geom(name="wall_far", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.02, 2.5, 1.3],
                             pos=[cx + hx + 0.9, 0, t.floor_z + 1.3], rgba=[0.78, 0.8, 0.82, 1],
                             contype=0, conaffinity=0)
    world.worldbody.add_geom(name="wall_right", type=mujoco.mjtGeom.mjGEOM_BOX, size=[2.5, 0.02, 1.3],
                             pos=[cx, cy - hy - 0.8, t.floor_z + 1.3], rgba=[0.7, 0.74, 0.78, 1],
                             contype=0, conaffinity=0)
    for i, (sx, sy) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
        world.worldbody.add_geom(name=f"table_leg{i}", type=mujoco.mjtGeom.mjGEOM_BOX,
                                 size=[0.03, 0.03, (-t.floor_z - t.thickness) / 2],
                                 pos=[cx + sx * (hx - 0.05), cy + sy * (hy - 0.05), (t.floor_z - t.thickness) / 2],
                                 rgba=[0.3, 0.25, 0.2, 1], contype=0, conaffinity=0)


def _cameras(world: mujoco.MjSpec, cfg: SimConfig) -> None:
    c = cfg.camera
    world.worldbody.add_camera(name=EXTERIOR_CAMERA, pos=list(c.exterior_pos),
                               quat=list(look_at_quat(c.exterior_pos, c.exterior_target)), fovy=c.exterior_fovy)
    target = np.add(c.wrist_pos, c.wrist_forward)
    world.body("panda/gripper/base").add_camera(name=WRIST_CAMERA, pos=list(c.wrist_pos),
                                                quat=list(look_at_quat(c.wrist_pos, target, c.wrist_up)),
                                                fovy=c.wrist_fovy)


def add_object(world: mujoco.MjSpec, name: str, style: O.ObjectStyle) -> None:
    if name == "red_cube":
        O.add_cube(world, name, style.rgba(name, style.red), style.cube)
    elif name == "green_cube":
        O.add_cube(world, name, style.rgba(name, style.green), style.cube)
    elif name == "red_bowl":
        O.add_bowl(world, name, style.rgba(name, style.red), style.bowl)
    elif name == "red_cup":
        O.add_cup(world, name, style.rgba(name, style.red), style.cup)
    elif name == "mug":
        O.add_mug(world, name, style.rgba(name, style.mug_rgba), style.mug)
    elif name == "marker":
        O.add_marker(world, name, style.rgba(name, style.marker_rgba), style.marker_cap_rgba, style.marker)
    elif name == "red_button":
        O.add_button(world, name, style.rgba(name, style.red), style.button)
    else:
        raise ValueError(f"scene object: expected one of {OBJECT_NAMES}, found {name!r}")


def build_spec(object_names: Sequence[str] = (), variation: str | Variation = "none",
               cfg: SimConfig = SimConfig(), robot_only: bool = False) -> mujoco.MjSpec:
    """The scene spec; ``robot_only`` gives the robot alone (the IK model of the experts)."""
    v = get_variation(variation) if isinstance(variation, str) else variation
    world = mujoco.MjSpec()
    world.modelname = "robosteer_tabletop"
    _options(world, cfg)
    world.attach(robot_spec(cfg), prefix="panda/", frame=world.worldbody.add_frame(pos=[0, 0, 0]))
    if robot_only:
        return world
    _lights(world, v)
    _table(world, cfg)
    _cameras(world, cfg)
    for name in object_names:
        add_object(world, name, v.style)
    for name, kind, size, rgba in O.DISTRACTORS[: v.num_distractors]:
        O.add_distractor(world, name, kind, size, rgba)
    return world


def build_model(object_names: Sequence[str] = (), variation: str | Variation = "none",
                cfg: SimConfig = SimConfig(), robot_only: bool = False) -> mujoco.MjModel:
    return build_spec(object_names, variation, cfg, robot_only).compile()
