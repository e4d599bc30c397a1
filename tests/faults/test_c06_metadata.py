"""Case 6: metadata JSON missing or malformed."""

import json

import dagster as dg

from robosteer_assets.defs import sensors
from robosteer_assets.droid import synthetic
from robosteer_assets.droid.layout import metadata_path

from ._support import (HZ, IMAGE, T_STEPS, age_files, assert_store_ok, assert_untouched, materialize, quarantine_of,
                       run_cli)


def _tick(project, instance, cursor=None):
    return sensors.new_demos_sensor(dg.build_sensor_context(instance=instance, cursor=cursor,
                                                            resources={"paths": project.paths}))


def test_missing_malformed_and_mistyped_metadata_name_the_file(project, instance, capsys):
    other = project.store_digest("open_drawer")
    synthetic.write_task(project.paths.demos(), "pick_cube", n=1, T=T_STEPS, image_size=IMAGE, control_hz=HZ, seed=600)
    age_files(project.paths.task_demos("pick_cube"))
    cursor = _tick(project, instance).cursor
    eps = project.episodes("pick_cube")
    missing = metadata_path(eps[0])
    missing.unlink()
    malformed = metadata_path(eps[1])
    malformed.write_text(malformed.read_text()[:40])  # cut off mid-object
    mistyped = metadata_path(eps[2])
    meta = json.loads(mistyped.read_text())
    meta["trajectory_length"] = "twelve"
    mistyped.write_text(json.dumps(meta))

    # the sensor first takes the episode without metadata for one still arriving ...
    r = _tick(project, instance, cursor)
    assert r.run_requests == []
    # ... but once it has been incomplete for long, it is a broken episode: the task is not blocked forever
    age_files(project.paths.task_demos("pick_cube"), seconds=3600)
    r = _tick(project, instance, r.cursor)
    assert [q.partition_key for q in r.run_requests] == ["pick_cube"]
    assert r.run_requests[0].tags["robosteer/episodes"] == "5"

    rc, out = run_cli(["validate", project.paths.task_demos("pick_cube"), "--min-episodes", 2, "--image-size", 32],
                      capsys)
    assert rc == 1
    assert f"INVALID {eps[0]}: MissingFileError: {eps[0] / 'metadata_<uuid>.json'}" in out
    assert f"INVALID {eps[1]}: CorruptFileError: {malformed}: expected valid JSON" in out
    assert (f"INVALID {eps[2]}: MetadataError: {mistyped} [trajectory_length]: expected an integer, "
            "found str 'twelve'") in out

    res = materialize(project.paths, instance, "pick_cube", min_episodes=2)
    assert res.success
    q = quarantine_of(res)
    assert set(q) == {str(eps[0]), str(eps[1]), str(eps[2])}
    assert "MissingFileError" in q[str(eps[0])]
    assert str(malformed) in q[str(eps[1])] and "[trajectory_length]" in q[str(eps[2])]
    assert_store_ok(project, "pick_cube", episodes=2)
    assert_untouched(project, "open_drawer", other)
