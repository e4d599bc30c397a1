"""The code location loads: every asset, check, job, sensor and schedule resolves."""

import dagster as dg

from robosteer_assets.definitions import defs


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert {"raw_episodes", "keyframes"} <= keys
    assert repo.get_sensor_def("new_demos_sensor")
    assert repo.get_schedule_def("nightly_retrain_schedule")
    assert repo.get_job("task_pipeline")


def test_every_stage_is_an_asset_in_its_group():
    repo = defs.get_repository_def()
    groups = {n.key.to_user_string(): n.group_name for n in repo.asset_graph.asset_nodes}
    assert groups == {
        "sim_demos": "embedded_default", "base_policy": "embedded_default",
        "task_demos": "ingest", "raw_episodes": "ingest", "keyframes": "ingest",
        "head_activations": "steering", "head_scores": "steering", "selected_heads": "steering",
        "head_overlap": "steering",
        "steering_checkpoint": "training", "full_lora_checkpoint": "training",
        "eval_trials/zero_shot": "evaluation", "eval_trials/full_lora": "evaluation",
        "eval_trials/steering": "evaluation", "eval_summary": "reporting"}
    job_keys = {k.to_user_string() for k in repo.get_job("task_pipeline").asset_layer.executable_asset_keys}
    assert {"raw_episodes", "steering_checkpoint", "eval_trials/steering"} <= job_keys
    # the demos are observed, not materialised; raw_episodes depends on the task's partition of them
    demos = repo.asset_graph.get(dg.AssetKey("task_demos"))
    assert not demos.is_materializable and demos.partitions_def is not None
    assert dg.AssetKey("task_demos") in repo.asset_graph.get(dg.AssetKey("raw_episodes")).parent_keys


def test_a_gpu_box_configures_resources_from_the_environment(monkeypatch, tmp_path):
    from robosteer_assets.defs.build import build_definitions

    monkeypatch.setenv("ROBOSTEER_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("ROBOSTEER_DEMOS_ROOT", str(tmp_path / "droid"))
    monkeypatch.setenv("ROBOSTEER_BASE_CHECKPOINT", str(tmp_path / "pi0_droid"))
    monkeypatch.setenv("ROBOSTEER_BASE_CONFIG", "pi0_droid")
    monkeypatch.setenv("ROBOSTEER_TOKENIZER", str(tmp_path / "tok.model"))
    res = build_definitions().resources
    assert res["paths"].demos() == tmp_path / "droid" and res["paths"].root() == tmp_path / "data"
    bm = res["base_model"]
    assert bm.resolve_checkpoint(res["paths"]) == tmp_path / "pi0_droid" and not bm.is_embedded
    assert (bm.config_name, bm.tokenizer_path) == ("pi0_droid", str(tmp_path / "tok.model"))


def test_nightly_schedule_launches_the_chain_that_reingests_changed_demos():
    from robosteer_assets.defs.jobs import retrain_job, task_pipeline_job
    from robosteer_assets.defs.schedules import nightly_retrain_schedule

    repo = defs.get_repository_def()
    # the schedule fires for tasks whose demos changed, so its job must start at raw_episodes
    assert nightly_retrain_schedule.job_name == task_pipeline_job.name == "task_pipeline"
    nightly = {k.to_user_string() for k in repo.get_job(nightly_retrain_schedule.job_name)
               .asset_layer.executable_asset_keys}
    assert {"raw_episodes", "keyframes", "steering_checkpoint", "eval_trials/steering"} <= nightly
    # the retraining-only job leaves the episode store as it is
    retrain = {k.to_user_string() for k in repo.get_job(retrain_job.name).asset_layer.executable_asset_keys}
    assert "raw_episodes" not in retrain and "keyframes" not in retrain and "steering_checkpoint" in retrain
