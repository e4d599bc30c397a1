"""Jobs: the per-task chain that the sensor and the schedule launch."""

import dagster as dg

PER_TASK_GROUPS = ("ingest", "steering", "training", "evaluation")

# Every task-partitioned asset from raw episodes to evaluation trials.
task_pipeline_job = dg.define_asset_job(
    "task_pipeline",
    selection=dg.AssetSelection.groups(*PER_TASK_GROUPS),
    description="Raw episodes -> keyframes -> activations -> head scores -> selected heads -> "
    "steering / full-head LoRA checkpoints -> evaluation trials, for one task partition.",
)

# Retraining only (used by the nightly schedule): activations onwards.
retrain_job = dg.define_asset_job(
    "retrain",
    selection=dg.AssetSelection.groups("steering", "training", "evaluation"),
    description="Recompute heads, checkpoints and evaluations of one task from its ingested demos.",
)
