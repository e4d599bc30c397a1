"""Which features of a LeRobot dataset become the model's inputs.

The episode store holds, per step, two images (exterior, wrist), an 8-D state
(7 arm dims + gripper) and an 8-D action (7 arm dims + gripper) with the gripper
at 0 = open .. 1 = closed (``droid.episode``). A ``FeatureMapping`` names the
dataset features that fill them:

* ``exterior_image`` / ``wrist_image``: candidate feature names, tried in order;
  a candidate may be an ``fnmatch`` pattern (``observation.images.*wrist*``), and
  then the alphabetically first matching image / video feature is used. The
  exterior camera never resolves to the wrist camera's feature.
* ``state`` / ``actions``: numeric features concatenated per step. Their widths
  must add up to ``state_dim`` / ``action_dim`` (8 for DROID; LIBERO's actions
  are 7-D). A narrower vector keeps its last element as the gripper and gets
  zeros inserted before it, so the store's layout (gripper last) holds for every
  dataset, as openpi pads state and actions to the model's width.
* ``state_gripper`` / ``action_gripper``: the convention of the last element
  (``GRIPPER_CONVENTIONS``); it is mapped to 0 = open .. 1 = closed, or kept
  (``"raw"``) when it is not a gripper closure (LIBERO's state ends in a finger
  joint position).
* ``action_resample``: how the non-gripper action dims follow a rate change
  (``droid.reader.resample_joint_velocity_command``): ``"sum"`` for per-step
  commands or deltas (DROID's joint-velocity command, LIBERO's delta pose),
  ``"select"`` for absolute targets (LeRobot's usual ``action``).
* ``joint_velocities``: observed joint velocities (rad/s), used for keyframes;
  when the dataset has no such feature they are the finite difference of the
  state's first 7 dims at the recorded rate.

Presets (``PRESETS``): ``openpi_droid`` (openpi's raw-DROID conversion),
``openpi_libero`` (openpi's LIBERO conversion) and ``lerobot`` (LeRobot's
``observation.images.*`` / ``observation.state`` / ``action`` naming);
``detect_preset`` picks one from a dataset's features.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from robosteer_assets.droid.episode import NUM_JOINTS

GripperConvention = Literal["closed_is_1", "open_is_1", "signed_closed_is_1", "raw"]
GRIPPER_CONVENTIONS: dict[str, str] = {
    "closed_is_1": "0 = open .. 1 = closed (DROID); kept as is",
    "open_is_1": "1 = open .. 0 = closed; mapped to 1 - g",
    "signed_closed_is_1": "-1 = open .. +1 = closed (robosuite / LIBERO); mapped to (g + 1) / 2",
    "raw": "not a closure value; kept as is",
}
IMAGE_DTYPES = ("video", "image")


class MappingError(ValueError):
    """A dataset's features do not fit a ``FeatureMapping``; names the feature and what was expected."""


