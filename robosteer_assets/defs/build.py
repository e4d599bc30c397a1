"""Assemble the Definitions object from the per-group modules."""

from __future__ import annotations

import os

import dagster as dg


def build_definitions() -> dg.Definitions:
    from robosteer_assets.defs import (embedded, evaluation, ingest, jobs, reporting, resources, schedules, sensors,
                                      steering, training)

    modules = [embedded, ingest, steering, training, evaluation, reporting]
    return dg.Definitions(
        assets=dg.load_assets_from_modules(modules),
        asset_checks=dg.load_asset_checks_from_modules(modules),
        jobs=[jobs.task_pipeline_job, jobs.retrain_job],
        sensors=[sensors.new_demos_sensor],
        schedules=[schedules.nightly_retrain_schedule],
        resources={
            "paths": resources.ProjectPaths(data_root=os.environ.get("ROBOSTEER_DATA_ROOT", "data")),
            "base_model": resources.BaseModel(),
            "gpu_pipes": resources.gpu_pipes_client(),
        },
    )
