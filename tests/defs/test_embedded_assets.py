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
            run_config=dg.RunConfig(ops={"sim_demos": embedded.SimDemosConfig(episodes=2, record={"image_size": 96})}),
        )
        assert res.success
        assert res.asset_materializations_for_node("sim_demos")[0].metadata["demos"].value == 2
        res = dg.materialize(
            [ingest.raw_episodes], partition_key="pick_cube", instance=inst, resources={"paths": paths},
            run_config=dg.RunConfig(ops={"raw_episodes": ingest.IngestConfig(min_episodes=2, read={"image_size": 64})}),
        )
        assert res.success
        store = EpisodeStore.open(paths.store("pick_cube"))
        assert store.num_episodes == 2
        assert store.episodes[0]["instruction"] == "pick up red cube"


def test_base_policy_rebuild_shipped_and_import_modes(tmp_path):
    """rebuild: corpus -> pretraining through dagster-pipes, blocking check that it predicts finite actions.
    Default: the shipped base is installed (config-hash checked). Import: a checkpoint given as
    resources.base_model.checkpoint_dir is validated, not retrained."""
    from robosteer_assets.defs.resources import BaseModel, gpu_pipes_client
    from robosteer_assets.embedded.base_policy import SHIPPED_BASE

    paths = ProjectPaths(data_root=str(tmp_path / "data"))
    res_embedded = {"paths": paths, "base_model": BaseModel(), "gpu_pipes": gpu_pipes_client()}
    corpus = {"tasks": ["press_button"], "held_out_tasks": ["press_button"], "episodes_per_task": 3,
              "variations": ["none"], "action_noise": 0.0, "image_size": 64}
    with dg.instance_for_test() as inst:
        res = dg.materialize([embedded.base_policy], instance=inst, resources=res_embedded, run_config=dg.RunConfig(
            ops={"base_policy": embedded.BasePolicyConfig(rebuild=True, corpus=corpus, steps=3, batch_size=2,
                                                          save_interval=3, log_interval=1)}))
        assert res.success
        assert [c.passed for c in res.get_asset_check_evaluations()] == [True]
        md = res.asset_materializations_for_node("base_policy")[0].metadata
        # the colour family of the held-out task, without its paper setting (the red button)
        assert md["tasks"].value == ["press_button-blue", "press_button-green", "press_button-yellow"]
        assert (paths.base_checkpoint() / "loss_curve.json").exists()
        res = dg.materialize([embedded.base_policy], instance=inst, resources={
            **res_embedded, "base_model": BaseModel(checkpoint_dir=str(paths.base_checkpoint()))})
        assert res.success
        assert res.asset_materializations_for_node("base_policy")[0].metadata["model"].value == "pi0_tiny"

    paths2 = ProjectPaths(data_root=str(tmp_path / "data2"))
    with dg.instance_for_test() as inst:
        res = dg.materialize([embedded.base_policy], instance=inst, resources={**res_embedded, "paths": paths2})
        assert res.success
        md = res.asset_materializations_for_node("base_policy")[0].metadata
        assert md["shipped_from"].value == str(SHIPPED_BASE) and md["copied"].value is True
        assert (paths2.base_checkpoint() / "params").is_dir()
