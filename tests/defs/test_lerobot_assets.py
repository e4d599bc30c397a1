"""A LeRobot dataset as the demos root: the new-demos sensor makes one partition per task
string, `raw_episodes` ingests a task partition, `robosteer run --demos-root` resolves the task."""

import os
import time

import dagster as dg
import numpy as np
import polars as pl
import pytest

from robosteer_assets.defs import ingest, sensors
from robosteer_assets.defs.resources import ProjectPaths
from robosteer_assets.droid.lerobot import open_dataset
from robosteer_assets.droid.lerobot_writer import write_lerobot_dataset
from robosteer_assets.droid.scan import task_fingerprint
from robosteer_assets.droid.store import EpisodeStore
from robosteer_assets.droid.synthetic import make_recording

TASK_A, TASK_B = "pick up the red cube", "open the drawer"
SLUG_A, SLUG_B = "pick_up_the_red_cube", "open_the_drawer"


def _age(root, seconds=120):
    past = time.time() - seconds
    for d, _, files in os.walk(root):
        for f in files:
            os.utime(os.path.join(d, f), (past, past))
        os.utime(d, (past, past))


@pytest.fixture()
def lerobot_root(tmp_path):
    recs = [make_recording(T=18, seed=i, image_size=64, control_hz=6.0, instruction=TASK_A if i < 2 else TASK_B)
            for i in range(3)]
    return write_lerobot_dataset(tmp_path / "lerobot", recs)


def test_sensor_partitions_from_tasks_and_reruns_only_the_changed_task(lerobot_root, tmp_path):
    paths = ProjectPaths(data_root=str(tmp_path / "data"), demos_root=str(lerobot_root), settle_seconds=30)
    with dg.instance_for_test() as inst:
        r0 = sensors.new_demos_sensor(dg.build_sensor_context(instance=inst, resources={"paths": paths}))
        assert r0.run_requests == []  # files just written: still arriving
        _age(lerobot_root)
        r1 = sensors.new_demos_sensor(dg.build_sensor_context(instance=inst, cursor=r0.cursor, resources={"paths": paths}))
        assert sorted(rq.partition_key for rq in r1.run_requests) == [SLUG_B, SLUG_A]
        assert sorted(r1.dynamic_partitions_requests[0].partition_keys) == [SLUG_B, SLUG_A]
        inst.add_dynamic_partitions("task", [SLUG_A, SLUG_B])
        r2 = sensors.new_demos_sensor(dg.build_sensor_context(instance=inst, cursor=r1.cursor, resources={"paths": paths}))
        assert r2.run_requests == []
        # one episode of task B changes -> one run, for task B only
        f = open_dataset(lerobot_root).episodes[2].data_file
        df = pl.read_parquet(f)
        df.with_columns(pl.col("gripper_position") * 0.5).write_parquet(f)
        past = time.time() - 90
        os.utime(f, (past, past))
        r3 = sensors.new_demos_sensor(dg.build_sensor_context(instance=inst, cursor=r2.cursor, resources={"paths": paths}))
        assert [rq.partition_key for rq in r3.run_requests] == [SLUG_B]


def test_unreadable_dataset_is_rejected_not_partitioned(lerobot_root, tmp_path):
    (lerobot_root / "meta" / "info.json").write_text('{"codebase_version": "v1.6", "fps": 10, "features": {}}')
    _age(lerobot_root)
    paths = ProjectPaths(data_root=str(tmp_path / "data"), demos_root=str(lerobot_root), settle_seconds=30)
    with dg.instance_for_test() as inst:
        r = sensors.new_demos_sensor(dg.build_sensor_context(instance=inst, resources={"paths": paths}))
        assert r.run_requests == [] and r.dynamic_partitions_requests == []


def test_raw_episodes_ingests_a_lerobot_task_partition(lerobot_root, tmp_path):
    paths = ProjectPaths(data_root=str(tmp_path / "data"), demos_root=str(lerobot_root))
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("task", [SLUG_A])
        res = dg.materialize(
            [ingest.raw_episodes, ingest.keyframes], partition_key=SLUG_A, instance=inst, resources={"paths": paths},
            run_config={"ops": {"raw_episodes": {"config": {"min_episodes": 2}}}},
        )
        assert res.success
        md = res.asset_materializations_for_node("raw_episodes")[0].metadata
        assert md["episodes"].value == 2 and md["quarantined"].value == 0
        assert md["demos_fingerprint"].value == task_fingerprint(lerobot_root, SLUG_A) != ""
        store = EpisodeStore.open(paths.store(SLUG_A))
        assert store.task == SLUG_A and store.num_episodes == 2 and store.control_hz == 6.0
        assert {e["instruction"] for e in store.episodes} == {TASK_A}
        assert np.isfinite(store.arrays["joint_velocities"][:]).all()
        # a partition that is no task of the dataset fails loudly and writes nothing
        inst.add_dynamic_partitions("task", ["stack_blocks"])
        bad = dg.materialize([ingest.raw_episodes], partition_key="stack_blocks", instance=inst,
                             resources={"paths": paths}, raise_on_error=False)
        assert not bad.success and not paths.store("stack_blocks").exists()


def test_run_demos_root_resolves_the_task(lerobot_root, tmp_path, monkeypatch):
    from robosteer_assets.droid import synthetic
    from robosteer_assets.pipeline_cli import _use_demos_root

    monkeypatch.setenv("ROBOSTEER_DEMOS_ROOT", "")
    task, skip = _use_demos_root(lerobot_root, TASK_A)
    assert task == SLUG_A and set(skip) == {"sim_demos", "eval_trials", "eval_summary"}
    assert os.environ["ROBOSTEER_DEMOS_ROOT"] == str(lerobot_root.resolve())
    assert _use_demos_root(lerobot_root, SLUG_B)[0] == SLUG_B
    droid_root = tmp_path / "droid"
    synthetic.write_task(droid_root, "pick_cube", n=1, T=6, image_size=32)
    assert _use_demos_root(droid_root, "pick_cube") == ("pick_cube", ("sim_demos",))