@dataclass(frozen=True)
class FeatureMapping:
    name: str
    exterior_image: tuple[str, ...]
    wrist_image: tuple[str, ...]
    state: tuple[str, ...]
    actions: tuple[str, ...]
    state_dim: int = 8
    action_dim: int = 8
    state_gripper: GripperConvention = "closed_is_1"
    action_gripper: GripperConvention = "closed_is_1"
    action_resample: Literal["sum", "select"] = "sum"
    joint_velocities: str | None = None

    def __post_init__(self):
        for fld in ("exterior_image", "wrist_image", "state", "actions"):
            v = getattr(self, fld)
            if not isinstance(v, tuple) or not v or not all(isinstance(s, str) and s for s in v):
                raise ValueError(f"FeatureMapping.{fld}: expected a non-empty tuple of feature names, found {v!r}")
        for fld in ("state_dim", "action_dim"):
            v = getattr(self, fld)
            if not isinstance(v, int) or not 2 <= v <= NUM_JOINTS + 1:
                raise ValueError(f"FeatureMapping.{fld}: expected an int in [2, {NUM_JOINTS + 1}], found {v!r}")
        for fld in ("state_gripper", "action_gripper"):
            if getattr(self, fld) not in GRIPPER_CONVENTIONS:
                raise ValueError(f"FeatureMapping.{fld}: expected one of {sorted(GRIPPER_CONVENTIONS)}, "
                                 f"found {getattr(self, fld)!r}")
        if self.action_resample not in ("sum", "select"):
            raise ValueError(f"FeatureMapping.action_resample: expected 'sum' or 'select', found {self.action_resample!r}")

    def resolve(self, features: dict[str, dict[str, Any]], where: str = "meta/info.json") -> ResolvedMapping:
        """Concrete feature names for a dataset's ``features`` (info.json); raises ``MappingError``."""
        images = sorted(k for k, v in features.items() if isinstance(v, dict) and v.get("dtype") in IMAGE_DTYPES)
        wrist = _pick(self.wrist_image, images, exclude=None)
        if wrist is None:
            raise MappingError(f"{where} [features]: expected a wrist camera feature {list(self.wrist_image)} "
                               f"(preset {self.name!r}), found image/video features {images}")
        exterior = _pick(self.exterior_image, images, exclude=wrist)
        if exterior is None:
            raise MappingError(f"{where} [features]: expected an exterior camera feature {list(self.exterior_image)} "
                               f"other than the wrist camera {wrist!r} (preset {self.name!r}), found {images}")
        widths = {}
        for group, names, dim in (("state", self.state, self.state_dim), ("actions", self.actions, self.action_dim)):
            total = 0
            for n in names:
                spec = features.get(n)
                if not isinstance(spec, dict):
                    raise MappingError(f"{where} [features.{n}]: expected the {group} feature {n!r} "
                                       f"(preset {self.name!r}), found no such feature")
                w = feature_width(spec)
                if w is None:
                    raise MappingError(f"{where} [features.{n}]: expected a numeric feature with a shape, "
                                       f"found dtype {spec.get('dtype')!r} shape {spec.get('shape')!r}")
                widths[n] = w
                total += w
            if total != dim:
                shown = " + ".join(f"{n} ({widths[n]})" for n in names)
                raise MappingError(f"{where} [features]: expected {group} of width {dim} (preset {self.name!r}), "
                                   f"found {shown} = {total}")
        jv = None
        if self.joint_velocities and isinstance(features.get(self.joint_velocities), dict):
            w = feature_width(features[self.joint_velocities])
            if w != NUM_JOINTS:
                raise MappingError(f"{where} [features.{self.joint_velocities}]: expected {NUM_JOINTS} joint "
                                   f"velocities, found width {w}")
            jv = self.joint_velocities
            widths[jv] = w
        return ResolvedMapping(self, exterior, wrist, widths, jv)


