import mujoco
import numpy as np
import pytest

from robosteer_assets.sim.config import ControlConfig
from robosteer_assets.sim.scene import (
    ARM_ACTUATORS, EXTERIOR_CAMERA, GRIPPER_ACTUATOR, PINCH_SITE, WRIST_CAMERA, build_model, look_at_quat,
)
from robosteer_assets.sim.tasks import TASKS

from .conftest import get_env


def test_scene_compiles_with_the_measured_options():
    m = build_model(("red_cube", "red_bowl"))
    assert m.opt.timestep == pytest.approx(0.002)
    assert m.opt.integrator == mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    assert m.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC
    assert m.opt.impratio == pytest.approx(10.0)
    assert m.nu == 8
    for a in (*ARM_ACTUATORS, GRIPPER_ACTUATOR):
        assert m.actuator(a).id >= 0
    assert m.site(PINCH_SITE).id >= 0
    assert m.camera(EXTERIOR_CAMERA).id >= 0 and m.camera(WRIST_CAMERA).id >= 0
    assert m.vis.quality.offsamples == 0
    assert all(m.body_gravcomp[m.body(n).id] == 1.0 for n in ("panda/link3", "panda/gripper/base"))
    assert ControlConfig().substeps(m.opt.timestep) == 83


def test_exterior_camera_is_on_the_robots_left():
    m = build_model(())
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    assert d.cam(EXTERIOR_CAMERA).xpos[1] > 0.3  # +y = the robot's left (DROID)


def test_look_at_quat_points_the_camera_at_the_target():
    q = look_at_quat((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    R = np.zeros(9)
    mujoco.mju_quat2Mat(R, q)
    forward = -R.reshape(3, 3)[:, 2]
    assert np.allclose(forward, -np.ones(3) / np.sqrt(3), atol=1e-9)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_both_cameras_render_non_blank_images(task):
    env = get_env(task, render_images=True)
    obs = env.reset(cell=(2, 3), seed=0)
    for key in ("observation/exterior_image_1_left", "observation/wrist_image_left"):
        img = obs[key]
        assert img.shape == (224, 224, 3) and img.dtype == np.uint8
        assert img.std() > 10.0, f"{task} {key} looks blank"
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50


def test_the_main_object_is_visible_in_both_cameras():
    """The red cube changes pixels in both views when it moves from the grid to far away."""
    env = get_env("pick_cube", render_images=True)
    env.reset(cell=(2, 3), seed=0)
    ext, wrist = env.render()
    adr = env._free_adr("red_cube")
    env.data.qpos[adr: adr + 3] = [3.0, 3.0, -5.0]
    mujoco.mj_forward(env.model, env.data)
    ext2, wrist2 = env.render()
    assert np.abs(ext.astype(int) - ext2).sum() > 1000
    assert np.abs(wrist.astype(int) - wrist2).sum() > 1000


def test_variations_change_the_scene():
    base = get_env("marker_in_mug", "none")
    lit = get_env("marker_in_mug", "lighting")
    form = get_env("marker_in_mug", "form")
    dis = get_env("marker_in_mug", "distractors")
    assert lit.model.vis.headlight.ambient[0] < base.model.vis.headlight.ambient[0]
    assert any(lit.model.light(i).name == "side_lamp" for i in range(lit.model.nlight))
    gid = lambda e, n: e.model.geom(n).id  # noqa: E731
    assert not np.allclose(form.model.geom_rgba[gid(form, "mug_wall0")], base.model.geom_rgba[gid(base, "mug_wall0")])
    assert form.model.geom_type[gid(form, "marker_geom")] != base.model.geom_type[gid(base, "marker_geom")]
    assert dis.model.nbody == base.model.nbody + 3
    dis.reset(cell=(0, 0), seed=4)
    poses = dis.info["object_poses"]
    xy = {k: np.array(v[:2]) for k, v in poses.items()}
    for name in ("yellow_block", "blue_can", "purple_puck"):
        assert min(np.linalg.norm(xy[name] - xy[o]) for o in ("marker", "mug")) >= 0.12


def test_unknown_variation_and_task_are_named():
    from robosteer_assets.sim.env import TabletopEnv

    with pytest.raises(ValueError, match="variation: expected one of .*'lighting'.*found 'fog'"):
        TabletopEnv("pick_cube", variation="fog")
    with pytest.raises(ValueError, match="task: expected one of .*found 'pick_banana'"):
        TabletopEnv("pick_banana")
