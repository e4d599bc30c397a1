import numpy as np
import pytest

from robosteer_assets.sim.config import ControlConfig
from robosteer_assets.sim.env import run_episode

from .conftest import get_env

KEYS = ("observation/exterior_image_1_left", "observation/wrist_image_left", "observation/joint_position",
        "observation/gripper_position", "prompt")


def test_observation_has_droid_request_keys():
    env = get_env("pick_cube", render_images=True)
    obs = env.reset(cell=(1, 1), seed=0)
    assert set(obs) == set(KEYS)
    assert obs["observation/joint_position"].shape == (7,)
    assert obs["observation/gripper_position"].shape == (1,)
    assert obs["prompt"] == "pick up red cube"
    assert np.allclose(obs["observation/joint_position"], ControlConfig().home_qpos, atol=0.02)
    assert 0.0 <= obs["observation/gripper_position"][0] < 0.05  # open


def test_small_image_size():
    from robosteer_assets.sim.env import TabletopEnv

    env = TabletopEnv("press_button", image_size=64)
    ext, wrist = env.render()
    assert ext.shape == wrist.shape == (64, 64, 3)
    with pytest.raises(ValueError, match="image_size"):
        TabletopEnv("press_button", image_size=63)


def test_action_is_droids_normalised_joint_velocity():
    """Command c on a joint moves it by about c * 0.2 rad per 6 Hz step (DROID's units)."""
    env = get_env("pick_cube")
    env.reset(cell=(2, 3), seed=0)
    q0 = env.view.joint_positions()
    a = np.zeros(8)
    a[0], a[3] = 0.5, -0.25
    env.step(a)
    for _ in range(2):
        env.step(np.zeros(8))  # the servo settles on the commanded target
    dq = env.view.joint_positions() - q0
    assert dq[0] == pytest.approx(0.1, abs=0.01)
    assert dq[3] == pytest.approx(-0.05, abs=0.01)
    assert np.all(np.abs(dq[[1, 2, 4, 5, 6]]) < 0.01)


def test_commands_are_clipped():
    ctl = ControlConfig()
    v = ctl.command_to_velocity(np.array([5.0, -5.0, 0.5, 0, 0, 0, 0]))
    assert v[0] == pytest.approx(0.2 * 6.0) and v[1] == pytest.approx(-1.2) and v[2] == pytest.approx(0.6)
    assert np.allclose(ctl.velocity_to_command(ctl.command_to_velocity(np.full(7, 0.3))), 0.3)
    fast = ControlConfig(control_hz=15.0, max_joint_delta=0.2)  # 3 rad/s exceeds the Panda's limits
    assert np.allclose(fast.command_to_velocity(np.ones(7)), ctl.velocity_limits)


def test_gripper_closes_and_reports_droid_convention():
    env = get_env("pick_cube")
    env.reset(cell=(2, 3), seed=0)
    obs = None
    for _ in range(3):
        obs = env.step(np.r_[np.zeros(7), 1.0])
    assert obs["observation/gripper_position"][0] > 0.9  # 1 = closed
    for _ in range(3):
        obs = env.step(np.zeros(8))
    assert obs["observation/gripper_position"][0] < 0.1


@pytest.mark.parametrize("bad", [np.zeros(7), np.r_[np.zeros(7), np.nan]])
def test_bad_action_is_named(bad):
    env = get_env("pick_cube")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action: expected 8 finite values"):
        env.step(bad)


def test_reset_is_deterministic_given_seed():
    env = get_env("cube_in_bowl", render_images=True)
    a = env.reset(cell=(3, 5), seed=7)
    info_a = env.info
    b = env.reset(cell=(3, 5), seed=7)
    assert env.info["object_poses"] == info_a["object_poses"]
    for k in KEYS[:4]:
        assert np.array_equal(a[k], b[k])
    env.reset(cell=(3, 5), seed=8)
    assert env.info["placement"]["yaw"] != info_a["placement"]["yaw"]
    p = env.info["placement"]
    assert (p["x"], p["y"]) == pytest.approx((0.36 + 3.5 * 0.056, -0.25 + 5.5 * 0.0625))


def test_demo_placements_are_uniform_in_the_rectangle():
    env = get_env("pick_cube")
    xs = []
    for s in range(10):
        env.reset(seed=s)
        xs.append((env.placement["x"], env.placement["y"]))
    xs = np.array(xs)
    assert len(np.unique(xs, axis=0)) == 10
    assert xs[:, 0].min() >= 0.36 and xs[:, 0].max() <= 0.64 and np.abs(xs[:, 1]).max() <= 0.25


def test_rollout_replays_exactly():
    """The same actions from the same reset reproduce the state bit for bit."""
    env = get_env("pick_cube")
    env.reset(cell=(1, 4), seed=0)
    actions = []
    r = run_episode(env, max_steps=20, on_step=lambda o, a: actions.append(a))
    q1 = env.data.qpos.copy()
    env.reset(cell=(1, 4), seed=0)
    for a in actions:
        env.step(a)
    assert r["steps"] == 20
    assert np.array_equal(env.data.qpos, q1)


def test_info_reports_object_poses():
    env = get_env("push_cup")
    env.reset(cell=(0, 0), seed=0)
    info = env.info
    assert set(info["object_poses"]) == {"red_cup", "red_bowl"}
    assert info["object_poses"]["red_cup"][:2] == pytest.approx([0.388, -0.21875], abs=1e-3)
    assert info["task"] == "push_cup" and info["step"] == 0


def test_step_before_reset_and_bad_cell_are_named():
    from robosteer_assets.sim.env import TabletopEnv

    env = TabletopEnv("pick_cube", render_images=False)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.zeros(8))
    with pytest.raises(ValueError, match="cell: expected"):
        env.reset(cell=(1, 2, 3))
    with pytest.raises(ValueError, match="grid cell"):
        env.reset(cell=(9, 0))