@dataclass(frozen=True)
class ResolvedMapping:
    """A ``FeatureMapping`` bound to one dataset's feature names and widths."""

    mapping: FeatureMapping
    exterior_image: str
    wrist_image: str
    widths: dict[str, int]  # numeric feature -> values per step
    joint_velocities: str | None

    @property
    def cameras(self) -> tuple[str, str]:
        return self.exterior_image, self.wrist_image

    @property
    def numeric(self) -> tuple[str, ...]:
        m = self.mapping
        names = (*m.state, *m.actions, *((self.joint_velocities,) if self.joint_velocities else ()))
        return tuple(dict.fromkeys(names))

    def state(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """[T, 8] float64 from the per-feature ``[T, width]`` arrays."""
        v = np.concatenate([columns[n] for n in self.mapping.state], axis=1)
        return to_store_layout(v, self.mapping.state_gripper)

    def actions(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        v = np.concatenate([columns[n] for n in self.mapping.actions], axis=1)
        return to_store_layout(v, self.mapping.action_gripper)

    def describe(self) -> dict[str, Any]:
        m = self.mapping
        return {"preset": m.name, "exterior_image": self.exterior_image, "wrist_image": self.wrist_image,
                "state": list(m.state), "actions": list(m.actions), "joint_velocities": self.joint_velocities,
                "state_gripper": m.state_gripper, "action_gripper": m.action_gripper,
                "action_resample": m.action_resample}


def _pick(candidates: tuple[str, ...], images: list[str], exclude: str | None) -> str | None:
    for c in candidates:
        hits = [k for k in images if k != exclude and fnmatch.fnmatchcase(k, c)]
        if hits:
            return hits[0]
    return None


def feature_width(spec: dict[str, Any]) -> int | None:
    """Values per step of a numeric feature (``prod(shape)``), None for images / strings / no shape."""
    dtype, shape = spec.get("dtype"), spec.get("shape")
    if dtype in (*IMAGE_DTYPES, "string", "language") or not isinstance(shape, (list, tuple)):
        return None
    if not all(isinstance(d, int) and d >= 1 for d in shape):
        return None
    return int(np.prod(shape)) if shape else 1


def gripper_to_closure(g: np.ndarray, convention: str) -> np.ndarray:
    """Map a gripper value in ``convention`` to 0 = open .. 1 = closed."""
    if convention in ("closed_is_1", "raw"):
        return g
    if convention == "open_is_1":
        return 1.0 - g
    if convention == "signed_closed_is_1":
        return (g + 1.0) / 2.0
    raise ValueError(f"gripper convention: expected one of {sorted(GRIPPER_CONVENTIONS)}, found {convention!r}")


def to_store_layout(v: np.ndarray, gripper: str) -> np.ndarray:
    """[T, w] (gripper last, w <= 8) -> [T, 8] float64: arm dims, zeros, gripper in closure convention."""
    v = np.asarray(v, dtype=np.float64)
    T, w = v.shape
    out = np.zeros((T, NUM_JOINTS + 1), dtype=np.float64)
    out[:, : w - 1] = v[:, : w - 1]
    out[:, NUM_JOINTS] = gripper_to_closure(v[:, w - 1], gripper)
    return out


OPENPI_DROID = FeatureMapping(
    name="openpi_droid",
    exterior_image=("exterior_image_1_left",),
    wrist_image=("wrist_image_left",),
    state=("joint_position", "gripper_position"),
    actions=("actions",),
    action_resample="sum",  # action/joint_velocity: DROID's per-step command
    joint_velocities="joint_velocity",
)

OPENPI_LIBERO = FeatureMapping(
    name="openpi_libero",
    exterior_image=("image",),
    wrist_image=("wrist_image",),
    state=("state",),  # eef position (3) + axis-angle (3) + two finger joints (2)
    actions=("actions",),  # delta eef pose (6) + gripper (-1 open, +1 close)
    action_dim=7,
    state_gripper="raw",
    action_gripper="signed_closed_is_1",
    action_resample="sum",
)

LEROBOT = FeatureMapping(
    name="lerobot",
    exterior_image=("observation.images.exterior_1_left", "observation.images.*exterior*",
                    "observation.images.image", "observation.images.*"),
    wrist_image=("observation.images.wrist_left", "observation.images.*wrist*"),
    state=("observation.state",),
    actions=("action",),
    action_resample="select",  # LeRobot's `action` is usually an absolute target (joint positions)
)

PRESETS: dict[str, FeatureMapping] = {m.name: m for m in (OPENPI_DROID, OPENPI_LIBERO, LEROBOT)}


def get_mapping(name_or_mapping: str | FeatureMapping) -> FeatureMapping:
    if isinstance(name_or_mapping, FeatureMapping):
        return name_or_mapping
    if name_or_mapping not in PRESETS:
        raise ValueError(f"feature mapping: expected one of {sorted(PRESETS)} or 'auto', found {name_or_mapping!r}")
    return PRESETS[name_or_mapping]


def detect_preset(features: dict[str, dict[str, Any]], where: str = "meta/info.json") -> ResolvedMapping:
    """The first preset (in ``PRESETS`` order) whose features the dataset has."""
    problems = []
    for m in PRESETS.values():
        try:
            return m.resolve(features, where)
        except MappingError as e:
            problems.append(f"{m.name}: {e}")
    raise MappingError(f"{where} [features]: expected the features of one preset, found {sorted(features)}; "
                       + "; ".join(problems))


def resolve_mapping(features: dict[str, dict[str, Any]], mapping: str | FeatureMapping = "auto",
                    where: str = "meta/info.json") -> ResolvedMapping:
    """``mapping`` ("auto", a preset name or a ``FeatureMapping``) bound to ``features``."""
    if mapping == "auto":
        return detect_preset(features, where)
    return get_mapping(mapping).resolve(features, where)
