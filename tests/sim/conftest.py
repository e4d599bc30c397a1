"""Shared sim fixtures: one env per task for the session (compiling a scene takes ~1 s)."""

from __future__ import annotations

import pytest

from robosteer_assets.sim.env import TabletopEnv

_ENVS: dict = {}


def get_env(task: str, variation: str = "none", render_images: bool = False, image_size: int = 224) -> TabletopEnv:
    key = (task, variation, render_images, image_size)
    if key not in _ENVS:
        _ENVS[key] = TabletopEnv(task, variation=variation, image_size=image_size, render_images=render_images)
    return _ENVS[key]


@pytest.fixture
def env_for():
    return get_env
