"""Jobs: the per-task chain that the new-demos sensor and the nightly schedule launch, and a
retraining-only job for runs started by hand."""

import dagster as dg

PER_TASK_GROUPS = ("ingest", "steering", "training", "evaluation")

# Every task-partitioned asset from raw episodes to evaluation trials. The new-demos sensor and the
# nightly schedule launch this one: their tasks' demos changed, so ingest must run again first.
task_pipeline_job = dg.define_asset_job(
    "task_pipeline",
    selection=dg.AssetSelection.groups(*PER_TASK_GROUPS),
    description="Raw episodes -> keyframes -> activations -> head scores -> selected heads -> "
    "steering / full-head LoRA checkpoints -> evaluation trials, for one task partition.",
)

# Retraining only, activations onwards, from the task's current episode store: for runs started by
# hand after a change of steering / training / evaluation settings (demos unchanged).
retrain_job = dg.define_asset_job(
    "retrain",
    selection=dg.AssetSelection.groups("steering", "training", "evaluation"),
    description="Recompute heads, checkpoints and evaluations of one task from its ingested demos.",
)
