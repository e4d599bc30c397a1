"""The paper's tasks with their instructions and physics-state success predicates.

| task | instruction | main object (on the grid) | other object | success (physics state) |
|---|---|---|---|---|
| ``marker_in_mug`` | place marker in mug | marker | mug | the whole marker (both ends) inside the mug's inner cylinder, below the rim, released |
| ``press_button`` | press red button hard | red button | – | plunger pressed >= 8 mm of its 12 mm travel at some time ("triggered") |
| ``pick_cube`` | pick up red cube | red cube | – | held by both fingers and its bottom >= 5 cm above the table |
| ``cube_in_bowl`` | place green cube in red bowl | green cube | red bowl | all cube corners inside the bowl's inner radius, centre below the rim, released |
| ``push_cup`` | push red cup to red bowl | red cup | red bowl | the cup has touched the bowl and is upright (tilt <= 20 deg) |
| ``pick_mug`` (unseen) | pick mug | mug | – | held by both fingers and its bottom >= 5 cm above the table |

Placement of the other object: seeded, uniform in the grid rectangle at
``min_distance``..``max_distance`` from the main object (so the two never overlap
and every pair is reachable). Distractors (variation ``distractors``) are placed
the same way, at least ``Variation.distractor_min_distance`` from every task object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robosteer_assets.sim.state import SceneView


@dataclass(frozen=True)
class SuccessConfig:
    lift_clear: float = 0.05  # m between the table and the object's bottom
    button_trigger_depth: float = 0.008  # m of plunger travel (of 12 mm)
    upright_max_tilt_deg: float = 20.0


@dataclass
class Latches:
    """Events a predicate needs beyond the current state (updated by the env every step)."""

    button_max_depth: float = 0.0
    cup_touched_bowl: bool = False


Predicate = Callable[[SceneView, Latches, SuccessConfig], bool]


def _lifted_and_grasped(obj: str, bottom_offset: Callable[[SceneView], float]) -> Predicate:
    def pred(v: SceneView, latch: Latches, cfg: SuccessConfig) -> bool:
        return bool(v.pos(obj)[2] - bottom_offset(v) >= cfg.lift_clear and v.grasped(obj))

    return pred


def _cube_half(v: SceneView, cube: str) -> float:
    return float(v.geom_size(f"{cube}_geom")[0])


def cube_corners(v: SceneView, cube: str) -> np.ndarray:
    h = _cube_half(v, cube)
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
    return v.pos(cube) + (signs * h) @ v.xmat(cube).T


def container_inner(v: SceneView, container: str) -> tuple[float, float]:
    """(inner radius, rim height above the container origin) from the compiled geoms."""
    wall = v.geom_size(f"{container}_wall0")  # box half sizes: [wall/2, half tangential, half height]
    rc = float(np.hypot(*v.m.geom_pos[v.m.geom(f"{container}_wall0").id][:2]))
    bottom = v.geom_size(f"{container}_bottom")
    return rc - wall[0], float(2 * bottom[1] + 2 * wall[2])


def marker_ends(v: SceneView, marker: str = "marker") -> np.ndarray:
    """World positions of the marker's two tips (its body x axis)."""
    size = v.geom_size(f"{marker}_geom")
    from mujoco import mjtGeom

    half = size[0] if v.geom_type(f"{marker}_geom") == int(mjtGeom.mjGEOM_BOX) else size[0] + size[1]
    axis = v.xmat(marker)[:, 0]
    p = v.pos(marker)
    return np.stack([p + axis * half, p - axis * half])


def _inside(points: np.ndarray, v: SceneView, container: str, margin: float = 0.0) -> bool:
    r_in, rim = container_inner(v, container)
    c = v.pos(container)
    R = v.xmat(container)
    local = (points - c) @ R  # container frame
    radial = np.hypot(local[:, 0], local[:, 1])
    return bool(np.all(radial <= r_in - margin) and np.all(local[:, 2] <= rim) and np.all(local[:, 2] >= -0.005))


def marker_in_mug(v: SceneView, latch: Latches, cfg: SuccessConfig) -> bool:
    return _inside(marker_ends(v), v, "mug") and not v.touching_gripper("marker")


def cube_in_bowl(v: SceneView, latch: Latches, cfg: SuccessConfig) -> bool:
    r_in, rim = container_inner(v, "red_bowl")
    c, R = v.pos("red_bowl"), v.xmat("red_bowl")
    corners = (cube_corners(v, "green_cube") - c) @ R  # bowl frame
    centre = (v.pos("green_cube") - c) @ R
    inside = bool(np.all(np.hypot(corners[:, 0], corners[:, 1]) <= r_in) and 0.0 <= centre[2] <= rim)
    return inside and not v.touching_gripper("green_cube")


