"""Group `embedded_default`: sim_demos writes DROID episodes that ingest reads like real data."""

import dagster as dg
import pytest

from robosteer_assets.defs import embedded, ingest
from robosteer_assets.defs.resources import ProjectPaths
from robosteer_assets.droid.store import EpisodeStore

pytestmark = pytest.mark.slow


def test_sim_demos_then_ingest(tmp_path):
    paths = ProjectPaths(data_root=str(tmp_path / "data"))
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("task", ["pick_cube"])
        res = dg.materialize(
            [embedded.sim_demos], partition_key="pick_cube", instance=inst, resources={"paths": paths},
            run_config=dg.RunConfig(ops={"sim_demos": embedded.SimDemosConfig(episodes=2, image_size=96)}),
        )
        assert res.success
        assert res.asset_materializations_for_node("sim_demos")[0].metadata["demos"].value == 2
        res = dg.materialize(
            [ingest.raw_episodes], partition_key="pick_cube", instance=inst, resources={"paths": paths},
            run_config=dg.RunConfig(ops={"raw_episodes": ingest.IngestConfig(min_episodes=2, image_size=64)}),
        )
        assert res.success
        store = EpisodeStore.open(paths.store("pick_cube"))
        assert store.num_episodes == 2
        assert store.episodes[0]["instruction"] == "pick up red cube"
