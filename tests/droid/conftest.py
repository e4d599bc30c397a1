"""Shared fixtures: one small synthetic episode written once per session, copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from robosteer_assets.droid.layout import episode_dir_for
from robosteer_assets.droid.synthetic import make_recording
from robosteer_assets.droid.writer import write_episode

T_STEPS = 15
FRAME_HW = (32, 48)  # non-square: exercises the letterbox resize


@pytest.fixture(scope="session")
def recording():
    return make_recording(T=T_STEPS, seed=3, image_size=FRAME_HW, control_hz=15.0)


@pytest.fixture(scope="session")
def template_episode(tmp_path_factory, recording) -> Path:
    root = tmp_path_factory.mktemp("template")
    return write_episode(episode_dir_for(root, "pick_cube", recording.uuid), recording)


@pytest.fixture
def episode(tmp_path, template_episode) -> Path:
    """A fresh copy of the template episode at <tmp>/demos/pick_cube/success/<uuid>."""
    dst = tmp_path / "demos" / "pick_cube" / "success" / template_episode.name
    shutil.copytree(template_episode, dst)
    return dst
