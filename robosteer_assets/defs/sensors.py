"""`new_demos_sensor`: adds a task partition for every new (safe) task folder and
requests the full per-task chain when a task's settled episode set changes."""


import json

import dagster as dg

from robosteer_assets.defs.jobs import task_pipeline_job
from robosteer_assets.defs.partitions import task_partitions
from robosteer_assets.defs.resources import ProjectPaths
from robosteer_assets.droid.scan import scan_demos_root


@dg.sensor(
    job=task_pipeline_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Cheap scan of the demos root (listings + mtimes). New task folder -> new partition; "
    "changed episode set -> one run of the task chain, run_key = task + fingerprint.",
)
def new_demos_sensor(context: dg.SensorEvaluationContext, paths: ProjectPaths) -> dg.SensorResult:
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    scan = scan_demos_root(paths.demos(), settle_s=paths.settle_seconds)
    for name, reason in scan.rejected.items():
        context.log.warning(reason)
    existing = set(context.instance.get_dynamic_partitions(task_partitions.name))
    new_parts, runs = [], []
    for task, ts in scan.tasks.items():
        if not ts.settled:
            context.log.info(f"task {task}: episodes still arriving {list(ts.arriving)[:5]}; waiting")
            continue
        if not ts.episodes:
            continue
        if task not in existing:
            new_parts.append(task)
        if seen.get(task) != ts.fingerprint:
            runs.append(
                dg.RunRequest(
                    run_key=f"{task}:{ts.fingerprint}",
                    partition_key=task,
                    tags={"robosteer/demos_fingerprint": ts.fingerprint, "robosteer/episodes": str(len(ts.episodes))},
                )
            )
            seen[task] = ts.fingerprint
    return dg.SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=[task_partitions.build_add_request(new_parts)] if new_parts else [],
        cursor=json.dumps(seen, sort_keys=True),
    )
