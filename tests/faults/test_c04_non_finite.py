"""Case 4: NaN / inf in actions or state."""

import h5py
import numpy as np

from robosteer_assets.droid.layout import TRAJECTORY_FILE

from ._support import assert_store_ok, assert_untouched, materialize, quarantine_of, run_cli


def test_nan_and_inf_are_quarantined_with_field_and_step(project, instance, capsys):
    other = project.store_digest("open_drawer")
    eps = project.episodes("pick_cube")
    with h5py.File(eps[0] / TRAJECTORY_FILE, "r+") as h5:
        h5["action/joint_velocity"][5, 2] = np.nan
    with h5py.File(eps[1] / TRAJECTORY_FILE, "r+") as h5:
        h5["observation/robot_state/gripper_position"][7] = np.inf

    rc, out = run_cli(["validate", project.paths.task_demos("pick_cube"), "--min-episodes", 2, "--image-size", 32],
                      capsys)
    assert rc == 1
    assert (f"INVALID {eps[0]}: NonFiniteError: {eps[0] / TRAJECTORY_FILE} [action/joint_velocity]: "
            "expected finite values, found 1 NaN/inf values (first at step 5)") in out

    res = materialize(project.paths, instance, "pick_cube", min_episodes=2)
    assert res.success
    q = quarantine_of(res)
    assert set(q) == {str(eps[0]), str(eps[1])}
    assert "[observation/robot_state/gripper_position]" in q[str(eps[1])] and "first at step 7" in q[str(eps[1])]
    store = assert_store_ok(project, "pick_cube", episodes=2)  # verify() also checks the stored arrays are finite
    for i in range(store.num_episodes):
        ep = store.episode(i)
        assert np.isfinite(ep.state).all() and np.isfinite(ep.actions).all()
    assert_untouched(project, "open_drawer", other)