def press_button(v: SceneView, latch: Latches, cfg: SuccessConfig) -> bool:
    return bool(max(latch.button_max_depth, v.button_depth("red_button")) >= cfg.button_trigger_depth)


def push_cup(v: SceneView, latch: Latches, cfg: SuccessConfig) -> bool:
    touched = latch.cup_touched_bowl or v.touching("red_cup", "red_bowl")
    return bool(touched and v.up_cos("red_cup") >= np.cos(np.radians(cfg.upright_max_tilt_deg)))


@dataclass(frozen=True)
class TaskSpec:
    name: str
    instruction: str
    main_object: str
    objects: tuple[str, ...]
    success: Predicate
    step_limit: int = 90  # 15 s at 6 Hz
    other_object: str | None = None
    min_distance: float = 0.17  # m between the main and the other object (centres)
    max_distance: float = 0.30
    seen: bool = True  # False: the unseen task (no demos in the paper's training set)
    template: str = ""  # the instruction with {object} slots for the colour family; "" = fixed instruction

    def instruction_for(self, colors: dict[str, str] | None = None) -> str:
        """The instruction with the objects' colour names (``colors``: object -> colour name from
        ``COLORS``); without colours, the paper's instruction."""
        if not colors:
            return self.instruction
        if not self.template:
            raise ValueError(f"{self.name}: has no colour slots; expected no colors, found {colors}")
        names = {**self.default_colors(), **colors}
        return self.template.format(**names)

    def default_colors(self) -> dict[str, str]:
        """The colour names of the paper's setting, one per slot of ``template``."""
        import string

        slots = [f for _, f, _, _ in string.Formatter().parse(self.template) if f]
        words = self.instruction.split()
        tmpl = self.template.split()
        return {slot: words[tmpl.index("{" + slot + "}")] for slot in slots}


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec("marker_in_mug", "place marker in mug", "marker", ("marker", "mug"), marker_in_mug,
                 other_object="mug", step_limit=90),
        TaskSpec("press_button", "press red button hard", "red_button", ("red_button",), press_button,
                 step_limit=60, template="press {red_button} button hard"),
        TaskSpec("pick_cube", "pick up red cube", "red_cube", ("red_cube",),
                 _lifted_and_grasped("red_cube", lambda v: _cube_half(v, "red_cube")), step_limit=60,
                 template="pick up {red_cube} cube"),
        TaskSpec("cube_in_bowl", "place green cube in red bowl", "green_cube", ("green_cube", "red_bowl"),
                 cube_in_bowl, other_object="red_bowl", step_limit=90,
                 template="place {green_cube} cube in {red_bowl} bowl"),
        TaskSpec("push_cup", "push red cup to red bowl", "red_cup", ("red_cup", "red_bowl"), push_cup,
                 other_object="red_bowl", min_distance=0.16, max_distance=0.24, step_limit=90,
                 template="push {red_cup} cup to {red_bowl} bowl"),
        TaskSpec("pick_mug", "pick mug", "mug", ("mug",), _lifted_and_grasped("mug", lambda v: 0.0),
                 step_limit=75, seen=False),
    )
}


# The colour family: named colours an object of a templated task can take (rgba).
COLORS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.1, 0.1, 1.0),
    "green": (0.1, 0.7, 0.15, 1.0),
    "blue": (0.12, 0.3, 0.9, 1.0),
    "yellow": (0.92, 0.8, 0.1, 1.0),
}


def color_rgba(colors: dict[str, str] | None) -> tuple:
    """``ObjectStyle.colors`` for object -> colour-name ``colors`` (errors name the bad entry)."""
    out = []
    for obj, name in sorted((colors or {}).items()):
        if name not in COLORS:
            raise ValueError(f"colors[{obj!r}]: expected one of {sorted(COLORS)}, found {name!r}")
        out.append((obj, COLORS[name]))
    return tuple(out)


def all_instructions() -> list[str]:
    """Every instruction of every task in every colour combination (the tiny tokenizer's corpus)."""
    import itertools

    out = set()
    for t in TASKS.values():
        out.add(t.instruction)
        slots = list(t.default_colors()) if t.template else []
        for combo in itertools.product(sorted(COLORS), repeat=len(slots)):
            out.add(t.instruction_for(dict(zip(slots, combo))))
    return sorted(out)


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"task: expected one of {sorted(TASKS)}, found {name!r}") from None
