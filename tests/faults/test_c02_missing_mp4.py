"""Case 2: a camera MP4 is missing."""

from ._support import assert_store_ok, assert_untouched, materialize, mp4_paths, quarantine_of, run_cli


def test_missing_camera_mp4_is_quarantined_naming_the_file(project, instance, capsys):
    other = project.store_digest("open_drawer")
    eps = project.episodes("pick_cube")
    _, wrist = mp4_paths(eps[1])
    wrist.unlink()

    rc, out = run_cli(["validate", eps[1], "--image-size", 32], capsys)
    assert rc == 1
    assert f"INVALID {eps[1]}: MissingFileError: {wrist}" in out

    res = materialize(project.paths, instance, "pick_cube", min_episodes=3)
    assert res.success
    q = quarantine_of(res)
    assert list(q) == [str(eps[1])] and str(wrist) in q[str(eps[1])]
    assert_store_ok(project, "pick_cube", episodes=3)
    assert_untouched(project, "open_drawer", other)
