"""The scripted experts succeed on a few cells per task (full 40-cell sweeps: benchmarks/bench_sim.py)."""

import numpy as np
import pytest

from robosteer_assets.sim.env import run_episode
from robosteer_assets.sim.expert import closest_alpha, pinch_rotation
from robosteer_assets.sim.tasks import TASKS

from .conftest import get_env

CELLS = [(0, 0), (4, 7), (2, 4)]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_expert_succeeds_on_grid_cells(task):
    env = get_env(task)
    for cell in CELLS:
        env.reset(cell=cell, seed=0)
        r = run_episode(env)
        assert r["success"], f"{task} expert failed at {cell}: {r} {env.info}"
        assert r["steps"] < env.task.step_limit


def test_expert_in_the_distractor_variation():
    env = get_env("cube_in_bowl", "distractors")
    env.reset(cell=(1, 6), seed=0)
    assert run_episode(env)["success"]


def test_expert_actions_are_droid_commands():
    env = get_env("pick_cube")
    env.reset(cell=(2, 2), seed=0)
    a = env.expert_action()
    assert a.shape == (8,) and np.all(np.abs(a[:7]) <= 1.0) and a[7] in (0.0, 1.0)


def test_pinch_rotation_and_alpha_helpers():
    R = pinch_rotation(0.3)
    assert np.allclose(R.T @ R, np.eye(3)) and np.linalg.det(R) == pytest.approx(1.0)
    assert np.allclose(R[:, 2], [0, 0, -1])
    assert closest_alpha(0.0, 3.0, np.pi) == pytest.approx(np.pi)
    assert closest_alpha(0.1, -1.4, np.pi / 2) == pytest.approx(0.1 - np.pi / 2)
