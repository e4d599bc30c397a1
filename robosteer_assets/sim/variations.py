"""The paper's robustness variations (method.md): ``none``, ``lighting`` (dim ambient
light plus one bright directional side lamp), ``form`` (a different mug colour and
marker geometry) and ``distractors`` (extra objects on the table)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Literal

from robosteer_assets.sim.objects import DEFAULT_STYLE, FORM_STYLE, ObjectStyle


@dataclass(frozen=True)
class LightingConfig:
    headlight_ambient: float = 0.35
    headlight_diffuse: float = 0.45
    top_light_diffuse: float = 0.5  # a light above the table
    side_lamp_diffuse: float = 0.0  # 0 = no side lamp
    side_lamp_dir: tuple[float, float, float] = (0.35, -1.0, -0.35)  # from the robot's left towards its right


@dataclass(frozen=True)
class Variation:
    name: str
    lighting: LightingConfig = field(default_factory=LightingConfig)
    style: ObjectStyle = DEFAULT_STYLE
    num_distractors: int = 0
    distractor_min_distance: float = 0.13  # m from the task objects' centres


VARIATIONS: dict[str, Variation] = {
    "none": Variation("none"),
    "lighting": Variation(
        "lighting",
        lighting=LightingConfig(headlight_ambient=0.06, headlight_diffuse=0.08, top_light_diffuse=0.0,
                                side_lamp_diffuse=1.0),
    ),
    "form": Variation("form", style=FORM_STYLE),
    "distractors": Variation("distractors", num_distractors=3),
}


VariationName = Literal["none", "lighting", "form", "distractors"]  # the keys of VARIATIONS, as a type
assert set(typing.get_args(VariationName)) == set(VARIATIONS), "VariationName must list the keys of VARIATIONS"


def get_variation(name: str) -> Variation:
    try:
        return VARIATIONS[name]
    except KeyError:
        raise ValueError(f"variation: expected one of {sorted(VARIATIONS)}, found {name!r}") from None
