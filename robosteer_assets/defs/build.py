"""Assemble the Definitions object from the per-group modules."""

from __future__ import annotations

import os

import dagster as dg


def build_definitions() -> dg.Definitions:
    from robosteer_assets.defs import (demos, embedded, evaluation, ingest, jobs, reporting, resources, schedules,
                                      sensors, steering, training)

    modules = [embedded, ingest, steering, training, evaluation, reporting]
    return dg.Definitions(
        # task_demos is an AssetSpec (external, observed), which load_assets_from_modules does not collect
        assets=[demos.task_demos, *dg.load_assets_from_modules(modules)],
        asset_checks=dg.load_asset_checks_from_modules(modules),
        jobs=[jobs.task_pipeline_job, jobs.retrain_job],
        sensors=[sensors.new_demos_sensor],
        schedules=[schedules.nightly_retrain_schedule],
        resources={
            # a GPU box or cluster sets these in the environment of `dagster dev` / the code server
            "paths": resources.ProjectPaths(data_root=os.environ.get("ROBOSTEER_DATA_ROOT", "data"),
                                            demos_root=os.environ.get("ROBOSTEER_DEMOS_ROOT", "")),
            "base_model": resources.BaseModel(
                checkpoint_dir=os.environ.get("ROBOSTEER_BASE_CHECKPOINT", ""),
                config_name=os.environ.get("ROBOSTEER_BASE_CONFIG", "pi0_tiny"),
                tokenizer_path=os.environ.get("ROBOSTEER_TOKENIZER", ""),
                asset_id=os.environ.get("ROBOSTEER_ASSET_ID", "droid")),
            "gpu_pipes": resources.gpu_pipes_client(),
        },
    )
