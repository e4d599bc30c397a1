"""Task objects of the tabletop, built into an ``mujoco.MjSpec``.

Every object is a body named after its role (``red_cube``, ``red_bowl`` ...) with
a free joint ``<name>_free`` (the button is a mocap housing with a spring-loaded
plunger on the slide joint ``red_button_press``). Sizes are ordinary household
sizes; the mug is a large one (inner diameter 9.4 cm) so the short marker
(8 cm) fits lying down. The ``form`` variation swaps the mug colour and the
marker geometry (square section, longer, another colour).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

GEOM = mujoco.mjtGeom


@dataclass(frozen=True)
class CubeGeometry:
    half: float = 0.025  # 5 cm cube
    mass: float = 0.05


@dataclass(frozen=True)
class BowlGeometry:
    inner_radius: float = 0.07
    wall: float = 0.008
    height: float = 0.05
    bottom: float = 0.008
    segments: int = 16
    mass: float = 0.3


@dataclass(frozen=True)
class MugGeometry:
    inner_radius: float = 0.047
    wall: float = 0.008
    height: float = 0.09
    bottom: float = 0.008
    segments: int = 16
    mass: float = 0.2


@dataclass(frozen=True)
class CupGeometry:
    radius: float = 0.032
    height: float = 0.09
    mass: float = 0.12


@dataclass(frozen=True)
class MarkerGeometry:
    radius: float = 0.009
    half_length: float = 0.031  # capsule: 2 * (0.031 + 0.009) = 8 cm long
    square: bool = False  # ``form`` variation: a square-section marker (box)
    mass: float = 0.02


@dataclass(frozen=True)
class ButtonGeometry:
    housing_radius: float = 0.04
    housing_height: float = 0.03
    plunger_radius: float = 0.022
    plunger_height: float = 0.02  # protrudes plunger_height - travel_range above the housing top
    travel_range: float = 0.012  # 12 mm of travel
    stiffness: float = 600.0  # N/m: 4.8 N at the 8 mm trigger depth ("press hard")
    damping: float = 5.0


@dataclass(frozen=True)
class ObjectStyle:
    """Colours (rgba) and geometry per object; ``FORM_STYLE`` is the ``form`` variation."""

    red: tuple = (0.85, 0.1, 0.1, 1.0)
    green: tuple = (0.1, 0.7, 0.15, 1.0)
    mug_rgba: tuple = (0.92, 0.92, 0.88, 1.0)
    marker_rgba: tuple = (0.1, 0.25, 0.85, 1.0)
    marker_cap_rgba: tuple = (0.05, 0.05, 0.05, 1.0)
    cube: CubeGeometry = CubeGeometry()
    bowl: BowlGeometry = BowlGeometry()
    mug: MugGeometry = MugGeometry()
    cup: CupGeometry = CupGeometry()
    marker: MarkerGeometry = MarkerGeometry()
    button: ButtonGeometry = ButtonGeometry()
    colors: tuple = ()  # ((object name, rgba), ...): per-object colour overrides (the corpus' colour family)

    def rgba(self, name: str, default: tuple) -> tuple:
        return next((tuple(c) for n, c in self.colors if n == name), default)


DEFAULT_STYLE = ObjectStyle()
FORM_STYLE = ObjectStyle(
    mug_rgba=(0.15, 0.45, 0.75, 1.0),
    marker_rgba=(0.95, 0.75, 0.05, 1.0),
    marker=MarkerGeometry(radius=0.0095, half_length=0.034, square=True),
)


def _free(body, name: str) -> None:
    body.add_freejoint(name=f"{name}_free")


def add_cube(world: mujoco.MjSpec, name: str, rgba, g: CubeGeometry) -> None:
    b = world.worldbody.add_body(name=name, pos=[0, 0, g.half])
    _free(b, name)
    b.add_geom(name=f"{name}_geom", type=GEOM.mjGEOM_BOX, size=[g.half] * 3, rgba=list(rgba), mass=g.mass,
               friction=[1.0, 0.01, 0.001])


def _ring(body, name: str, radius_in: float, wall: float, z0: float, height: float, n: int, rgba, mass: float) -> None:
    """``n`` wall boxes on a circle (inner radius ``radius_in``) from z0 to z0 + height."""
    rc = radius_in + wall / 2
    half_t = (radius_in + wall) * np.tan(np.pi / n)  # tangential half width: segments touch at the outside
    for i in range(n):
        a = 2 * np.pi * i / n
        body.add_geom(
            name=f"{name}_wall{i}", type=GEOM.mjGEOM_BOX, size=[wall / 2, half_t, height / 2],
            pos=[rc * np.cos(a), rc * np.sin(a), z0 + height / 2], quat=[np.cos(a / 2), 0, 0, np.sin(a / 2)],
            rgba=list(rgba), mass=mass / n,
        )


def add_bowl(world: mujoco.MjSpec, name: str, rgba, g: BowlGeometry) -> None:
    b = world.worldbody.add_body(name=name, pos=[0, 0, 0])
    _free(b, name)
    b.add_geom(name=f"{name}_bottom", type=GEOM.mjGEOM_CYLINDER, size=[g.inner_radius + g.wall, g.bottom / 2],
               pos=[0, 0, g.bottom / 2], rgba=list(rgba), mass=g.mass * 0.4)
    _ring(b, name, g.inner_radius, g.wall, g.bottom, g.height - g.bottom, g.segments, rgba, g.mass * 0.6)


def add_mug(world: mujoco.MjSpec, name: str, rgba, g: MugGeometry) -> None:
    b = world.worldbody.add_body(name=name, pos=[0, 0, 0])
    _free(b, name)
    b.add_geom(name=f"{name}_bottom", type=GEOM.mjGEOM_CYLINDER, size=[g.inner_radius + g.wall, g.bottom / 2],
               pos=[0, 0, g.bottom / 2], rgba=list(rgba), mass=g.mass * 0.3)
    _ring(b, name, g.inner_radius, g.wall, g.bottom, g.height - g.bottom, g.segments, rgba, g.mass * 0.6)
    # handle along the mug's +x axis (its yaw orients it)
    r = g.inner_radius + g.wall
    b.add_geom(name=f"{name}_handle_top", type=GEOM.mjGEOM_BOX, size=[0.016, 0.006, 0.005],
               pos=[r + 0.014, 0, g.height * 0.78], rgba=list(rgba), mass=g.mass * 0.03)
    b.add_geom(name=f"{name}_handle_side", type=GEOM.mjGEOM_BOX, size=[0.005, 0.006, g.height * 0.26],
               pos=[r + 0.027, 0, g.height * 0.5], rgba=list(rgba), mass=g.mass * 0.04)
    b.add_geom(name=f"{name}_handle_bottom", type=GEOM.mjGEOM_BOX, size=[0.016, 0.006, 0.005],
               pos=[r + 0.014, 0, g.height * 0.22], rgba=list(rgba), mass=g.mass * 0.03)


def add_cup(world: mujoco.MjSpec, name: str, rgba, g: CupGeometry) -> None:
    b = world.worldbody.add_body(name=name, pos=[0, 0, g.height / 2])
    _free(b, name)
    b.add_geom(name=f"{name}_geom", type=GEOM.mjGEOM_CYLINDER, size=[g.radius, g.height / 2], rgba=list(rgba),
               mass=g.mass, friction=[0.6, 0.01, 0.001])
    # the dark opening on top (visual only)
    b.add_geom(name=f"{name}_opening", type=GEOM.mjGEOM_CYLINDER, size=[g.radius * 0.85, 0.0005],
               pos=[0, 0, g.height / 2], rgba=[0.25, 0.03, 0.03, 1], contype=0, conaffinity=0, mass=0)


def add_marker(world: mujoco.MjSpec, name: str, rgba, cap_rgba, g: MarkerGeometry) -> None:
    """A marker lying along its body x axis."""
    b = world.worldbody.add_body(name=name, pos=[0, 0, g.radius])
    _free(b, name)
    rot_y = [np.cos(np.pi / 4), 0, np.sin(np.pi / 4), 0]  # capsule/cylinder z axis -> body x axis
    if g.square:
        b.add_geom(name=f"{name}_geom", type=GEOM.mjGEOM_BOX, size=[g.half_length + g.radius, g.radius, g.radius],
                   rgba=list(rgba), mass=g.mass, friction=[1.0, 0.01, 0.001])
    else:
        b.add_geom(name=f"{name}_geom", type=GEOM.mjGEOM_CAPSULE, size=[g.radius, g.half_length], quat=rot_y,
                   rgba=list(rgba), mass=g.mass, friction=[1.0, 0.01, 0.001])
    b.add_geom(name=f"{name}_cap", type=GEOM.mjGEOM_CYLINDER, size=[g.radius * 1.05, 0.012], quat=rot_y,
               pos=[g.half_length - 0.004, 0, 0], rgba=list(cap_rgba), contype=0, conaffinity=0, mass=0)


def add_button(world: mujoco.MjSpec, name: str, rgba, g: ButtonGeometry) -> None:
    """A fixed (mocap) housing and a spring-loaded plunger on the slide joint ``<name>_press``.

    The joint is 0 at rest and negative when pressed (metres, down to -travel_range).
    """
    h = world.worldbody.add_body(name=name, pos=[0, 0, 0], mocap=True)
    h.add_geom(name=f"{name}_housing", type=GEOM.mjGEOM_CYLINDER, size=[g.housing_radius, g.housing_height / 2],
               pos=[0, 0, g.housing_height / 2], rgba=[0.15, 0.15, 0.15, 1])
    p = h.add_body(name=f"{name}_plunger", pos=[0, 0, g.housing_height + g.plunger_height / 2 - g.travel_range])
    p.add_joint(name=f"{name}_press", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[0, 0, 1],
                range=[-g.travel_range, 0.0], stiffness=g.stiffness, damping=g.damping, springref=0.0)
    p.add_geom(name=f"{name}_cap", type=GEOM.mjGEOM_CYLINDER, size=[g.plunger_radius, g.plunger_height / 2],
               rgba=list(rgba), mass=0.02)


DISTRACTORS = (
    # name, kind, size, rgba
    ("yellow_block", GEOM.mjGEOM_BOX, (0.02, 0.03, 0.03), (0.95, 0.85, 0.1, 1.0)),
    ("blue_can", GEOM.mjGEOM_CYLINDER, (0.028, 0.05), (0.1, 0.3, 0.9, 1.0)),
    ("purple_puck", GEOM.mjGEOM_ELLIPSOID, (0.035, 0.028, 0.018), (0.55, 0.2, 0.7, 1.0)),
)


def distractor_half_height(kind, size) -> float:
    return float(size[-1])


def add_distractor(world: mujoco.MjSpec, name: str, kind, size, rgba) -> None:
    b = world.worldbody.add_body(name=name, pos=[0, 0, distractor_half_height(kind, size)])
    _free(b, name)
    b.add_geom(name=f"{name}_geom", type=kind, size=list(size), rgba=list(rgba), mass=0.08)
