"""Case 1: a truncated or corrupt ``trajectory.h5``."""

import os

from robosteer_assets.droid.layout import TRAJECTORY_FILE

from ._support import assert_store_ok, assert_untouched, materialize, quarantine_of, run_cli


def test_truncated_and_garbage_h5_are_quarantined_by_name(project, instance, capsys):
    other = project.store_digest("open_drawer")
    eps = project.episodes("pick_cube")
    truncated, garbage = eps[0] / TRAJECTORY_FILE, eps[1] / TRAJECTORY_FILE
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # a copy cut off half way
    garbage.write_bytes(os.urandom(4096))  # not HDF5 at all

    rc, out = run_cli(["validate", project.paths.task_demos("pick_cube"), "--min-episodes", 2, "--image-size", 32],
                      capsys)
    assert rc == 1
    assert f"INVALID {eps[0]}: CorruptFileError: {truncated}" in out
    assert f"INVALID {eps[1]}: CorruptFileError: {garbage}" in out
    assert f"OK {eps[2]}" in out and f"OK {eps[3]}" in out

    res = materialize(project.paths, instance, "pick_cube", min_episodes=2)
    assert res.success
    q = quarantine_of(res)
    assert set(q) == {str(eps[0]), str(eps[1])}
    assert str(truncated) in q[str(eps[0])] and "expected a readable HDF5 file" in q[str(eps[1])]
    store = assert_store_ok(project, "pick_cube", episodes=2)
    assert [e["path"] for e in store.episodes] == [str(eps[2]), str(eps[3])]
    assert_untouched(project, "open_drawer", other)
