"""Group `embedded_default`: what stands in for a robot and a pretrained VLA on a
machine without either — simulated DROID-format demonstrations written into the
demos root (the sensor and `raw_episodes` read them like real data)."""

import time

import dagster as dg

from robosteer_assets.defs.config import SimDemosConfig  # noqa: F401 (re-exported for tests)
from robosteer_assets.defs.metadata import md_image, path
from robosteer_assets.defs.partitions import task_partitions
from robosteer_assets.defs.resources import ProjectPaths
from robosteer_assets.droid.layout import find_episode_dirs


@dg.asset(
    group_name="embedded_default",
    partitions_def=task_partitions,
    description="Scripted-expert demonstrations of a simulated task (MuJoCo Panda + Robotiq), recorded in "
    "DROID's raw layout into <demos_root>/<task>/ (failures under failure/).",
    kinds={"mujoco"},
)
def sim_demos(context: dg.AssetExecutionContext, config: SimDemosConfig, paths: ProjectPaths):
    from robosteer_assets.sim.cli import render_start_png
    from robosteer_assets.sim.recorder import RecordConfig, record_demos
    from robosteer_assets.sim.tasks import TASKS

    task = context.partition_key
    if task not in TASKS:
        raise dg.Failure(f"partition {task!r} is not a simulated task; sim_demos records one of {sorted(TASKS)}")
    task_dir = paths.task_demos(task)
    existing = find_episode_dirs(task_dir) if task_dir.exists() else []
    t0 = time.monotonic()
    if len(existing) >= config.episodes:
        context.log.info(f"{task_dir} already holds {len(existing)} demos (>= {config.episodes}); nothing recorded")
        written = existing
    else:
        written = record_demos(task, config.episodes, paths.demos(), seed=config.seed, variation=config.variation,
                               cfg=RecordConfig(image_size=config.image_size))
    failures = find_episode_dirs(task_dir / "failure") if (task_dir / "failure").exists() else []
    png = render_start_png(task, paths.reports() / f"sim_{task}_{config.variation}.png", variation=config.variation)
    return dg.MaterializeResult(
        metadata={
            "demos": len(written),
            "failed_attempts": len(failures),
            "record_s": round(time.monotonic() - t0, 1),
            "variation": config.variation,
            "demos_dir": path(task_dir),
            "start_state": md_image(png.read_bytes(), f"{task} start state (exterior | wrist)"),
        }
    )
