"""Each task's predicate: false at the start, true in a hand-placed success state
(and false in near-miss states)."""

import mujoco
import numpy as np
import pytest

from robosteer_assets.sim.tasks import TASKS, container_inner

from .conftest import get_env

HOLD = np.zeros(8)


def _set_free(env, body, pos, yaw=0.0, quat=None):
    adr = env._free_adr(body)
    env.data.qpos[adr: adr + 3] = pos
    env.data.qpos[adr + 3: adr + 7] = quat if quat is not None else [np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]
    dof = env.model.jnt_dofadr[env.model.joint(f"{body}_free").id]
    env.data.qvel[dof: dof + 6] = 0
    mujoco.mj_forward(env.model, env.data)


def _grasp_in_air(env, body, place):
    """Hold the arm still, put ``body`` between the open fingers (``place`` sets it from the
    pinch pose), close the gripper with gravity off, then let gravity act again."""
    env.reset(cell=(2, 3), seed=0)
    place(env.view.pinch_pos(), _alpha(env))
    g = env.model.opt.gravity.copy()
    env.model.opt.gravity[:] = 0
    try:
        for _ in range(4):
            env.step(np.r_[HOLD[:7], 1.0])
    finally:
        env.model.opt.gravity[:] = g
    for _ in range(3):
        env.step(np.r_[HOLD[:7], 1.0])


def _alpha(env):
    y = env.view.pinch_xmat()[:, 1]
    return float(np.arctan2(y[1], y[0]))


@pytest.mark.parametrize("task", sorted(TASKS))
def test_false_at_the_start(task):
    env = get_env(task)
    for cell in ((0, 0), (4, 7)):
        env.reset(cell=cell, seed=0)
        assert not env.success(), f"{task} succeeds at the start at {cell}"
        env.step(HOLD)
        assert not env.success()


def test_pick_cube_true_when_held_above_the_table():
    env = get_env("pick_cube")
    _grasp_in_air(env, "red_cube", lambda p, a: _set_free(env, "red_cube", p, yaw=a))
    assert env.view.grasped("red_cube")
    assert env.success()
    env.step(np.r_[HOLD[:7], 0.0])  # open: it drops
    for _ in range(3):
        env.step(HOLD)
    assert not env.success()


def test_pick_cube_false_when_lifted_but_not_grasped():
    env = get_env("pick_cube")
    env.reset(cell=(2, 3), seed=0)
    _set_free(env, "red_cube", [0.5, 0.0, 0.2])  # mid-air, nobody holds it
    assert not env.success()


def test_pick_mug_true_when_held_by_a_wall():
    env = get_env("pick_mug")
    r_in, rim = container_inner(env.view, "mug")
    wall = env.view.geom_size("mug_wall0")[0] * 2

    def place(p, a):
        # the wall segment at angle a (the closing axis) sits between the fingers, handle opposite
        c = p - (r_in + wall / 2) * np.array([np.cos(a), np.sin(a), 0.0])
        _set_free(env, "mug", [c[0], c[1], p[2] - rim + 0.025], yaw=a + np.pi)

    _grasp_in_air(env, "mug", place)
    assert env.success()


def test_cube_in_bowl():
    env = get_env("cube_in_bowl")
    env.reset(cell=(2, 3), seed=0)
    b = env.view.pos("red_bowl")
    _set_free(env, "green_cube", [b[0] + 0.01, b[1], 0.008 + 0.026], yaw=0.3)
    for _ in range(2):
        env.step(HOLD)
    assert env.success()
    # next to the bowl: not inside
    _set_free(env, "green_cube", [b[0] + 0.13, b[1], 0.026])
    env.step(HOLD)
    assert not env.success()
    # straddling the rim: a corner outside the inner radius
    r_in, _ = container_inner(env.view, "red_bowl")
    _set_free(env, "green_cube", [b[0] + r_in - 0.01, b[1], 0.06])
    assert not env.success()


@pytest.mark.parametrize("variation", ["none", "form"])
def test_marker_in_mug(variation):
    env = get_env("marker_in_mug", variation)
    env.reset(cell=(2, 3), seed=0)
    m = env.view.pos("mug")
    _set_free(env, "marker", [m[0], m[1], 0.03], yaw=1.0)
    for _ in range(2):
        env.step(HOLD)
    assert env.success()
    # lying across the rim: the ends stick out
    _set_free(env, "marker", [m[0] + 0.04, m[1], 0.1], yaw=0.0)
    assert not env.success()


def test_press_button_latches_once_pressed_hard():
    env = get_env("press_button")
    env.reset(cell=(2, 3), seed=0)
    adr = env.model.jnt_qposadr[env.model.joint("red_button_press").id]
    env.data.qpos[adr] = -0.005  # 5 mm: not hard enough
    env.step(HOLD)
    assert not env.success()
    env.data.qpos[adr] = -0.010  # 10 mm of 12 mm travel
    env.step(HOLD)
    assert env.success()
    for _ in range(3):  # the spring brings it back; the trigger stays
        env.step(HOLD)
    assert env.view.button_depth() < 0.002
    assert env.success()


def test_push_cup_needs_contact_and_upright():
    env = get_env("push_cup")
    env.reset(cell=(2, 3), seed=0)
    b = env.view.pos("red_bowl")
    r_bowl = container_inner(env.view, "red_bowl")[0] + env.view.geom_size("red_bowl_wall0")[0] * 2
    r_cup, h = env.view.geom_size("red_cup_geom")[:2]
    # tipped over against the bowl: touches but not upright
    tipped = [np.cos(np.pi / 4), np.sin(np.pi / 4), 0, 0]
    _set_free(env, "red_cup", [b[0] + r_bowl + h + 0.005, b[1], r_cup], quat=tipped)
    mujoco.mj_forward(env.model, env.data)
    assert not env.success()
    env.reset(cell=(2, 3), seed=0)
    b = env.view.pos("red_bowl")
    _set_free(env, "red_cup", [b[0] + r_bowl + r_cup - 0.002, b[1], h])
    env.step(HOLD)
    assert env.view.touching("red_cup", "red_bowl")
    assert env.success()
