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
