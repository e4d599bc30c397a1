"""Dagster layer, group `ingest` + `new_demos_sensor`, on a generated 3-episode task."""

import os
import time

import dagster as dg
import pytest

from robosteer_assets.defs import ingest, sensors
from robosteer_assets.defs.resources import ProjectPaths
from robosteer_assets.droid import synthetic
from robosteer_assets.droid.keyframe_table import read_keyframes
from robosteer_assets.droid.store import EpisodeStore


def _age(root, seconds=120):
    """Backdate every file so the sensor sees settled episodes."""
    past = time.time() - seconds
    for d, _, files in os.walk(root):
        for f in files:
            os.utime(os.path.join(d, f), (past, past))
        os.utime(d, (past, past))


@pytest.fixture()
def demo_root(tmp_path):
    root = tmp_path / "data"
    synthetic.write_task(root / "demos", "pick_cube", n=3, T=24, image_size=64, control_hz=6.0)
    return root


def test_materialize_raw_episodes_and_keyframes(demo_root):
    paths = ProjectPaths(data_root=str(demo_root))
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("task", ["pick_cube"])
        res = dg.materialize(
            [ingest.raw_episodes, ingest.keyframes],
            partition_key="pick_cube",
            instance=inst,
            resources={"paths": paths},
            run_config=dg.RunConfig(ops={"raw_episodes": ingest.IngestConfig(min_episodes=3, read={"image_size": 32})}),
        )
        assert res.success
        md = res.asset_materializations_for_node("raw_episodes")[0].metadata
        assert md["episodes"].value == 3 and md["quarantined"].value == 0
        checks = res.get_asset_check_evaluations()
        assert [c.passed for c in checks] == [True]
        store = EpisodeStore.open(paths.store("pick_cube") / "episodes.zarr")
        assert store.num_episodes == 3 and store.image_size == 32
        kf = read_keyframes(paths.store("pick_cube") / "keyframes.parquet")
        assert kf.height >= 3 and set(kf["episode_index"].to_list()) == {0, 1, 2}
        # the last step of every episode is a keyframe
        for i, ep in enumerate(store.episodes):
            assert ep["length"] - 1 in kf.filter(kf["episode_index"] == i)["step"].to_list()


def test_too_few_episodes_fails_loudly_and_keeps_nothing(demo_root):
    paths = ProjectPaths(data_root=str(demo_root))
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("task", ["pick_cube"])
        res = dg.materialize(
            [ingest.raw_episodes], partition_key="pick_cube", instance=inst, resources={"paths": paths},
            run_config=dg.RunConfig(ops={"raw_episodes": ingest.IngestConfig(min_episodes=5)}), raise_on_error=False,
        )
        assert not res.success
        assert not (paths.store("pick_cube") / "episodes.zarr").exists()


def test_sensor_adds_partitions_requests_runs_and_dedupes(demo_root):
    paths = ProjectPaths(data_root=str(demo_root), settle_seconds=30)
    _age(demo_root)
    (demo_root / "demos" / "bad name").mkdir()  # unsafe: never becomes a partition
    with dg.instance_for_test() as inst:
        ctx = dg.build_sensor_context(instance=inst, resources={"paths": paths})
        r1 = sensors.new_demos_sensor(ctx)
        assert [rq.partition_key for rq in r1.run_requests] == ["pick_cube"]
        assert r1.dynamic_partitions_requests[0].partition_keys == ["pick_cube"]
        inst.add_dynamic_partitions("task", ["pick_cube"])
        # nothing changed -> nothing requested
        r2 = sensors.new_demos_sensor(dg.build_sensor_context(instance=inst, cursor=r1.cursor, resources={"paths": paths}))
        assert r2.run_requests == [] and r2.dynamic_partitions_requests == []
        # a new episode that is still arriving (fresh mtimes) -> wait
        synthetic.write_task(demo_root / "demos", "pick_cube", n=1, T=24, image_size=64, seed=99)
        r3 = sensors.new_demos_sensor(dg.build_sensor_context(instance=inst, cursor=r2.cursor, resources={"paths": paths}))
        assert r3.run_requests == []
        # once settled -> exactly one run with a new run key
        _age(demo_root)
        r4 = sensors.new_demos_sensor(dg.build_sensor_context(instance=inst, cursor=r3.cursor, resources={"paths": paths}))
        assert len(r4.run_requests) == 1 and r4.run_requests[0].run_key != r1.run_requests[0].run_key
