"""Case 5: wrong action / state dimension."""

import h5py
import numpy as np

from robosteer_assets.droid import synthetic
from robosteer_assets.droid.layout import TRAJECTORY_FILE

from ._support import HZ, IMAGE, T_STEPS, assert_store_ok, assert_untouched, materialize, quarantine_of


def _replace(h5_path, name, shape):
    with h5py.File(h5_path, "r+") as h5:
        del h5[name]
        h5.create_dataset(name, data=np.zeros(shape))


def test_wrong_dimensions_are_quarantined_with_expected_shape(project, instance):
    other = project.store_digest("open_drawer")
    synthetic.write_task(project.paths.demos(), "pick_cube", n=1, T=T_STEPS, image_size=IMAGE, control_hz=HZ, seed=600)
    eps = project.episodes("pick_cube")
    _replace(eps[0] / TRAJECTORY_FILE, "action/joint_velocity", (T_STEPS, 6))  # a 6-DoF arm's actions
    _replace(eps[1] / TRAJECTORY_FILE, "observation/robot_state/joint_positions", (T_STEPS, 8))
    _replace(eps[2] / TRAJECTORY_FILE, "action/gripper_position", (T_STEPS, 2))

    res = materialize(project.paths, instance, "pick_cube", min_episodes=2)
    assert res.success
    q = quarantine_of(res)
    assert set(q) == {str(eps[0]), str(eps[1]), str(eps[2])}
    assert q[str(eps[0])] == (f"ShapeError: {eps[0] / TRAJECTORY_FILE} [action/joint_velocity]: "
                              f"expected shape (T, 7), found shape ({T_STEPS}, 6)")
    assert (f"[observation/robot_state/joint_positions]: expected shape (T, 7), found shape ({T_STEPS}, 8)"
            in q[str(eps[1])])
    assert f"[action/gripper_position]: expected shape (T,), found shape ({T_STEPS}, 2)" in q[str(eps[2])]
    assert_store_ok(project, "pick_cube", episodes=2)
    assert_untouched(project, "open_drawer", other)
