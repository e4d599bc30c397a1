"""Nightly retraining: a task whose demos changed since its last steering
checkpoint gets the whole chain again (GPU steps serialised by the `gpu` pool)."""


import dagster as dg

from robosteer_assets.defs.jobs import task_pipeline_job
from robosteer_assets.defs.partitions import task_partitions
from robosteer_assets.defs.resources import ProjectPaths
from robosteer_assets.droid.scan import scan_demos_root

CHECKPOINT_ASSET = dg.AssetKey("steering_checkpoint")


def last_trained_fingerprint(instance: dg.DagsterInstance, task: str) -> str | None:
    """The demos fingerprint recorded on the task's latest steering checkpoint."""
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=CHECKPOINT_ASSET, asset_partitions=[task]), limit=1
    )
    if not result.records:
        return None
    mat = result.records[0].asset_materialization
    value = mat.metadata.get("demos_fingerprint") if mat else None
    return getattr(value, "value", value)


@dg.schedule(
    job=task_pipeline_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Nightly: retrain every task whose demos changed since its last steering checkpoint.",
)
def nightly_retrain_schedule(context: dg.ScheduleEvaluationContext, paths: ProjectPaths):
    scan = scan_demos_root(paths.demos(), settle_s=paths.settle_seconds)
    known = set(context.instance.get_dynamic_partitions(task_partitions.name))
    requests = []
    for task, ts in scan.tasks.items():
        if task not in known or not ts.settled or not ts.episodes:
            continue
        if last_trained_fingerprint(context.instance, task) != ts.fingerprint:
            requests.append(
                dg.RunRequest(
                    run_key=f"nightly:{task}:{ts.fingerprint}",
                    partition_key=task,
                    tags={"robosteer/demos_fingerprint": ts.fingerprint},
                )
            )
    if not requests:
        return dg.SkipReason("no task's demos changed since its last steering checkpoint")
    return requests
