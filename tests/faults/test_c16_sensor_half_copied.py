"""Case 16: the new-demos sensor sees an episode folder whose files are still
arriving. It waits (no run for that task; other tasks go on), and nothing
ingests a partial episode."""

import shutil

import dagster as dg

from robosteer_assets.defs import sensors
from robosteer_assets.droid import synthetic
from robosteer_assets.droid.layout import TRAJECTORY_FILE, episode_dir_for, metadata_path
from robosteer_assets.droid.writer import write_episode

from ._support import HZ, IMAGE, T_STEPS, TASKS, age_files, assert_store_ok, materialize, mp4_paths, quarantine_of


def _tick(project, instance, cursor):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"paths": project.paths})
    return sensors.new_demos_sensor(ctx)


def _staged_episode(tmp_path):
    """A complete, settled episode in a staging area, to be copied into pick_cube."""
    rec = synthetic.make_recording(T=T_STEPS, seed=77, image_size=IMAGE, control_hz=HZ)
    src = write_episode(episode_dir_for(tmp_path / "staging", "pick_cube", rec.uuid), rec)
    age_files(tmp_path / "staging")
    return src


def test_sensor_waits_for_a_half_copied_episode(project, instance, tmp_path):
    cursor = _tick(project, instance, None).cursor  # both tasks seen once
    src = _staged_episode(tmp_path)
    dst = project.paths.task_demos("pick_cube") / "success" / src.name
    ext_src, wrist_src = mp4_paths(src)
    ext_dst, wrist_dst = dst / ext_src.relative_to(src), dst / wrist_src.relative_to(src)
    # a new, settled task arrives at the same time: it must not wait for pick_cube
    synthetic.write_task(project.paths.demos(), "stack_cups", n=1, T=T_STEPS, image_size=IMAGE, control_hz=HZ, seed=300)
    age_files(project.paths.task_demos("stack_cups"))

    # (a) only trajectory.h5 has arrived (mtime preserved, as cp -p / rsync -a do)
    dst.mkdir(parents=True)
    shutil.copy2(src / TRAJECTORY_FILE, dst / TRAJECTORY_FILE)
    r = _tick(project, instance, cursor)
    assert [q.partition_key for q in r.run_requests] == ["stack_cups"]
    assert [k for q in r.dynamic_partitions_requests for k in q.partition_keys] == ["stack_cups"]
    cursor = r.cursor

    # (b) mid-way through `cp -rp` / shutil.copytree: h5, metadata and the exterior MP4 are there with
    # their original (old) mtimes, the wrist MP4 has not started; only the folders are fresh
    shutil.copy2(metadata_path(src), dst / metadata_path(src).name)
    ext_dst.parent.mkdir(parents=True)
    shutil.copy2(ext_src, ext_dst)
    r = _tick(project, instance, cursor)
    assert r.run_requests == []
    cursor = r.cursor

    # (c) every file is there but the wrist MP4 is still being written (fresh mtime, partial bytes)
    data = wrist_src.read_bytes()
    wrist_dst.write_bytes(data[: len(data) // 3])
    r = _tick(project, instance, cursor)
    assert r.run_requests == []
    cursor = r.cursor

    # a run launched by hand at this moment quarantines the partial episode instead of ingesting it
    res = materialize(project.paths, instance, "pick_cube", min_episodes=TASKS["pick_cube"])
    assert res.success
    q = quarantine_of(res)
    assert list(q) == [str(dst)] and str(wrist_dst) in q[str(dst)]
    assert_store_ok(project, "pick_cube", episodes=TASKS["pick_cube"])

    # (d) the copy finishes and settles: exactly one run for pick_cube, which ingests the whole episode
    with open(wrist_dst, "ab") as f:
        f.write(data[len(data) // 3 :])
    r = _tick(project, instance, cursor)
    assert r.run_requests == []  # all bytes there, but written just now: still settling
    age_files(dst)
    r = _tick(project, instance, r.cursor)
    assert [q.partition_key for q in r.run_requests] == ["pick_cube"]
    assert r.run_requests[0].tags["robosteer/episodes"] == str(TASKS["pick_cube"] + 1)
    res = materialize(project.paths, instance, "pick_cube", min_episodes=TASKS["pick_cube"] + 1)
    assert res.success and quarantine_of(res) == {}
    assert_store_ok(project, "pick_cube", episodes=TASKS["pick_cube"] + 1)
    assert _tick(project, instance, r.cursor).run_requests == []  # and no second run
