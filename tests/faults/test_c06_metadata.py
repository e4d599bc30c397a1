"""Case 6: metadata JSON missing or malformed."""

import json

import dagster as dg
import pytest

from robosteer_assets.defs import sensors
from robosteer_assets.droid.layout import metadata_path

from ._support import assert_store_ok, assert_untouched, materialize, quarantine_of, run_cli


def test_missing_malformed_and_mistyped_metadata_name_the_file(project, instance, capsys):
    other = project.store_digest("open_drawer")
    eps = project.episodes("pick_cube")
    missing = metadata_path(eps[0])
    missing.unlink()
    malformed = metadata_path(eps[1])
    malformed.write_text(malformed.read_text()[:40])  # cut off mid-object
    mistyped = metadata_path(eps[2])
    meta = json.loads(mistyped.read_text())
    meta["trajectory_length"] = "twelve"
    mistyped.write_text(json.dumps(meta))

    rc, out = run_cli(["validate", project.paths.task_demos("pick_cube"), "--min-episodes", 1, "--image-size", 32], capsys)
    assert rc == 1
    assert f"INVALID {eps[0]}: MissingFileError: {eps[0] / 'metadata_<uuid>.json'}" in out
    assert f"INVALID {eps[1]}: CorruptFileError: {malformed}: expected valid JSON" in out
    assert f"INVALID {eps[2]}: MetadataError: {mistyped} [trajectory_length]: expected an integer, found str 'twelve'" in out

    res = materialize(project.paths, instance, "pick_cube", min_episodes=1)
    assert res.success
    q = quarantine_of(res)
    assert set(q) == {str(eps[0]), str(eps[1]), str(eps[2])}
    assert str(malformed) in q[str(eps[1])] and "[trajectory_length]" in q[str(eps[2])]
    assert_store_ok(project, "pick_cube", episodes=1)
    assert_untouched(project, "open_drawer", other)


@pytest.mark.xfail(strict=True, reason="droid.scan treats an episode without metadata_<uuid>.json as 'still arriving' "
                   "however old it is, so one permanently broken episode blocks every later run of its task and the "
                   "user only sees an info line 'episodes still arriving'; an old, settled but incomplete episode "
                   "should let the run go ahead (ingest then quarantines it with MissingFileError)")
def test_sensor_is_not_blocked_forever_by_an_episode_without_metadata(project, instance):
    cursor = sensors.new_demos_sensor(
        dg.build_sensor_context(instance=instance, resources={"paths": project.paths})).cursor
    eps = project.episodes("pick_cube")
    metadata_path(eps[0]).unlink()  # every other file of the episode is 10 minutes old: not arriving
    r = sensors.new_demos_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources={"paths": project.paths}))
    assert [q.partition_key for q in r.run_requests] == ["pick_cube"]
